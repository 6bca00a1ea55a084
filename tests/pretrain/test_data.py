"""The training stream: per-rank lanes, resumable plans, seeded crops, and refusals before work."""

from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog, CatalogConfig, NotFoundError, RoomtoneError
from pretrain.data import InputSpec, Source, crop_row, iter_batches, lanes_for_rank, open_source, plan_segments, \
    row_groups, started
from tests.helpers import SONIC_PI, copy_sonic_pi, sonic_pi_rows


def ingest_sonic_pi(root: Path, *, per_label: int, labels: int, max_seconds: float = 11.0, test_fraction=0.0,
                    max_shard_bytes: int = 64 << 20) -> Catalog:
    """A catalog holding the CC0 sonic-pi events (the `labels` most common labels, `per_label` each) at 16 kHz."""
    from pipelines.stages.events import EventsConfig, run_ingest_events

    if not SONIC_PI.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    rows = sonic_pi_rows(max_seconds)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    keep = sorted(counts, key=lambda k: (-counts[k], k))[:labels]
    taken: dict[str, int] = {}
    chosen = []
    for r in rows:
        if r["label"] in keep and taken.get(r["label"], 0) < per_label:
            taken[r["label"]] = taken.get(r["label"], 0) + 1
            chosen.append(r)
    labels_csv = copy_sonic_pi(root / "sonic-pi", chosen)
    catalog = Catalog(CatalogConfig(root=str(root / "home")))
    run_ingest_events(EventsConfig(folder=labels_csv.parent, labels_csv=labels_csv, sample_rate=16_000,
                                   test_fraction=test_fraction, max_shard_bytes=max_shard_bytes),
                      catalog, show_progress=False)
    return catalog


@pytest.fixture(scope="module")
def events(tmp_path_factory, ray_cluster) -> Catalog:
    return ingest_sonic_pi(tmp_path_factory.mktemp("data"), per_label=3, labels=3, max_shard_bytes=100_000)


def _source(files: list[int]) -> Source:
    return Source("x@1", "train", tuple((f"/d/train-{i:05d}.parquet", n) for i, n in enumerate(files)), "0", (), {})


@pytest.mark.parametrize("files", [[7], [3, 4, 5], [1, 9]])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_lanes_cover_every_row_once_and_no_rank_shares_a_row(files, world):
    src = _source(files)
    seen = []
    for rank in range(world):
        for uri, a, b in lanes_for_rank(src, rank, world):
            seen += [(uri, i) for i in range(a, b)]
    assert sorted(seen) == sorted((uri, i) for uri, n in src.files for i in range(n))


def test_a_plan_resumed_at_any_row_continues_the_same_stream():
    lanes = lanes_for_rank(_source([3, 4, 5]), 0, 1)
    rows = lambda segs: [(s["uri"], s["epoch"], i) for s in segs for i in range(s["start"], s["stop"])]  # noqa: E731
    whole = rows(plan_segments(lanes, 7, 0, 0, 40))
    assert len(whole) == 40 and len(set(whole)) == 40  # 12 rows per epoch: over 3 epochs, none twice
    for cut in (1, 11, 12, 25):
        assert rows(plan_segments(lanes, 7, 0, 0, cut)) + rows(plan_segments(lanes, 7, 0, cut, 40 - cut)) == whole
    epochs = [[r[0] for r in whole if r[1] == e] for e in range(3)]
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # lane order is reshuffled per epoch


@pytest.mark.parametrize("start, stop", [(0, 23), (0, 5), (3, 17), (10, 20), (12, 13), (22, 23), (7, 7)])
def test_row_groups_give_exactly_the_segment_and_read_only_the_groups_it_touches(tmp_path, start, stop):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [f"r{i}" for i in range(23)], "x": list(range(23))}), tmp_path / "s.parquet",
                   row_group_size=5)  # groups [0, 5), [5, 10), ..., [20, 23)
    parts = list(row_groups(pq.ParquetFile(tmp_path / "s.parquet"), start, stop, ["id"]))
    assert [r["id"] for p in parts for r in p.to_pylist()] == [f"r{i}" for i in range(start, stop)]
    assert len(parts) == len({i // 5 for i in range(start, stop)})  # one read per group the rows lie in
    assert all(p.column_names == ["id"] for p in parts)


def test_stream_yields_batches_in_plan_order_with_seeded_crops(events):
    src = open_source(events, "events", "train", "tagging")
    assert len(src.files) > 1 and src.classes and len(src.digest) == 64
    spec = InputSpec("tagging", 1.0, 16_000, 3, src.classes)
    segments = plan_segments(lanes_for_rank(src, 0, 1), 3, 0, 0, src.rows + 4)
    batches = list(iter_batches(segments, spec, batch_size=4))
    ids = [i for b in batches for i in b["id"]]
    table = events.arrow_dataset(src.ref, "train").to_table(columns=["id", "label"]).to_pylist()
    labels = {r["id"]: r["label"] for r in table}
    assert [i for s in segments for i in _ids(events, s)] == ids
    for b in batches:
        assert b["fbank"].shape == (len(b["id"]), 100, 128) and np.isfinite(b["fbank"].numpy()).all()
        assert [src.classes[k] for k in b["target"].argmax(1).tolist()] == [labels[i] for i in b["id"]]
    row = next(r for r in events.arrow_dataset(src.ref, "train").to_table().to_pylist()
               if r["duration"] > 2.0)
    a, b, c = (crop_row(row, spec, epoch)["wave"] for epoch in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # crops follow (seed, id, epoch) only


def _ids(catalog, segment) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(segment["uri"], columns=["id"]).column("id").to_pylist()[segment["start"]:segment["stop"]]


def test_bad_datasets_are_refused_before_any_work(events):
    with pytest.raises(RoomtoneError, match=r"no column 'labels', 'format', which seld training needs"):
        open_source(events, "events", "train", "seld")
    with pytest.raises(NotFoundError, match="events@v99 does not exist"):
        open_source(events, "events@v99", "train", "ssast")
    with pytest.raises(NotFoundError, match="'nope' is not in the catalog"):
        open_source(events, "nope", "train", "ssast")
    with pytest.raises(RoomtoneError, match="no rows in split 'test'"):
        open_source(events, "events", "test", "ssast")


def test_a_mic_scenes_dataset_is_refused_for_seld_training(tmp_path):
    """SELD features are FOA intensity vectors and its rotations FOA channel maps: MIC scenes were
    accepted (4 channels) and trained on directions their audio does not hold."""
    import datasets

    from catalog import audio_cell, encode_flac, write_shard

    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    features = datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=24_000),
                                  "labels": datasets.Value("string"), "format": datasets.Value("string")})
    run = catalog.create_run("mic_scenes", {"rows": 1}, features, info={"classes": ["dog"]})
    write_shard(run.shard("train", 0, 1), features, [{"id": "s0", "labels": "[]", "format": "mic",
                                                      "audio": audio_cell(encode_flac(np.zeros((2400, 4)), 24_000),
                                                                          "s0.flac")}])
    catalog.publish(run)
    with pytest.raises(RoomtoneError, match=r"holds \['mic'\] audio \(format\), but SELD training reads FOA"):
        open_source(catalog, "mic_scenes", "train", "seld")


def test_started_fetches_the_first_item_before_it_is_asked_for_and_keeps_items_and_errors():
    import threading

    asked = threading.Event()

    def source(n, fail_at=None):
        for i in range(n):
            asked.set()
            if i == fail_at:
                raise ValueError(f"item {i} is bad")
            yield i

    batches = started(source(4))
    assert asked.wait(5)  # the caller has not asked yet: the thread is already reading
    assert list(batches) == [0, 1, 2, 3]
    assert list(started(source(0))) == []
    for fail_at in (0, 2):
        with pytest.raises(ValueError, match=f"item {fail_at} is bad"):
            list(started(source(4, fail_at)))

