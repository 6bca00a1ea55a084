"""What changed between two versions: config leaves, statistics, class counts, files; the CLI table."""

import json

import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError, write_shard
from tests.helpers import clip_features, clip_rows, publish_dataset
from tests.test_cli import roomtone


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def catalog(home):
    return Catalog(CatalogConfig(root=str(home)))


def test_diff_names_each_changed_leaf_statistic_class_and_file(catalog):
    first = publish_dataset(catalog, "clips", {"rate": 16000, "augment": {"gain_db": 1, "steps": ["gain"]}}, rows=4)
    second = publish_dataset(catalog, "clips", {"rate": 16000, "augment": {"gain_db": 3, "steps": ["gain"]},
                                                "polyphony": 2}, rows=6)
    d = catalog.diff("clips")
    assert (d.old.version_ref, d.new.version_ref) == ("clips@v1", "clips@v2")
    assert d.to_dict() == catalog.diff("clips@v1", f"clips@{second.snapshot_id}").to_dict()
    config = {c.key: (c.old, c.new, c.delta) for c in d.section("config")}
    assert config == {"augment.gain_db": (1, 3, 2), "polyphony": (None, 2, None)}  # rate and steps did not change
    stats = {c.key: (c.old, c.new, c.delta) for c in d.section("stats")}
    assert stats["rows"] == (4, 6, 2) and stats["splits.train"] == (4, 6, 2)
    assert stats["bytes"][2] == second.stats["bytes"] - first.stats["bytes"]
    assert {c.key: c.delta for c in d.section("classes")} == {"bell": 1, "dog": 1}
    assert [c.key for c in d.section("provenance")] == ["config_hash"]
    assert d.files_added == [f.uri for f in catalog.files("clips@v2")]
    assert d.files_removed == [f.uri for f in catalog.files("clips@v1")] and d.files_shared == 0

    back = catalog.diff("clips@v2", "clips@v1")  # either direction: old and new swap, deltas flip sign
    assert {c.key: c.delta for c in back.section("stats")}["rows"] == -2
    same = catalog.diff("clips@v1", "clips@v1")
    assert same.changes == [] and same.files_shared == 2 and not same.files_added


def test_an_appended_version_counts_all_its_rows_and_shares_the_files_before_it(catalog):
    publish_dataset(catalog, "clips", {"v": 1}, rows=4)
    run = catalog.create_run("clips", {"v": 2}, clip_features(), mode="append")
    write_shard(run.shard("train", 0, 1), run.features, clip_rows(10, 2, labels=("owl",)))
    appended = catalog.publish(run)
    assert catalog.publish(run) == appended  # its files are in already: no second snapshot counting them twice
    assert appended.stats["rows"] == 6 and appended.stats["splits"] == {"train": 6} and appended.stats["shards"] == 3
    assert appended.stats["class_counts"] == {"bell": 2, "dog": 2, "owl": 2}  # the whole version's, not the run's
    d = catalog.diff("clips")
    assert d.files_shared == 2 and len(d.files_added) == 1 and d.files_removed == []
    assert {c.key: (c.old, c.new) for c in d.section("classes")} == {"owl": (0, 2)}  # absent counts read 0
    assert [(c.key, c.old, c.new) for c in d.section("config")] == [("v", 1, 2)]


def test_one_ref_compares_with_the_version_before_it_that_still_exists(catalog):
    for v in range(3):
        publish_dataset(catalog, "clips", {"v": v})
    with pytest.raises(RoomtoneError, match="clips@v1 is the first version of clips"):
        catalog.diff("clips@v1")
    catalog.expire("clips", keep_last=1, keep=["clips@v1"])
    d = catalog.diff("clips")
    assert (d.old.version, d.new.version) == (1, 3)
    assert {c.key: (c.old, c.new) for c in d.section("config")} == {"v": (0, 2)}


def test_cli_diff_prints_the_changes_and_json(catalog, home):
    publish_dataset(catalog, "clips", {"augment": {"gain_db": 1}}, rows=4)
    publish_dataset(catalog, "clips", {"augment": {"gain_db": 3}}, rows=6)
    out = roomtone("catalog", "diff", "clips", root=home).stdout
    assert "clips@v1 -> clips@v2" in out and "files: 2 added, 2 removed, 0 shared" in out
    row = next(line for line in out.splitlines() if "augment.gain_db" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["config", "augment.gain_db", "1", "3", "+2"]
    assert "+2" in next(line for line in out.splitlines() if " rows " in line)
    data = json.loads(roomtone("catalog", "diff", "clips@v2", "clips@v1", "--json", root=home).stdout)
    assert data["changes"]["stats"]["rows"] == {"old": 6, "new": 4, "delta": -2}
    many = [f"class{i:02d}" for i in range(25)]
    publish_dataset(catalog, "tags", {"v": 1}, rows=25)
    run = catalog.create_run("tags", {"v": 2}, clip_features())
    write_shard(run.shard("train", 0, 1), run.features, clip_rows(0, 50, labels=many))  # 25 classes, 2 each
    catalog.publish(run)
    out = roomtone("catalog", "diff", "tags", root=home).stdout
    assert "7 more class counts changed, none by more (all of them: --json)" in out  # 20 rows of 27 changed classes
    assert "class00" in out and " dog " in out  # the largest moves first: dog 13 -> 0 beats class00 0 -> 2
    bad = roomtone("catalog", "diff", "clips@v1", root=home, check=False)
    assert bad.returncode == 1 and "nothing came before it" in bad.stderr
