"""The demo dataset job on a real local Ray cluster."""

import numpy as np
import pytest

from catalog import decode_audio
from pipelines.seeding import item_seed
from pipelines.sharded import split_into_shards
from pipelines.stages.tones import TonesConfig, run_tones, synth_clip


def _rows(catalog, ref):
    table = catalog.arrow_dataset(ref).to_table()
    return {r["id"]: r for r in table.to_pylist()}


def test_item_seed_depends_on_seed_and_id_only():
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(0, "b") != item_seed(1, "a")
    assert item_seed(0, "a", "split") != item_seed(0, "a")


def test_split_into_shards_covers_items_once():
    tasks = split_into_shards({"train": list(range(10)), "test": [1]}, {"train": 3, "test": 4})
    assert [t.count for t in tasks] == [3, 3, 3, 1]
    assert sorted(i for t in tasks if t.split == "train" for i in t.items) == list(range(10))


def test_tones_job_publishes_all_rows_with_exact_audio(tmp_path, ray_cluster):
    from catalog import Catalog, CatalogConfig

    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    cfg = TonesConfig(num_clips=10, clip_seconds=0.5, max_shard_bytes=100_000)
    snap = run_tones(cfg, catalog, show_progress=False)
    assert snap.stats["rows"] == 10 and snap.stats["splits"] == {"test": 2, "train": 8}
    assert snap.stats["shards"] > 2 and snap.properties.get("roomtone.ray-job-id")
    rows = _rows(catalog, snap.ref)
    assert sorted(rows) == [f"clip-{i:07d}" for i in range(10)]
    audio, rate = decode_audio(rows["clip-0000003"]["audio"]["bytes"])
    expected, label = synth_clip(cfg, "clip-0000003")
    assert rate == 24_000 and audio.shape == (12_000, 4) and rows["clip-0000003"]["label"] == label
    np.testing.assert_allclose(audio, expected, atol=1 / 32768)


def test_output_is_independent_of_sharding_and_workers(tmp_path, ray_cluster):
    """Same seed, different shard plans: byte-identical audio per clip."""
    from catalog import Catalog, CatalogConfig

    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    a = run_tones(TonesConfig(name="a", num_clips=6, clip_seconds=0.25, max_shard_bytes=10**9),
                  catalog, show_progress=False)
    b = run_tones(TonesConfig(name="b", num_clips=6, clip_seconds=0.25, max_shard_bytes=100_000),
                  catalog, show_progress=False)
    assert a.stats["shards"] != b.stats["shards"]
    ra, rb = _rows(catalog, a.ref), _rows(catalog, b.ref)
    assert {k: v["audio"]["bytes"] for k, v in ra.items()} == {k: v["audio"]["bytes"] for k, v in rb.items()}


def test_rerun_resumes_and_publishes_once(tmp_path, ray_cluster):
    from catalog import Catalog, CatalogConfig

    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    cfg = TonesConfig(num_clips=6, clip_seconds=0.25, max_shard_bytes=100_000)
    first = run_tones(cfg, catalog, show_progress=False)
    shard = catalog.files(first.ref)[0]
    again = run_tones(cfg, catalog, show_progress=False)
    assert again.snapshot_id == first.snapshot_id and len(catalog.history(cfg.name)) == 1
    assert catalog.files(again.ref)[0] == shard


def test_bad_config_is_refused_before_work():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="num_clips"):
        TonesConfig(num_clips=0)
    with pytest.raises(ValidationError, match="extra"):
        TonesConfig(bogus=1)
