"""The catalog against SQLite and a real PostgreSQL server (see conftest)."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import pytest

from catalog import Catalog, NotFoundError, RoomtoneError, SchemaMismatchError, write_shard
from tests.helpers import REPO_ROOT, clip_features, clip_rows, publish_dataset


def test_two_runs_two_snapshots_and_time_travel(catalog):
    first = publish_dataset(catalog, "clips", {"v": 1}, rows=4)
    second = publish_dataset(catalog, "clips", {"v": 2}, rows=6, shards=3)
    assert [s.version for s in catalog.history("clips")] == [1, 2]
    assert catalog.show("clips").snapshot_id == second.snapshot_id
    assert catalog.show(f"clips@{first.snapshot_id}").stats["rows"] == 4
    assert catalog.show("clips@v1").config == {"v": 1}
    assert sum(f.rows for f in catalog.files("clips@v1")) == 4
    assert sum(f.rows for f in catalog.files("clips")) == 6  # a new version replaces, not appends
    assert catalog.query('SELECT count(*) AS n FROM "clips@v1"').column("n").to_pylist() == [4]
    assert catalog.query("SELECT count(*) AS n FROM clips").column("n").to_pylist() == [6]
    assert len(catalog.to_hf("clips@v1", split="train")) == 4
    # a missing column is answered with the columns of the views the query names, not the dataset names
    with pytest.raises(RoomtoneError, match="clips has audio, duration, id, label") as err:
        catalog.query("SELECT split FROM clips")
    assert 'column "split" not found' in str(err.value)
    with pytest.raises(RoomtoneError, match="datasets you can query: clips"):
        catalog.query("SELECT * FROM no_such_table")


def test_snapshot_properties_carry_lineage_and_stats(catalog):
    snap = publish_dataset(catalog, "clips", {"v": 1, "api_key": "hunter2"}, rows=4)
    props = snap.properties
    assert props["roomtone.run-id"] and props["roomtone.config-hash"] and props["roomtone.code-version"]
    assert snap.stats["rows"] == 4 and snap.stats["class_counts"] == {"bell": 2, "dog": 2}
    assert snap.stats["audio_seconds"] == pytest.approx(0.8) and snap.stats["audio_hours"] == pytest.approx(0.8 / 3600)
    assert "hunter2" not in json.dumps(props)  # secret-looking config keys are redacted


def test_media_columns_record_no_metrics_and_publishing_warns_about_none(catalog, caplog):
    """Shards keep no min/max statistics for encoded audio; the table says so, so registering a
    file warns nothing (it had logged a line per media column per file), and a table from
    before the property gets it on its next publish."""
    modes = {"write.metadata.metrics.column.audio.bytes": "none", "write.metadata.metrics.column.audio.path": "none"}
    with caplog.at_level("WARNING", logger="pyiceberg"):
        publish_dataset(catalog, "clips", {"v": 1}, rows=4)
        with catalog._table("clips").transaction() as tx:  # as an older roomtone created it
            tx.remove_properties(*modes)
        assert not modes.keys() & catalog._table("clips").properties.keys()
        publish_dataset(catalog, "clips", {"v": 2}, rows=4)
    table = catalog._table("clips")
    assert {k: table.properties.get(k) for k in modes} == modes
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pyiceberg")] == []
    schema = table.schema()
    bounded = {schema.find_column_name(f) for t in table.scan().plan_files() for f in t.file.lower_bounds}
    assert {"id", "duration", "label"} <= bounded and not bounded & {"audio.bytes", "audio.path"}


def test_republishing_the_same_run_is_a_no_op(catalog):
    features = clip_features()
    run = catalog.create_run("clips", {"v": 1}, features)
    write_shard(run.shard("train", 0, 1), features, clip_rows(0, 2))
    a = catalog.publish(run)
    b = catalog.publish(run)
    assert a.snapshot_id == b.snapshot_id and len(catalog.history("clips")) == 1


def test_append_mode_adds_to_the_current_version(catalog):
    publish_dataset(catalog, "clips", {"v": 1}, rows=4)
    features = clip_features()
    run = catalog.create_run("clips", {"v": 2}, features, mode="append")
    write_shard(run.shard("train", 0, 1), features, clip_rows(10, 3))
    catalog.publish(run)
    assert sum(f.rows for f in catalog.files("clips")) == 7


def test_lineage_across_three_datasets(catalog):
    rirs = publish_dataset(catalog, "rirs", {"n": 1})
    events = publish_dataset(catalog, "events", {"n": 2})
    publish_dataset(catalog, "scenes", {"n": 3}, inputs=[f"rirs@v{rirs.version}", "events"])
    publish_dataset(catalog, "mixes", {"n": 4}, inputs=["scenes"])
    graph = catalog.lineage("mixes")
    assert graph["inputs"][0]["ref"] == catalog.show("scenes").ref
    roots = {node["ref"] for node in graph["inputs"][0]["inputs"]}
    assert roots == {rirs.ref, events.ref}
    assert catalog.show("scenes").inputs == [rirs.ref, events.ref]  # pinned to snapshot ids


def test_unknown_input_is_refused_before_work(catalog):
    with pytest.raises(NotFoundError, match="'rirs' is not in the catalog"):
        catalog.create_run("scenes", {}, clip_features(), inputs=["rirs"])


@pytest.mark.parametrize("name", ["../etc", "a/b", "Upper", "", "x" * 64, "1abc", "a-b", "a@b"])
def test_invalid_names_are_rejected(catalog, name):
    with pytest.raises(RoomtoneError, match="invalid"):
        catalog.create_run(name, {}, clip_features())


def test_unknown_snapshot_says_which_exist(catalog):
    publish_dataset(catalog, "clips", {"v": 1})
    with pytest.raises(NotFoundError, match="v1="):
        catalog.show("clips@v7")
    with pytest.raises(NotFoundError, match="not in the catalog"):
        catalog.show("nothing")


def test_schema_change_is_refused(catalog):
    publish_dataset(catalog, "clips", {"v": 1})
    other = datasets.Features({**clip_features(), "label": datasets.Value("int32")})
    with pytest.raises(SchemaMismatchError, match="label"):
        catalog.create_run("clips", {"v": 2}, other)


def test_incomplete_run_is_not_published(catalog):
    features = clip_features()
    run = catalog.create_run("clips", {"v": 1}, features)
    write_shard(run.shard("train", 0, 3), features, clip_rows(0, 2))
    with pytest.raises(RoomtoneError, match="1 of 3 shards"):
        catalog.publish(run)
    assert not catalog.exists("clips")


def _script(catalog, body: str) -> str:
    cfg = catalog.config.model_dump_json()
    return textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from catalog import Catalog, CatalogConfig, write_shard
        from tests.helpers import clip_features, clip_rows
        catalog = Catalog(CatalogConfig.model_validate_json({cfg!r}))
        features = clip_features()
    """) + textwrap.dedent(body)


def test_killed_run_leaves_nothing_visible_and_resumes(catalog, tmp_path):
    body = """
        run = catalog.create_run("clips", {"v": 1}, features)
        write_shard(run.shard("train", 0, 2), features, clip_rows(0, 2))
        from catalog.shards import ShardWriter
        ShardWriter(run.shard("train", 1, 2), features).write(list(clip_rows(2, 1)))  # staged under a hidden name
        print(run.location.uri, flush=True)
        time.sleep(60)  # killed here, while writing the second shard, before the publish
    """
    proc = subprocess.Popen([sys.executable, "-c", _script(catalog, body)], stdout=subprocess.PIPE, text=True)
    location = proc.stdout.readline().strip()
    proc.kill()
    proc.wait()
    assert location and not catalog.exists("clips")
    with pytest.raises(RoomtoneError, match="clips does not exist"):
        catalog.query("SELECT count(*) FROM clips")
    first_shard = os.path.join(location, "data/train/train-00000-of-00002.parquet")
    mtime = os.stat(first_shard).st_mtime_ns
    run = catalog.create_run("clips", {"v": 1}, clip_features())  # the same config finds the same folder
    assert list(run.finished_shards()) == ["data/train/train-00000-of-00002.parquet"]
    write_shard(run.shard("train", 1, 2), run.features, clip_rows(2, 2))
    assert list(Path(location).rglob(".*.tmp-*"))  # what the killed writer left
    snap = catalog.publish(run)
    assert snap.stats["rows"] == 4 and os.stat(first_shard).st_mtime_ns == mtime
    assert len(catalog.history("clips")) == 1
    assert sorted(p.name for p in Path(location, "data").rglob("*") if p.is_file()) == \
        ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]  # the published folder: its shards only


def test_concurrent_publishers_both_land(catalog):
    body = """
        v = int(sys.argv[1])
        run = catalog.create_run("clips", {"v": v}, features)
        write_shard(run.shard("train", 0, 1), features, clip_rows(10 * v, 2))
        while time.time() < float(sys.argv[2]):
            time.sleep(0.001)
        print(catalog.publish(run).snapshot_id)
    """
    catalog.iceberg  # create the catalog tables once, before the race
    start = time.time() + 8
    procs = [subprocess.Popen([sys.executable, "-c", _script(catalog, body), str(v), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    ids = {int(o[0].strip().splitlines()[-1]) for o in outs}
    assert {s.snapshot_id for s in catalog.history("clips")} == ids and len(ids) == 2
    assert sorted(s.config["v"] for s in catalog.history("clips")) == [1, 2]


def test_catalog_on_s3_root(bucket, tmp_path):
    from catalog import CatalogConfig

    cat = Catalog(CatalogConfig(root=f"s3://{bucket}/home", uri=f"sqlite:///{tmp_path}/catalog.db"))
    snap = publish_dataset(cat, "clips", {"v": 1})
    assert all(f.uri.startswith(f"s3://{bucket}/home/datasets/clips/") for f in cat.files("clips"))
    assert cat.query("SELECT count(*) AS n FROM clips").column("n").to_pylist() == [snap.stats["rows"]]
    assert len(cat.to_hf("clips", split="train")) == 4


def test_s3_root_needs_a_catalog_database():
    from catalog import CatalogConfig

    with pytest.raises(RoomtoneError, match="ROOMTONE_CATALOG_URI"):
        CatalogConfig(root="s3://bucket/home")


def test_loaders_and_float32_array_columns(catalog, ray_cluster):
    """RIR-style float32 array columns pass through Iceberg, datasets, Ray and DuckDB."""
    import numpy as np

    features = datasets.Features({"id": datasets.Value("string"),
                                  "rir": datasets.Sequence(datasets.Value("float32")),
                                  "rt60": datasets.Value("float32")})
    run = catalog.create_run("rirs", {"v": 1}, features)
    rows = [{"id": f"r{i}", "rir": np.linspace(0, 1, 100 + i, dtype=np.float32).tolist(), "rt60": 0.1 * i}
            for i in range(5)]
    write_shard(run.shard("train", 0, 1), features, rows)
    catalog.publish(run)
    ds = catalog.to_hf("rirs", split="train")
    assert ds.features == features and len(ds[3]["rir"]) == 103
    streamed = next(iter(catalog.to_hf("rirs", split="train", streaming=True)))
    assert streamed["id"] == "r0" and len(streamed["rir"]) == 100
    assert sorted(r["id"] for r in catalog.to_ray("rirs").take_all()) == [f"r{i}" for i in range(5)]
    assert catalog.query("SELECT max(len(rir)) AS n FROM rirs").column("n").to_pylist() == [104]


def test_unwritable_root_fails_before_work(tmp_path):
    from catalog import CatalogConfig, StorageError

    (tmp_path / "file").write_text("not a directory")
    cat = Catalog(CatalogConfig(root=str(tmp_path / "file" / "home"), uri=f"sqlite:///{tmp_path}/c.db"))
    with pytest.raises(StorageError, match="cannot create"):
        cat.create_run("clips", {}, clip_features())
