"""MLflow on a local SQLite store and on a real `mlflow server`: params, metrics, datasets, model, evaluation."""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pretrain.config import EvalConfig, TrainConfig
from pretrain.evaluate import run_eval
from pretrain.train import run_training
from tests.conftest import free_port
from tests.pretrain.test_data import ingest_sonic_pi

TINY = dict(method="ssast", model="ssast-tiny", dataset="events", steps=2, clip_seconds=0.64, batch_size=4,
            warmup_steps=1, cpus_per_worker=0.5, checkpoint_every=1, log_checkpoints="all",
            model_overrides={"dim": 64, "depth": 1, "heads": 2})


@pytest.fixture(scope="module")
def events(tmp_path_factory, ray_cluster):
    return ingest_sonic_pi(tmp_path_factory.mktemp("tracking"), per_label=4, labels=2, max_seconds=3.0,
                           test_fraction=0.5)


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 (free port, own SQLite store and artifact folder), stopped after."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited at start")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def check_run(uri: str, run_id: str, snap_ref: str, digest: str, registered: str) -> MlflowClient:
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "ssast-tiny" and params["dataset_ref"] == snap_ref
    assert params["model_overrides.dim"] == "64" and params["model_config.encoder.dim"] == "64"  # flattened
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2]
    assert {"nce", "mse", "lr", "system/samples_per_s", "system/max_rss_mb"} <= set(run.data.metrics)
    [inp] = run.inputs.dataset_inputs
    assert (inp.dataset.name, inp.dataset.digest) == (snap_ref, digest[:32])
    assert {t.key: t.value for t in inp.tags}["roomtone.manifest_sha256"] == digest
    artifacts = [a.path for a in client.list_artifacts(run_id, "checkpoints")]
    assert artifacts == ["checkpoints/step-00000001.pt", "checkpoints/step-00000002.pt"]
    [version] = client.search_model_versions(f"name='{registered}'")
    assert version.run_id == run_id
    return client


def test_sqlite_store_has_params_metrics_datasets_model_and_the_probe(events):
    from pretrain.data import open_source

    result = run_training(TrainConfig(**TINY, run_name="local", register_as="enc-local"), events)
    assert result.tracking_uri == f"sqlite:///{events.config.root}/mlflow.db"
    src = open_source(events, "events", "train", "ssast")
    client = check_run(result.tracking_uri, result.mlflow_run_id, src.ref, src.digest, "enc-local")
    out = run_eval(EvalConfig(checkpoint=result.run_dir, dataset="events", steps=20), events)
    assert out["mlflow_run_id"] == result.mlflow_run_id
    metrics = client.get_run(result.mlflow_run_id).data.metrics
    assert 0.0 <= metrics["eval/probe/events/accuracy"] <= 1.0
    assert metrics["eval/probe/events/train_clips"] + metrics["eval/probe/events/test_clips"] == 8
    assert client.get_run(result.mlflow_run_id).data.tags["eval/probe/events.dataset"] == src.ref
    assert not out["reused"]
    contexts = {(i.dataset.name, t.value) for i in client.get_run(result.mlflow_run_id).inputs.dataset_inputs
                for t in i.tags if t.key == "mlflow.data.context"}
    test_ref = open_source(events, "events", "test", "tagging").ref
    assert {(src.ref, "training:train"), (test_ref, "eval/probe:test")} <= contexts  # what the probe read
    # The same evaluation again is the kept result, logged once; other settings are a new evaluation.
    again = run_eval(EvalConfig(checkpoint=result.run_dir, dataset="events", steps=20), events)
    assert again["reused"] and again["metrics"] == out["metrics"]
    assert len(client.get_metric_history(result.mlflow_run_id, "eval/probe/events/accuracy")) == 1
    other = run_eval(EvalConfig(checkpoint=result.run_dir, dataset="events", steps=21), events)
    assert not other["reused"]
    assert len(client.get_metric_history(result.mlflow_run_id, "eval/probe/events/accuracy")) == 2


def test_finetune_trains_encoder_and_head_logs_to_the_run_and_leaves_the_checkpoint(events):
    """Scored on the clips it trained on, at the training crop (0.64 s, which these short clips fill),
    40 end-to-end steps memorise them; the checkpoint on disk is not touched. (Whole 3 s crops are
    mostly padding for these clips: 40 steps then only learn the class prior.)"""
    result = run_training(TrainConfig(**TINY, run_name="finetuned"), events)
    ckpt = Path(result.checkpoint)
    before = ckpt.read_bytes()
    out = run_eval(EvalConfig(checkpoint=result.run_dir, dataset="events", mode="finetune", test_split="train",
                              steps=40, batch_size=4, lr=1e-2), events)
    metrics = out["metrics"]
    assert metrics["eval/finetune/events/accuracy"] == 1.0
    assert metrics["eval/finetune/events/test_clips"] == 4
    assert metrics["eval/finetune/events/train_loss"] < 0.3  # the class prior's loss here is 0.56
    assert ckpt.read_bytes() == before
    logged = MlflowClient(result.tracking_uri).get_run(result.mlflow_run_id).data.metrics
    assert logged["eval/finetune/events/accuracy"] == 1.0


def test_mlflow_server_has_the_same_records(events, mlflow_server, tmp_path):
    """Checkpoints go through the server into its --artifacts-destination (clients need no credentials
    for the store behind it), not beside the datasets as with a SQLite or Postgres store."""
    from pretrain.data import open_source

    result = run_training(TrainConfig(**TINY, run_name="served", tracking_uri=mlflow_server,
                                      register_as="enc-served"), events)
    src = open_source(events, "events", "train", "ssast")
    client = check_run(mlflow_server, result.mlflow_run_id, src.ref, src.digest, "enc-served")
    assert client.get_run(result.mlflow_run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    assert len(list((tmp_path / "artifacts").rglob("step-0000000[12].pt"))) == 2


def test_an_mlflow_server_nobody_answers_at_fails_in_seconds(monkeypatch):
    """An unreachable tracking URL hung a run after Ray had started (MLflow's client retries for minutes)."""
    import socket

    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # behind a proxy the check is the proxy's

    from catalog.errors import RoomtoneError
    from pretrain.tracking import check_reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert check_reachable(f"http://127.0.0.1:{port}") == f"http://127.0.0.1:{port}"
    with pytest.raises(RoomtoneError, match=f"cannot reach the MLflow server at http://127.0.0.1:{port}"):
        check_reachable(f"http://127.0.0.1:{port}")  # closed now
    assert check_reachable("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert check_reachable(f"http://127.0.0.1:{port}") == f"http://127.0.0.1:{port}"
