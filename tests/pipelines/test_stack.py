"""The whole stack on real services on 127.0.0.1: a pipeline spec writing to S3 (moto), its catalog and
its MLflow tracking on PostgreSQL, its training on the local Ray cluster."""

import uuid

import mlflow
import psycopg2
import pytest

from catalog import Catalog, CatalogConfig
from pipelines.spec import plan_spec, run_plan
from tests.pipelines.test_spec import TINY


@pytest.fixture
def mlflow_db(postgres_uri):
    """A database of its own for MLflow's tracking store, on the test's PostgreSQL server."""
    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    con = psycopg2.connect(postgres_uri.replace("postgresql+psycopg2://", "postgresql://"))
    con.autocommit = True
    con.cursor().execute(f"CREATE DATABASE {name}")
    con.close()
    return postgres_uri.rsplit("/", 1)[0] + f"/{name}"


def test_spec_on_s3_with_postgres_catalog_and_mlflow(bucket, postgres_uri, mlflow_db, s3_server, ray_cluster,
                                                       monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server)
    catalog = Catalog(CatalogConfig(root=f"s3://{bucket}/home", uri=postgres_uri,
                                    namespace=f"t{uuid.uuid4().hex[:10]}"))
    spec = {**TINY, "name": "stack", "stages": {**TINY["stages"], "train": {
        "kind": "pretrain", "method": "ssast", "model": "ssast-tiny", "dataset": "scenes", "steps": 4,
        "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 2, "clip_seconds": 1.0}}}
    results = {r.stage: r for r in run_plan(plan_spec(spec), catalog, show_progress=False)}

    assert sorted(s.name for s in catalog.list()) == ["events", "rooms", "scenes"]
    assert all(f.uri.startswith(f"s3://{bucket}/home/") for f in catalog.files("scenes"))
    assert catalog.arrow_dataset("scenes").count_rows() == 2
    run_dir = results["train"].output.ref
    assert run_dir.startswith(f"s3://{bucket}/home/runs/")

    client = mlflow.MlflowClient(mlflow_db)
    (run,) = client.search_runs([client.get_experiment_by_name("roomtone-pretrain").experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 4
    inputs = [d.dataset.name for d in run.inputs.dataset_inputs]
    assert inputs == [catalog.show("scenes").ref]
    assert client.search_model_versions("name='roomtone-ssast-tiny'")
