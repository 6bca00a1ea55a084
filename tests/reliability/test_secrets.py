"""Credentials come from the environment or the platform and go nowhere else; checkpoints load
with weights_only=True; catalog SQL cannot write.

Tally: 1 planted secret (in 4 environment variables and 2 config keys) scanned in 5 places
(stdout/stderr, every file under the root: catalog, shards, cards, MLflow store; the Ray
session logs; the snapshot dicts and cards through the API; the MLflow params and tags) ->
found in none. 12 writing or escaping SQL statements tried -> 12 refused, catalog unchanged.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path

import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError
from tests.helpers import REPO_ROOT, SECRET, publish_dataset


def files_holding(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_planted_secret_reaches_no_log_catalog_card_or_mlflow_run(demo_run, tmp_path):
    # the demo (every stage, a pretrain run logging its final checkpoint to MLflow, the probe)
    # ran with the secret in PLANTED_ENV; the same secret then goes through the Python API
    proc, root = demo_run.proc, demo_run.home
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert SECRET not in proc.stdout + proc.stderr
    assert files_holding(demo_run.ray_tmp, SECRET.encode()) == []

    # the Python API with secret-like config keys: redacted before they reach the catalog
    api = Catalog(CatalogConfig(root=str(tmp_path / "api")))
    publish_dataset(api, "keyed", {"api_token": SECRET, "storage": {"secret_access_key": SECRET}, "rows": 4,
                                   "database": f"postgresql://roomtone:{SECRET}@db.internal/catalog"})
    for catalog in (Catalog(CatalogConfig(root=str(root))), api):
        for name in catalog.names():
            for snap in catalog.history(name):
                assert SECRET not in json.dumps(snap.to_dict(), default=str)
                assert SECRET not in catalog.card(snap.ref)
    assert api.show("keyed").config["api_token"] == "<redacted>"
    assert api.show("keyed").config["database"] == "postgresql://roomtone:<redacted>@db.internal/catalog"
    assert files_holding(root, SECRET.encode()) == [] and files_holding(tmp_path, SECRET.encode()) == []

    from mlflow.tracking import MlflowClient

    from pretrain.tracking import tracking_uri

    client = MlflowClient(tracking_uri(CatalogConfig(root=str(root))))  # the demo's default store
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(SECRET not in json.dumps([r.data.params, r.data.tags]) for r in runs)


def test_every_torch_load_in_the_product_loads_weights_only():
    calls = []
    for package in ("simulation", "pipelines", "catalog", "pretrain"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    flag = {k.arg: k.value for k in node.keywords}.get("weights_only")
                    calls.append((f"{path.relative_to(REPO_ROOT)}:{node.lineno}",
                                  isinstance(flag, ast.Constant) and flag.value is True))
    assert calls, "torch.load is called somewhere (pretrain/checkpoints.py); the scan found none"
    assert [where for where, safe in calls if not safe] == []


WRITES = ["CREATE TABLE t AS SELECT 1 AS a", "INSERT INTO keyed SELECT * FROM keyed", "DROP VIEW keyed",
          "COPY (SELECT 1) TO '{out}/x.csv'", "ATTACH '{out}/x.duckdb' AS x", "ATTACH ':memory:' AS m",
          "INSTALL httpfs", "LOAD httpfs", "SELECT * FROM read_csv('/etc/passwd')",
          "SELECT * FROM read_parquet('{root}/**/*.parquet')", "SET enable_external_access = true",
          "SELECT 1; CREATE TABLE t (a INT)"]


def catalog_state(root: Path) -> tuple:
    """Every snapshot of every dataset, and every file but the SQLite store (reads touch its WAL)."""
    catalog = Catalog(CatalogConfig(root=str(root)))
    snapshots = [(s.name, s.snapshot_id) for name in catalog.names() for s in catalog.history(name)]
    return snapshots, {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("catalog.db")}


@pytest.mark.parametrize("sql", WRITES)
def test_catalog_sql_cannot_write_or_escape(tmp_path, sql, monkeypatch, capsys):
    from pipelines.cli import main

    root, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    publish_dataset(Catalog(CatalogConfig(root=str(root))), "keyed", {"rows": 4})
    before = catalog_state(root)
    monkeypatch.setattr(sys, "argv", ["roomtone", "--root", str(root), "catalog", "query",
                                      sql.format(out=out, root=root)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "error:" in err and "fix:" in err and "Traceback" not in err
    assert "read-only" in err or "Permission" in err or "Cannot change configuration" in err, err
    assert catalog_state(root) == before and list(out.iterdir()) == []


def test_catalog_sql_installs_and_loads_no_extension(tmp_path, monkeypatch):
    """DuckDB autoinstalls a known extension a query names (sqlite_scan: sqlite_scanner) from the
    network into ~/.duckdb; catalog SQL fetches nothing and fails instead."""
    monkeypatch.setenv("HOME", str(tmp_path))
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    publish_dataset(catalog, "keyed", {"rows": 4})
    with pytest.raises(RoomtoneError, match="sqlite_scan") as err:
        catalog.query(f"SELECT * FROM sqlite_scan('{tmp_path}/x.db', 't')")
    assert "install" not in err.value.problem  # no attempt was made (one was: "... automatically install ...")
    assert not (tmp_path / ".duckdb").exists()
