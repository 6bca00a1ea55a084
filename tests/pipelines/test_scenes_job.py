"""Scenes from real CC0 events (../shared/data) and simulated rooms, on a real Ray cluster."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError, decode_audio
from pipelines.qa.facts import reverb_word
from pipelines.stages.events import EventsConfig, run_ingest_events
from pipelines.stages.rirs import RirsConfig, run_rirs
from pipelines.stages.scenes import ScenesConfig, run_scenes
from tests.helpers import REPO_ROOT, SONIC_PI, copy_sonic_pi, sonic_pi_rows

ROOMS = dict(num_rooms=2, sources_per_room=1, room_x=(4.0, 6.0), room_y=(4.0, 6.0), room_z=(2.5, 3.5),
             rt60=(0.2, 0.4), test_fraction=0.5, max_shard_bytes=200_000)
GRID = dict({k: v for k, v in ROOMS.items() if k != "sources_per_room"}, room_x=(5.0, 6.0), room_y=(5.0, 6.0), wall_clearance=0.5, rt60=(0.2, 0.3), placement="grid",
            grid_azimuth_step=30.0, grid_elevations=[-20.0, 20.0], grid_distances=[1.0], rir_seconds=0.2)
SCENES = dict(num_scenes=3, clip_seconds=4.0, max_event_seconds=2.0, rir_seconds=0.25, test_fraction=0.34,
              max_shard_bytes=100_000, events_per_minute=60.0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, ray_cluster):
    """A catalog holding ingested sonic-pi events and FOA and MIC RIR sets."""
    if not SONIC_PI.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    root = tmp_path_factory.mktemp("scenes")
    rows = sonic_pi_rows(max_seconds=1.5)[:8]
    labels_csv = copy_sonic_pi(root / "events", rows)
    catalog = Catalog(CatalogConfig(root=str(root / "home")))
    run_ingest_events(EventsConfig(folder=labels_csv.parent, labels_csv=labels_csv), catalog, show_progress=False)
    run_rirs(RirsConfig(name="foa_rooms", array="foa", **ROOMS), catalog, show_progress=False)
    run_rirs(RirsConfig(name="mic_rooms", array="mic", **ROOMS), catalog, show_progress=False)
    run_rirs(RirsConfig(name="foa_grid", array="foa", **GRID), catalog, show_progress=False)
    return catalog, sorted({r["label"] for r in rows})


def test_scenes_labels_agree_with_their_events_and_export_round_trips(inputs, tmp_path):
    from simulation.seld import dcase2023_scores, read_dcase_csv, SeldLabels

    catalog, labels = inputs
    snap = run_scenes(ScenesConfig(rirs="foa_rooms", **SCENES), catalog, show_progress=False)
    assert snap.stats["rows"] == 3 and snap.stats["splits"] == {"test": 1, "train": 2}
    assert snap.info["classes"] == labels and snap.inputs == [catalog.show("events").ref, catalog.show("foa_rooms").ref]
    test_rooms = {r["room_id"] for r in catalog.arrow_dataset("foa_rooms").to_table().to_pylist()
                  if r["room_id"] == "room-0000000"}
    rows = catalog.arrow_dataset(snap.ref).to_table().to_pylist()
    for row in rows:
        audio, rate = decode_audio(row["audio"]["bytes"])
        assert audio.shape == (4 * rate, 4) and rate == 24_000 and np.isfinite(audio).all()
        assert row["caption"] and row["events"] and np.isfinite(row["noise_snr_db"])
        assert row["caption"].endswith(f"{reverb_word(row['rt60'])} room")  # the RT60 QA's room questions answer
        for event in row["events"]:
            assert np.isfinite(event["snr_db"]) and -10 <= event["level_db"] <= 0
            frames = [l for l in row["labels"] if l["track"] == event["track"]
                      and round(event["onset"] / 0.1) <= l["frame"] < round(event["offset"] / 0.1)]
            assert len(frames) == round((event["offset"] - event["onset"]) / 0.1)
            assert all(l["distance"] == pytest.approx(event["distance"], rel=1e-5) for l in frames)
            assert all(l["class_index"] == labels.index(event["class_name"]) for l in frames)
        # each event's power in the clip (dBFS) stands above its SNR by the ambience's power in the clip,
        # which with the clip SNR gives the clip's mean square (up to the events' chance correlation with it)
        ambience = [e["power_db"] - e["snr_db"] for e in row["events"]]
        assert np.ptp(ambience) < 1e-3
        clip_db = ambience[0] + 10 * np.log10(1 + 10 ** (row["noise_snr_db"] / 10))
        assert 10 * np.log10(np.mean(np.square(audio, dtype=np.float64))) == pytest.approx(clip_db, abs=0.1)
        if row["id"] == "scene-0000000":
            assert row["room_id"] in test_rooms  # test scenes use the RIR set's test rooms
    from pipelines.export_dcase import MANIFEST, export_dcase

    out = tmp_path / "dcase"  # holding what an earlier export of another dataset, and a killed one, left
    planted = [out / "mic_dev" / "train" / "old.wav", out / "metadata_dev" / "test" / "old.csv",
               out / "foa_dev" / "train" / ".fold1_scene-9999999.wav.partial"]
    mine = [out / "foa_dev" / "dev-train-sony" / "fold3_room21_mix001.wav", out / "notes.txt",
            out / "metadata_dev" / "test" / "real.csv"]  # the user's own, in the layout or not: never removed
    for path in planted + mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stale")
    (out / MANIFEST).write_text(json.dumps({"files": ["mic_dev/train/old.wav", "metadata_dev/test/old.csv"]}))
    summary = export_dcase(catalog, snap.ref, out)
    assert summary["removed_stale"] == len(planted) and not any(p.exists() for p in planted)
    assert summary["folds"] == {"test": 4, "train": 1}
    assert all(p.exists() for p in mine)  # an export removed every clip in the layout it had not written
    assert summary["kept_foreign"] == ["foa_dev/dev-train-sony/fold3_room21_mix001.wav", "metadata_dev/test/real.csv"]
    exported = sorted(f"fold{4 if row['id'] == 'scene-0000000' else 1}_{row['id']}{ext}" for row in rows
                      for ext in (".wav", ".csv"))
    assert sorted(p.name for p in out.rglob("*") if p.is_file() and p.suffix in (".wav", ".csv")
                  and p not in mine) == exported
    assert sorted(Path(f).name for f in json.loads((out / MANIFEST).read_text())["files"]) == exported
    with pytest.raises(RoomtoneError, match="is a file"):
        export_dcase(catalog, snap.ref, out / "notes.txt")
    for row in rows:
        split = "test" if row["id"] == "scene-0000000" else "train"
        stem = f"fold{1 if split == 'train' else 4}_{row['id']}"  # the baselines read the fold off the name
        read = read_dcase_csv(out / "metadata_dev" / split / f"{stem}.csv", n_frames=40)
        assert [(e.frame, e.class_index, e.track) for e in read.events()] == \
            sorted((l["frame"], l["class_index"], l["track"]) for l in row["labels"])
        ref = SeldLabels.from_events([(l["frame"], l["class_index"], l["track"], l["azimuth"], l["elevation"],
                                       l["distance"]) for l in row["labels"]], n_frames=40)
        scores = dcase2023_scores(ref, read, len(labels))
        assert scores.er == 0 and scores.f == 1 and scores.lr == 1 and scores.le < 1.0  # integer-degree CSV
        wav = out / "foa_dev" / split / f"{stem}.wav"
        assert int(wav.name[4]) == (1 if split == "train" else 4)  # as the baselines' data generators read it
        assert wav.stat().st_size > 4 * 24_000 * 4 * 2


def test_scenes_from_stored_grid_rirs_carry_the_grid_positions_as_labels(inputs):
    from simulation.scenes import RirGrid

    catalog, _ = inputs
    config = ScenesConfig(name="grid_scenes", rirs="foa_grid", event_snr_db=(5.0, 15.0),
                          **{**SCENES, "moving_fraction": 0.7, "speed_range": (30.0, 40.0)})
    snap = run_scenes(config, catalog, show_progress=False)
    assert snap.config["rir_source"] == "dataset"  # auto picks the stored grid
    grid = {}
    for r in catalog.arrow_dataset("foa_grid").to_table(columns=["room_id", "azimuth", "elevation",
                                                                  "distance"]).to_pylist():
        grid.setdefault(r["room_id"], []).append((r["azimuth"], r["elevation"], r["distance"]))
    moving = 0
    for row in catalog.arrow_dataset(snap.ref).to_table().to_pylist():
        points = np.array(grid[row["room_id"]])
        for event in row["events"]:
            assert 5.0 - 1e-4 <= event["snr_db"] <= 15.0 + 1e-4
            frames = sorted((l for l in row["labels"] if l["track"] == event["track"]
                             and round(event["onset"] / 0.1) <= l["frame"] < round(event["offset"] / 0.1)),
                            key=lambda l: l["frame"])
            labels = np.array([(l["azimuth"], l["elevation"], l["distance"]) for l in frames])
            stored = RirGrid(points[:, 0], points[:, 1], points[:, 2], 30.0)
            assert (stored.find(*labels.T) >= 0).all()  # every label is a stored position (within 1 mm)
            if not event["moving"]:
                assert np.ptp(labels, axis=0).max() < 1e-6
                continue
            moving += 1
            turns = (np.diff(labels[:, 0]) + 180.0) % 360.0 - 180.0
            assert np.all(np.isclose(turns, 0.0, atol=1e-3) | np.isclose(turns, 30.0 * np.sign(event["speed"]),
                                                                          atol=1e-3))
            assert np.abs(turns).sum() >= 30.0 - 1e-3 or len(frames) < 10
            assert np.ptp(labels[:, 1:], axis=0).max() < 1e-6  # along one ring
    assert moving


def test_a_rooms_scenes_fill_consecutive_shards_so_its_stored_rirs_are_read_about_once(inputs):
    """Scenes draw their rooms at random; the driver orders a split by room before cutting it
    into shards (contiguous id ranges put every room in nearly every shard: one read per scene)."""
    catalog, _ = inputs
    run_rirs(RirsConfig(name="foa_grid3", array="foa", **{**GRID, "num_rooms": 3, "test_fraction": 0.0}), catalog,
             show_progress=False)
    config = ScenesConfig(name="grid_by_room", rirs="foa_grid3", **{**SCENES, "num_scenes": 12, "clip_seconds": 1.0,
                                                                     "test_fraction": 0.0, "max_shard_bytes": 400_000,
                                                                     "max_event_seconds": 1.0})
    snap = run_scenes(config, catalog, show_progress=False)
    rooms = catalog.arrow_dataset(snap.ref, "train").to_table(columns=["room_id"]).column("room_id").to_pylist()
    assert snap.stats["shards"] >= 4 and len(rooms) == 12 and len(set(rooms)) == 3
    runs = 1 + sum(a != b for a, b in zip(rooms, rooms[1:]))
    assert runs == 3, rooms  # each room's scenes in one run of rows, in shard order


def test_scenes_do_not_depend_on_sharding(inputs):
    catalog, _ = inputs
    a = run_scenes(ScenesConfig(name="a", rirs="mic_rooms", format="mic", **{**SCENES, "max_shard_bytes": 10**9}),
                   catalog, show_progress=False)
    b = run_scenes(ScenesConfig(name="b", rirs="mic_rooms", format="mic", **SCENES), catalog, show_progress=False)
    assert a.stats["shards"] < b.stats["shards"]
    audio = {n: {r["id"]: r["audio"]["bytes"] for r in catalog.arrow_dataset(n).to_table().to_pylist()}
             for n in ("a", "b")}
    assert audio["a"] == audio["b"]


def test_scenes_are_identical_with_one_or_two_ray_workers(inputs):
    """The session cluster has 2 CPUs; a subprocess renders the same config on a 1-CPU cluster."""
    catalog, _ = inputs
    two = run_scenes(ScenesConfig(name="two_workers", rirs="foa_rooms", **SCENES), catalog, show_progress=False)
    script = f"""
import json, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from catalog import Catalog, CatalogConfig
from catalog.cluster import connect
from pipelines.stages.scenes import ScenesConfig, run_scenes
connect(num_cpus=1)
catalog = Catalog(CatalogConfig.model_validate_json({catalog.config.model_dump_json()!r}))
config = ScenesConfig(name="one_worker", rirs="foa_rooms", **json.loads({json.dumps(SCENES)!r}))
print(run_scenes(config, catalog, show_progress=False).ref)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600,
                   env={**os.environ, "ROOMTONE_RAY_DASHBOARD": "0"})
    rows = {n: {r["id"]: (r["audio"]["bytes"], r["labels"]) for r in catalog.arrow_dataset(n).to_table().to_pylist()}
            for n in ("one_worker", two.name)}
    assert rows["one_worker"] == rows[two.name] and len(rows["one_worker"]) == 3


@pytest.mark.parametrize("overrides, message", [
    ({"format": "mic"}, "needs an RIR dataset made with the tetra_mic array"),
    ({"classes": ["Piano"]}, "class map misses classes"),
    ({"max_event_seconds": None, "clip_seconds": 0.5}, "longer than clip_seconds"),
    ({"events": "nope"}, "'nope' is not in the catalog"),
    ({"rir_source": "dataset"}, "stores RIRs at random source positions"),
    ({"rir_source": "dataset", "rirs": "foa_grid", "format": "mic"}, "needs an RIR dataset made with the tetra_mic"),
    ({"rirs": "foa_grid", "elevation_range": (30.0, 45.0)}, "none of its"),
    ({"distance_range": (20.0, 30.0)}, "narrow distance_range"),  # 4-6 m rooms: failed inside the job
])
def test_bad_inputs_fail_before_the_job(inputs, overrides, message):
    catalog, _ = inputs
    with pytest.raises(RoomtoneError, match=message):
        run_scenes(ScenesConfig(**{"name": "bad", "rirs": "foa_rooms", **SCENES, **overrides}), catalog,
                   show_progress=False)
    assert not catalog.exists("bad")


def test_polyphony_above_tracks_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="polyphony=3 is above the number of tracks=2"):
        ScenesConfig(tracks=2, polyphony=3)


def test_a_class_map_naming_a_class_twice_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"classes lists \['Cymbal'\] more than once"):
        ScenesConfig(classes=["Cymbal", "Cymbal", "Snare drum"])


def test_exactly_one_of_level_db_and_event_snr_db_sets_the_levels():
    from pydantic import ValidationError

    assert ScenesConfig().level_db == (-10.0, 0.0) and ScenesConfig().snr_db == (6.0, 30.0)
    by_snr = ScenesConfig(event_snr_db=(0.0, 20.0))
    assert by_snr.level_db is None and by_snr.snr_db is None
    assert ScenesConfig.model_validate(by_snr.model_dump()) == by_snr  # a stored config validates again
    with pytest.raises(ValidationError, match="level_db cannot be set with it"):
        ScenesConfig(event_snr_db=(0.0, 20.0), level_db=(-10.0, 0.0))
    with pytest.raises(ValidationError, match="snr_db cannot be set with it"):
        ScenesConfig(event_snr_db=(0.0, 20.0), snr_db=(6.0, 30.0))
