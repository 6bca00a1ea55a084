"""Expiring old versions: what stays and why, which files go, numbers that do not move, a killed expire."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import Catalog, CatalogConfig, NotFoundError, RoomtoneError, write_shard
from tests.catalog.test_catalog import _script
from tests.helpers import clip_features, clip_rows, publish_dataset
from tests.test_cli import roomtone


def test_expire_keeps_current_newest_pinned_and_inputs_and_deletes_the_rest(catalog):
    snaps = [publish_dataset(catalog, "clips", {"v": v}, rows=4) for v in range(6)]
    publish_dataset(catalog, "derived", {"v": 0}, inputs=["clips@v2"])
    folder = {s.version: Path(s.location) for s in snaps}
    before = {v: sorted(p.name for p in f.rglob("*") if p.is_file()) for v, f in folder.items()}

    dry = catalog.expire("clips", keep_last=2, keep=["clips@v1"], dry_run=True)
    assert [s.version for s in dry.expired] == [3, 4] and not dry.done
    assert dry.kept == {"clips@v1": "kept by --keep clips@v1", "clips@v2": "input of derived@v1",
                        "clips@v5": "among the newest 2", "clips@v6": "current"}
    assert len(dry.files) == 6 and dry.bytes > 0  # two shards and a card each
    assert [s.version for s in catalog.history("clips")] == [1, 2, 3, 4, 5, 6]  # a dry run changes nothing

    done = catalog.expire("clips", keep_last=2, keep=["clips@v1"])
    assert done.done and sorted(done.files) == sorted(dry.files) and done.bytes == dry.bytes
    assert [s.version for s in catalog.history("clips")] == [1, 2, 5, 6]  # numbers do not move
    assert catalog.show("clips@v5").config == {"v": 4} and catalog.show("clips@v5").snapshot_id == snaps[4].snapshot_id
    assert not folder[3].exists() and not folder[4].exists()
    for v in (1, 2, 5, 6):
        assert sorted(p.name for p in folder[v].rglob("*") if p.is_file()) == before[v]
    assert catalog.query('SELECT count(*) AS n FROM "clips@v2"').column("n").to_pylist() == [4]
    assert catalog.lineage("derived")["inputs"][0]["version"] == 2
    with pytest.raises(NotFoundError, match="clips@v3 does not exist.*v5="):
        catalog.show("clips@v3")
    assert not catalog.expire("clips", keep_last=2, keep=["clips@v1"]).expired  # nothing left to expire


def test_a_kept_version_made_from_older_ones_of_its_own_dataset_keeps_them(catalog):
    publish_dataset(catalog, "clips", {"v": 0})
    publish_dataset(catalog, "clips", {"v": 1})  # unrelated: goes
    publish_dataset(catalog, "clips", {"v": 2}, inputs=["clips@v1"])
    publish_dataset(catalog, "clips", {"v": 3}, inputs=["clips@v3"])  # a chain: v4 <- v3 <- v1
    plan = catalog.expire("clips", keep_last=1)
    assert [s.version for s in plan.expired] == [2]
    assert plan.kept == {"clips@v1": "input of clips@v3", "clips@v3": "input of clips@v4", "clips@v4": "current"}
    assert catalog.lineage("clips")["inputs"][0]["inputs"][0]["version"] == 1


def test_older_than_and_keep_last_together_and_bad_rules(catalog):
    publish_dataset(catalog, "clips", {"v": 0})
    publish_dataset(catalog, "clips", {"v": 1})
    publish_dataset(catalog, "other", {"v": 0})
    assert catalog.expire("clips", older_than_days=1).kept == {"clips@v1": "younger than 1 day",
                                                               "clips@v2": "current"}
    with pytest.raises(RoomtoneError, match="expire needs a rule for what to keep"):
        catalog.expire("clips")
    with pytest.raises(RoomtoneError, match="keep_last=0 must be at least 1"):
        catalog.expire("clips", keep_last=0)
    with pytest.raises(RoomtoneError, match="--keep other@v1 is a version of another dataset"):
        catalog.expire("clips", keep_last=1, keep=["other@v1"])
    with pytest.raises(NotFoundError, match="clips@v9 does not exist"):
        catalog.expire("clips", keep_last=1, keep=["clips@v9"])
    assert [s.version for s in catalog.expire("clips", older_than_days=0, keep_last=1).expired] == [1]


def test_files_an_appended_version_still_uses_stay(catalog):
    first = publish_dataset(catalog, "clips", {"v": 1}, rows=4)
    run = catalog.create_run("clips", {"v": 2}, clip_features(), mode="append")
    write_shard(run.shard("train", 0, 1), run.features, clip_rows(10, 3))
    catalog.publish(run)
    plan = catalog.expire("clips", keep_last=1)
    assert [s.version for s in plan.expired] == [1] and plan.files == []
    assert (Path(first.location) / "README.md").is_file()  # its folder still holds shards the current version reads
    assert sum(f.rows for f in catalog.files("clips")) == 7


def test_a_killed_expire_is_finished_by_the_next_one(catalog):
    for v in range(3):
        publish_dataset(catalog, "clips", {"v": v})
    gone = Path(catalog.history("clips")[0].location)
    body = """
        import signal
        from catalog import retention
        retention.finish_pending = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed after the commit
        catalog.expire("clips", keep_last=2)
    """
    proc = subprocess.run([sys.executable, "-c", _script(catalog, body)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    fresh = Catalog(catalog.config)
    assert [s.version for s in fresh.history("clips")] == [2, 3]  # the metadata commit landed
    assert gone.is_dir()  # its files were not deleted yet
    plan = fresh.expire("clips", keep_last=2)  # nothing new to expire; finishes the pending deletes
    assert not plan.expired and len(plan.files) == 3 and not gone.exists()
    assert "roomtone.expiring" not in fresh._table("clips").properties


def test_expire_on_an_s3_root(bucket, tmp_path):
    from catalog import Location

    cat = Catalog(CatalogConfig(root=f"s3://{bucket}/home", uri=f"sqlite:///{tmp_path}/catalog.db"))
    first = publish_dataset(cat, "clips", {"v": 1})
    publish_dataset(cat, "clips", {"v": 2})
    assert len(list(Location.parse(first.location).list_files())) == 3
    plan = cat.expire("clips", keep_last=1)
    assert len(plan.files) == 3 and list(Location.parse(first.location).list_files()) == []
    assert [s.version for s in cat.history("clips")] == [2] and len(cat.to_hf("clips", split="train")) == 4


def test_expire_from_the_command_line(tmp_path):
    cat = Catalog(CatalogConfig(root=str(tmp_path)))
    for v in range(3):
        publish_dataset(cat, "clips", {"v": v})
    shown = roomtone("catalog", "expire", "clips", "--keep-last", "2", "--dry-run", root=tmp_path).stdout
    assert "clips@v1" in shown and "expire" in shown and "keep: current" in shown and "3 file(s)" in shown
    done = json.loads(roomtone("catalog", "expire", "clips", "--keep-last", "2", "--json", root=tmp_path).stdout)
    assert done["expired"] == ["clips@v1"] and done["files"] == 3 and done["done"]
    refused = roomtone("catalog", "expire", "clips", root=tmp_path, check=False)
    assert refused.returncode == 1 and "--keep-last N" in refused.stderr and "Traceback" not in refused.stderr


def test_drop_removes_every_version_file_and_metadata_and_guards_lineage(catalog):
    publish_dataset(catalog, "clips", {"v": 1})
    publish_dataset(catalog, "clips", {"v": 2})
    publish_dataset(catalog, "derived", {"v": 1}, inputs=["clips@v1"])
    publish_dataset(catalog, "other", {"v": 1})
    folder = Path(catalog.config.datasets_location().join("clips").uri)
    metadata = Path(catalog._table("clips").location().removeprefix("file://"))
    with pytest.raises(RoomtoneError, match="derived@v1 was made from clips.*drop it first, or pass --force"):
        catalog.drop("clips")
    dry = catalog.drop("clips", force=True, dry_run=True)
    assert dry.versions == ["clips@v1", "clips@v2"] and dry.files == 6 and not dry.done and folder.is_dir()
    done = catalog.drop("clips", force=True)
    assert done.done and done.bytes == dry.bytes
    assert catalog.names() == ["derived", "other"] and not folder.exists() and not metadata.exists()
    assert catalog.to_hf("other", split="train").num_rows == 4  # the others are untouched
    with pytest.raises(NotFoundError, match="dataset 'clips' is not in the catalog"):
        catalog.drop("clips")
    publish_dataset(catalog, "clips", {"v": 1})  # the name can be used again, from v1
    assert [s.version for s in catalog.history("clips")] == [1]


def test_a_killed_drop_is_finished_by_the_next_one_and_a_bare_folder_needs_force(catalog):
    publish_dataset(catalog, "clips", {"v": 1})
    folder = Path(catalog.config.datasets_location().join("clips").uri)
    body = """
        import signal
        from catalog import Location
        Location.exists = lambda self: os.kill(os.getpid(), signal.SIGKILL)  # killed right after the table drop
        catalog.drop("clips")
    """
    proc = subprocess.run([sys.executable, "-c", _script(catalog, body)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    fresh = Catalog(catalog.config)
    assert "clips" not in fresh.names() and (folder / "DROPPING.json").is_file()  # nothing visible; files left
    plan = fresh.drop("clips")  # the marker says a drop began: no --force needed
    assert plan.versions == [] and plan.files == 4 and not folder.exists()

    (folder / "abc").mkdir(parents=True)  # an unpublished first run: no table, no marker
    (folder / "abc" / "train-00000-of-00001.parquet").write_bytes(b"x")
    with pytest.raises(RoomtoneError, match="not yet published.*pass --force"):
        fresh.drop("clips")
    assert fresh.drop("clips", force=True).files == 1 and not folder.exists()


def test_drop_on_an_s3_root_and_from_the_command_line(bucket, tmp_path):
    from catalog import Location

    cat = Catalog(CatalogConfig(root=f"s3://{bucket}/home", uri=f"sqlite:///{tmp_path}/catalog.db"))
    publish_dataset(cat, "clips", {"v": 1})
    publish_dataset(cat, "clips", {"v": 2})
    assert cat.drop("clips").files == 6
    assert list(Location.parse(f"s3://{bucket}/home").list_files()) == []  # shards, cards and metadata
    local = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    publish_dataset(local, "clips", {"v": 1})
    shown = roomtone("catalog", "drop", "clips", "--dry-run", root=tmp_path / "home").stdout
    assert "clips@v1" in shown and "3 file(s)" in shown and local.names() == ["clips"]
    done = json.loads(roomtone("catalog", "drop", "clips", "--json", root=tmp_path / "home").stdout)
    assert done["done"] and done["versions"] == ["clips@v1"] and local.names() == []
    missing = roomtone("catalog", "drop", "clips", root=tmp_path / "home", check=False)
    assert missing.returncode == 1 and "not in the catalog" in missing.stderr and "Traceback" not in missing.stderr
