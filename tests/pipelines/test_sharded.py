"""The sharded Ray job machinery, exercised through the synthetic event library stage."""

import numpy as np
import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError, decode_audio
from pipelines.sharded import split_into_shards
from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events
from simulation.seeding import item_seed

SMALL = dict(per_class=4, kinds=["harmonic_tone", "siren", "footsteps"], duration=(0.4, 0.8))


def _audio(catalog, ref):
    return {r["id"]: r["audio"]["bytes"] for r in catalog.arrow_dataset(ref).to_table().to_pylist()}


def test_item_seed_depends_on_seed_and_id_only():
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(0, "b") != item_seed(1, "a")
    assert item_seed(0, "a", "split") != item_seed(0, "a")


def test_split_into_shards_covers_items_once():
    tasks = split_into_shards({"train": list(range(10)), "test": [1]}, {"train": 3, "test": 4})
    assert [t.count for t in tasks] == [3, 3, 3, 1]
    assert sorted(i for t in tasks if t.split == "train" for i in t.items) == list(range(10))


def test_job_publishes_every_row_once_with_a_ray_job_id(tmp_path, ray_cluster):
    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    snap = run_synthetic_events(SyntheticEventsConfig(max_shard_bytes=100_000, **SMALL), catalog,
                                show_progress=False)
    assert snap.stats["rows"] == 12 and snap.stats["class_counts"] == {"footsteps": 4, "harmonic_tone": 4, "siren": 4}
    assert snap.properties.get("roomtone.ray-job-id")
    audio, rate = decode_audio(next(iter(_audio(catalog, snap.ref).values())))
    assert rate == 24_000 and audio.shape[1] == 1 and np.isfinite(audio).all()


def test_output_is_independent_of_sharding_and_workers(tmp_path, ray_cluster):
    """Same seed, different shard plans (so different task-to-worker layouts): identical bytes."""
    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    one = run_synthetic_events(SyntheticEventsConfig(name="one", max_shard_bytes=10**9, **SMALL), catalog,
                               show_progress=False)
    many = run_synthetic_events(SyntheticEventsConfig(name="many", max_shard_bytes=100_000, **SMALL), catalog,
                                show_progress=False)
    assert one.stats["shards"] == 1 < many.stats["shards"]
    assert _audio(catalog, one.ref) == _audio(catalog, many.ref)


def test_rerun_resumes_and_publishes_once(tmp_path, ray_cluster):
    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    cfg = SyntheticEventsConfig(max_shard_bytes=100_000, **SMALL)
    first = run_synthetic_events(cfg, catalog, show_progress=False)
    files = catalog.files(first.ref)
    victim = files[0].uri
    import os

    os.remove(victim)  # as if the job had died before this shard
    catalog2 = Catalog(CatalogConfig(root=str(tmp_path), namespace="second"))
    again = run_synthetic_events(cfg, catalog2, show_progress=False)
    assert os.path.exists(victim) and again.stats["rows"] == 12
    assert run_synthetic_events(cfg, catalog, show_progress=False).snapshot_id == first.snapshot_id
    assert len(catalog.history(cfg.name)) == 1


def test_a_failing_shard_names_itself_and_publishes_nothing(tmp_path, ray_cluster):
    from pipelines.sharded import ShardTask, run_sharded

    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    cfg = SyntheticEventsConfig(**SMALL)
    from pipelines.stages.events import features

    run = catalog.create_run("broken", {"v": 1}, features(cfg))
    with pytest.raises(RoomtoneError, match=r"shard data/train/train-00001-of-00002.parquet failed: ValueError"):
        run_sharded(catalog, run, [ShardTask("train", 0, 2, ()), ShardTask("train", 1, 2, ("boom",))],
                    _rows_or_fail, show_progress=False)
    assert not catalog.exists("broken")


def _rows_or_fail(task):
    for item in task.items:
        raise ValueError(f"cannot make {item}")
    return iter(())


def test_bad_config_is_refused_before_work():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="per_class"):
        SyntheticEventsConfig(per_class=0)
    with pytest.raises(ValidationError, match="extra"):
        SyntheticEventsConfig(bogus=1)
