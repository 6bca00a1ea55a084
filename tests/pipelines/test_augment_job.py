"""The augmentation job on real scenes (sonic-pi events, simulated rooms) on a real Ray cluster."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError, audio_cell, decode_audio, encode_flac, write_shard
from pipelines.report import write_report
from pipelines.stages.augment import AugmentConfig, augment_row, check_inputs, load_rows, run_augment
from pipelines.stages.events import EventsConfig, run_ingest_events
from pipelines.stages.qa import QaConfig, export_qa, run_qa
from pipelines.stages.rirs import RirsConfig, run_rirs
from pipelines.stages.scenes import ScenesConfig, run_scenes
from simulation.augment.functional import place
from tests.helpers import REPO_ROOT, SONIC_PI, copy_sonic_pi, sonic_pi_rows
from tests.reliability.test_bad_input import rir_dataset

ROOMS = dict(num_rooms=2, sources_per_room=1, room_x=(4.0, 6.0), room_y=(4.0, 6.0), room_z=(2.5, 3.5),
             rt60=(0.2, 0.4), test_fraction=0.5, max_shard_bytes=200_000, rir_seconds=0.2)
STEPS = [{"name": "mix", "p": 0.8, "snr_db": [-5, 5]}, {"name": "rotate", "p": 0.8}, {"name": "gain", "p": 0.5},
         {"name": "noise", "p": 0.5, "snr_db": [20, 40]}, {"name": "shift", "p": 0.5}, {"name": "speed", "p": 0.5}]
AUG = dict(source="scenes", steps=STEPS, copies=2, seed=3, max_shard_bytes=100_000)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, ray_cluster):
    """A catalog with 8 sonic-pi events, FOA and MIC rooms, and 4 FOA scenes of 2 s."""
    if not SONIC_PI.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    root = tmp_path_factory.mktemp("augment")
    labels_csv = copy_sonic_pi(root / "events", sonic_pi_rows(max_seconds=1.0)[:8])
    catalog = Catalog(CatalogConfig(root=str(root / "home")))
    run_ingest_events(EventsConfig(folder=labels_csv.parent, labels_csv=labels_csv), catalog, show_progress=False)
    # both FOA rooms in train, so scenes (and the mixtures of a split) span two rooms
    run_rirs(RirsConfig(name="foa_rooms", array="foa", **{**ROOMS, "test_fraction": 0.0}), catalog,
             show_progress=False)
    run_rirs(RirsConfig(name="mic_rooms", array="mic", **ROOMS), catalog, show_progress=False)
    run_scenes(ScenesConfig(rirs="foa_rooms", num_scenes=4, clip_seconds=2.0, max_event_seconds=1.0,
                            rir_seconds=0.2, test_fraction=0.0, events_per_minute=90.0, max_shard_bytes=100_000),
               catalog, show_progress=False)
    return catalog


def _float32(value):
    """Values as the float32 columns store them."""
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, dict):
        return {k: _float32(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float32(v) for v in value]
    return value


def _rows(catalog, ref):
    return {r["id"]: r for r in catalog.arrow_dataset(ref).to_table().to_pylist()}


def test_augmented_scenes_keep_the_schema_and_replay_from_the_stored_row(inputs, tmp_path):
    catalog = inputs
    snap = run_augment(AugmentConfig(name="aug", **AUG), catalog, show_progress=False)
    source = catalog.show("scenes")
    assert snap.inputs == [source.ref] and snap.stats["rows"] == 8
    assert dict(snap.features) == {**dict(source.features), "recipe": snap.features["recipe"],
                                   "parent_ids": snap.features["parent_ids"], "source_ids": snap.features["source_ids"],
                                   "room_ids": snap.features["room_ids"]}
    rows, parents = _rows(catalog, "aug"), _rows(catalog, "scenes")
    assert sorted(rows) == sorted(f"{p}-aug{c}" for p in parents for c in range(2))
    kinds = {s["name"] for r in rows.values() for s in json.loads(r["recipe"])["steps"]}
    assert {"mix", "rotate"} <= kinds
    decoded = load_rows(catalog, source.ref, "train", set(parents), 24_000)  # the parents, read as a worker does
    kind = {"rate": 24_000, "format": "foa", "scenes": True, "hop": 0.1}
    for out_id, row in rows.items():
        recipe = json.loads(row["recipe"])
        assert row["parent_ids"] == recipe["parent_ids"] and recipe["item_id"] == out_id
        assert row["parent_ids"][0] == out_id.rsplit("-aug", 1)[0]
        audio, meta, replayed = augment_row(row["recipe"], decoded, ({}, {}), kind)
        assert replayed == row["recipe"]  # a resolved recipe resolves to itself
        assert encode_flac(audio.T, 24_000) == row["audio"]["bytes"]  # bit for bit
        assert _float32(meta["events"]) == row["events"] and _float32(meta["labels"]) == row["labels"]
        assert meta["caption"] == row["caption"] and meta["label"] == row["label"]
        assert row["label"] == sorted({e["class_name"] for e in row["events"]})
        assert row["room_ids"] == [parents[p]["room_id"] for p in row["parent_ids"]]
        one_room = len(set(row["room_ids"])) == 1
        names = [s["name"] for s in recipe["steps"]]
        faster = math.prod(s["factor"] for s in recipe["steps"] if s["name"] == "speed")  # the decay too
        assert row["rt60"] == (pytest.approx(parents[row["parent_ids"][0]]["rt60"] / faster, rel=1e-6) if one_room
                               else None)
        assert (row["room_dims"] is None) != one_room
        assert row["plan"] is None  # the parent's plan would replay the parent, not this row
        first = parents[row["parent_ids"][0]]
        if {"mix", "noise", "shift", "speed"} & set(names):  # the ambience moved, mixed or grew
            assert row["noise_snr_db"] is None
        else:
            assert row["noise_snr_db"] == first["noise_snr_db"]
        if "noise" in names:
            assert all(e["snr_db"] is None for e in row["events"])
        if "mix" in names:
            partner = recipe["steps"][names.index("mix")]["partner_id"]
            assert row["parent_ids"][1] == partner and partner != row["parent_ids"][0]
            if row["caption"] is None:  # a cut after the mix removed a sound the merged caption names
                assert {"shift", "speed"} & set(names[names.index("mix"):])
            elif "rotate" not in names:  # the first parent's caption opens the merged one
                assert row["caption"].startswith(parents[row["parent_ids"][0]]["caption"])
            if not {"shift", "speed"} & set(names):  # nothing cut at the clip's ends: every event is kept
                assert len(row["events"]) == len(parents[row["parent_ids"][0]]["events"]) + len(
                    [e for e in parents[partner]["events"] if e["onset"] + recipe["steps"][names.index("mix")]
                     ["offset"] / 24_000 < 2.0 and e["offset"] + recipe["steps"][names.index("mix")]["offset"]
                     / 24_000 > 0.0])
    assert any(len(set(r["room_ids"])) > 1 for r in rows.values())  # some mixtures hold two rooms
    assert write_report(catalog, snap.ref, tmp_path)["png"].is_file()  # their null RT60s are left out


def test_qa_answers_a_mixtures_room_only_when_it_holds_one_and_counts_the_others(inputs, tmp_path):
    catalog = inputs
    run_augment(AugmentConfig(name="aug", **AUG), catalog, show_progress=False)
    snap = run_qa(QaConfig(source="aug", families=["room", "counting"], test_fraction=0.0), catalog,
                  show_progress=False)
    rooms = {r["id"]: r["room_ids"] for r in _rows(catalog, "aug").values()}
    tuples = catalog.arrow_dataset(snap.ref).to_table().to_pylist()
    answered = {t["audio_id"] for t in tuples if t["family"] == "room"}
    assert answered == {i for i, r in rooms.items() if len(set(r)) == 1}
    two = sum(len(set(r)) > 1 for r in rooms.values())
    assert snap.info["summary"]["skipped_rows"] == {"room": {
        "the clip holds audio from more than one room (a mixture): no single RT60 or size": two}}
    # a mixture's lineage stays in the tuples; the SpatialSoundQA export names no second clip (its
    # loader would mix that parent into a clip that already holds it)
    parents = {r["id"]: r["parent_ids"] for r in _rows(catalog, "aug").values()}
    assert all(t["room_ids"] == rooms[t["audio_id"]] and t["parents"] == parents[t["audio_id"]] for t in tuples)
    export_qa(catalog, snap.ref, tmp_path / "qa")
    spatial = [r for f in sorted((tmp_path / "qa").glob("spatialsoundqa_*.json")) for r in json.loads(f.read_text())]
    assert len(spatial) == len(tuples)
    assert all(r["audio_id2"] is None and r["reverb_id2"] is None for r in spatial)
    assert any(len(parents[r["audio_id"]]) == 2 for r in spatial)


def test_a_split_of_one_clip_skips_mixing_and_says_so():
    from pipelines.stages.augment import draw_all

    rows = {"train": [{"id": "a", "duration": 2.0}, {"id": "b", "duration": 2.0}],
            "test": [{"id": "c", "duration": 2.0}]}
    kind = {"rate": 24_000, "format": "foa", "scenes": True, "hop": 0.1}
    items, skipped = draw_all(AugmentConfig(steps=[{"name": "mix"}, {"name": "gain"}]), kind, rows, {})
    assert list(skipped) == ["mix"] and list(skipped["mix"]) == ["test"] and "one recording" in skipped["mix"]["test"]
    assert [json.loads(r)["parent_ids"] for _, r, _ in items["train"]] == [["a", "b"], ["b", "a"]]
    assert [[s["name"] for s in json.loads(r)["steps"]] for _, r, _ in items["test"]] == [["gain"]]


def test_output_does_not_depend_on_shards_or_workers(inputs):
    catalog = inputs
    one = run_augment(AugmentConfig(name="one_shard", **{**AUG, "max_shard_bytes": 10**9}), catalog,
                      show_progress=False)
    many = run_augment(AugmentConfig(name="many_shards", **AUG), catalog, show_progress=False)
    assert one.stats["shards"] == 1 < many.stats["shards"]
    script = f"""
import json, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from catalog import Catalog, CatalogConfig
from catalog.cluster import connect
from pipelines.stages.augment import AugmentConfig, run_augment
connect(num_cpus=1)
catalog = Catalog(CatalogConfig.model_validate_json({catalog.config.model_dump_json()!r}))
config = AugmentConfig(name="one_worker", **json.loads({json.dumps(AUG)!r}))
print(run_augment(config, catalog, show_progress=False).ref)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600,
                   env={**os.environ, "ROOMTONE_RAY_DASHBOARD": "0"})
    rows = {n: {k: (r["audio"]["bytes"], r["recipe"], r["labels"]) for k, r in _rows(catalog, n).items()}
            for n in ("one_shard", "many_shards", "one_worker")}
    assert rows["one_shard"] == rows["many_shards"] == rows["one_worker"] and len(rows["one_shard"]) == 8


def test_reverb_of_a_dry_event_library_with_catalog_rirs(inputs):
    catalog = inputs
    snap = run_augment(AugmentConfig(name="wet_events", source="events", rirs="foa_rooms",
                                     steps=[{"name": "reverb"}, {"name": "gain", "gain_db": [-3, 0]}]),
                       catalog, show_progress=False)
    assert snap.inputs == [catalog.show("events").ref, catalog.show("foa_rooms").ref]
    table = catalog.arrow_dataset("foa_rooms").to_table().to_pylist()
    rirs, rooms = {r["id"]: np.array(r["rir"]) for r in table}, {r["id"]: r for r in table}
    for row in _rows(catalog, "wet_events").values():
        audio, rate = decode_audio(row["audio"]["bytes"])
        step = json.loads(row["recipe"])["steps"][0]
        assert audio.shape[1] == 4 and step["rir_id"] in rirs and step["onset"] == \
            int(np.abs(rirs[step["rir_id"]]).max(axis=0).argmax())
        assert math.isfinite(step["gain"]) and row["label"] and row["duration"] == pytest.approx(len(audio) / rate)
        room = rooms[step["rir_id"]]  # the clip now sounds in the RIR's room, and says so
        assert (row["room_id"], row["rt60"], row["room_dims"]) == (room["room_id"], room["rt60"], room["room_dims"])
        assert row["room_ids"] == [room["room_id"]]
    with pytest.raises(RoomtoneError, match=r"already in a room \(room_id\), reverberated by an earlier"):
        check_inputs(AugmentConfig(name="twice", source="wet_events", rirs="foa_rooms", steps=[{"name": "reverb"}]),
                     catalog)


MONO = dict(source="events", steps=[{"name": "mix", "p": 0.75}, {"name": "gain", "p": 0.5}], copies=2, seed=5,
            max_shard_bytes=100_000)


def _mono_mix(catalog):
    """The sonic-pi event library mixed AudioGen's way (published once per module)."""
    if not catalog.exists("mono_mix"):
        run_augment(AugmentConfig(name="mono_mix", **MONO), catalog, show_progress=False)
    return catalog.show("mono_mix")


def test_mixing_an_event_library_pairs_its_clips_and_records_what_replays_them(inputs, tmp_path):
    catalog = inputs
    snap, source = _mono_mix(catalog), catalog.show("events")
    assert write_report(catalog, snap.ref, tmp_path)["png"].is_file()  # its events have no directions: KeyError
    rate = source.features["audio"].sampling_rate
    assert set(snap.features) == set(source.features) - {"ontology_id"} | {"events", "caption", "recipe",
                                                                           "parent_ids", "source_ids",
                                                                           "room_ids"}
    rows, parents = _rows(catalog, "mono_mix"), _rows(catalog, "events")
    decoded = load_rows(catalog, source.ref, "train", set(parents), rate, one_event=True)
    kind = {"rate": rate, "format": None, "scenes": False, "hop": None, "one_event": True}
    mixed = 0
    for row in rows.values():
        recipe = json.loads(row["recipe"])
        audio, meta, replayed = augment_row(row["recipe"], decoded, ({}, {}), kind)
        assert replayed == row["recipe"] and encode_flac(audio.T, rate) == row["audio"]["bytes"]  # bit for bit
        assert _float32(meta["events"]) == row["events"] and meta["caption"] == row["caption"]
        first = parents[row["parent_ids"][0]]
        steps = [s for s in recipe["steps"] if s["name"] == "mix"]
        gain = math.prod(10 ** (s["gain_db"] / 20) for s in recipe["steps"] if s["name"] == "gain")
        if not steps:
            assert [(e["event_id"], e["class_name"], e["track"], e["onset"], e["offset"]) for e in row["events"]] == \
                [(first["id"], first["label"], 0, 0.0, first["duration"])]
            assert row["label"] == [first["label"]] and row["caption"] == first["label"]
            continue
        mixed += 1
        mix, second = steps[0], parents[steps[0]["partner_id"]]
        a, b = sorted(row["events"], key=lambda e: e["track"])
        assert [a["event_id"], b["event_id"]] == row["parent_ids"] == [first["id"], second["id"]]
        assert (a["track"], b["track"]) == (0, 1) and (a["onset"], a["offset"]) == (0.0, first["duration"])
        dt = mix["offset"] / rate  # the partner moved by the recorded offset, cut to the first clip
        assert b["onset"] == _float32(max(0.0, dt)) and b["offset"] == _float32(min(first["duration"],
                                                                                  dt + second["duration"]))
        assert first["label"] in row["caption"] and second["label"] in row["caption"]
        assert row["label"] == sorted({first["label"], second["label"]}) and row["room_ids"] == []
        x, y = decoded[first["id"]][0].double(), decoded[second["id"]][0].double()
        placed = place(y, mix["offset"], x.shape[-1])
        ga, gb = mix["gain_a"] * mix["limit"] * gain, mix["gain_b"] * mix["limit"] * gain
        snr = 10 * math.log10(float((ga * x).pow(2).sum() / (gb * placed).pow(2).sum()))
        assert abs(snr - mix["snr_db"]) < 0.1
        # each event's power: its mean square in the output clip over its span (the partner's when uncut)
        assert a["power_db"] == pytest.approx(10 * math.log10(float((ga * x).pow(2).mean())), abs=0.01)
        if 0 <= mix["offset"] and mix["offset"] + y.shape[-1] <= x.shape[-1]:
            assert b["power_db"] == pytest.approx(10 * math.log10(float((gb * y).pow(2).mean())), abs=0.01)
    assert 0 < mixed < len(rows)


def test_a_library_clip_shifted_out_of_its_window_loses_its_label(inputs):
    """A shift as long as a clip left it silent but still labelled (QA answered 'Dog' for silence):
    shifted library clips are described by their one event, which the cut removes."""
    catalog = inputs
    snap = run_augment(AugmentConfig(source="events", name="shifted", steps=[{"name": "shift", "seconds": [-3, 3]}],
                                     copies=2, seed=0, max_shard_bytes=100_000), catalog, show_progress=False)
    rows = _rows(catalog, snap.ref)
    silent = [r for r in rows.values() if not r["events"]]
    heard = [r for r in rows.values() if r["events"]]
    assert silent and heard
    for row in silent:
        audio, _ = decode_audio(row["audio"]["bytes"])
        assert row["label"] == [] and not row["caption"] and not np.abs(audio).any()
    for row in heard:
        audio, _ = decode_audio(row["audio"]["bytes"])
        assert row["label"] == [row["events"][0]["class_name"]] and np.abs(audio).any()
    qa = run_qa(QaConfig(source="shifted", families=["classification"], test_fraction=0.0), catalog,
                show_progress=False)
    labelled = {t["audio_id"] for t in catalog.arrow_dataset(qa.ref).to_table().to_pylist()
                if t["task"] == "cla_label"}
    assert labelled == {r["id"] for r in heard}


def test_qa_of_a_mixed_event_library_counts_both_parents_and_skips_space(inputs):
    catalog = inputs
    mixes = _rows(catalog, _mono_mix(catalog).ref)
    snap = run_qa(QaConfig(source="mono_mix", test_fraction=0.0), catalog, show_progress=False)
    summary = snap.info["summary"]
    for family in ("direction", "distance", "motion"):
        assert "is not spatial" in summary["skipped_families"][family]
    assert "give ontology" in summary["negatives"]  # no ontology: the class map may hold a present class's parent
    tuples = catalog.arrow_dataset(snap.ref).to_table().to_pylist()
    assert {"classification", "counting", "temporal", "loudest", "caption"} <= {t["family"] for t in tuples}
    for t in tuples:
        row = mixes[t["audio_id"]]
        if t["task"] == "count_events":
            assert t["answer"]["values"] == [len(row["events"])] == [len(row["parent_ids"])]
        elif t["task"] == "cla_label":
            assert t["answer"]["labels"] == row["label"]
        elif t["task"] == "caption":
            assert t["output"] == row["caption"]
        elif t["task"] == "loudest":
            loud, quiet = sorted(row["events"], key=lambda e: -e["power_db"])
            assert t["answer"]["labels"] == [loud["class_name"]] and loud["power_db"] - quiet["power_db"] >= 3.0
    assert any(t["task"] == "count_events" and t["answer"]["values"] == [2] for t in tuples)


def test_copies_of_one_recording_made_by_chained_jobs_never_straddle_the_qa_split(inputs):
    """events -> gain (2 copies each) -> mix: the copies `c-aug0` and `c-aug1` of recording c are
    different rows of the middle dataset, but both are c, so mixtures of them stay on one side."""
    catalog = inputs
    if not catalog.exists("events_x2"):
        run_augment(AugmentConfig(source="events", name="events_x2", steps=[{"name": "gain"}], copies=2, seed=1,
                                  max_shard_bytes=100_000), catalog, show_progress=False)
    run_augment(AugmentConfig(source="events_x2", name="events_x2_mix", steps=[{"name": "mix"}], copies=2, seed=2,
                              max_shard_bytes=100_000), catalog, show_progress=False)
    library = set(_rows(catalog, "events"))
    copies, mixes = _rows(catalog, "events_x2"), _rows(catalog, "events_x2_mix")
    assert all(r["source_ids"] == r["parent_ids"] and r["parent_ids"][0] in library for r in copies.values())
    for row in mixes.values():
        assert row["source_ids"] == [copies[p]["source_ids"][0] for p in row["parent_ids"]]
        assert [e["event_id"] for e in row["events"]] == row["source_ids"]  # the recordings, not the copies
    qa = QaConfig(source="events_x2_mix", name="events_x2_qa", test_fraction=0.5, seed=3, families=["counting"])
    snap = run_qa(qa, catalog, show_progress=False)
    heard = {}
    for split in catalog.splits(snap.ref):
        ids = {r["audio_id"] for r in catalog.arrow_dataset(snap.ref, split).to_table(columns=["audio_id"]).to_pylist()}
        heard[split] = {s for i in ids for s in mixes[i]["source_ids"]}
    assert set(heard) == {"train", "test"} and not heard["train"] & heard["test"]


def test_reverb_and_rirs_go_together_at_the_door():
    """Checked by the config, so a spec's --dry-run finds them (it passed them on to the job)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="the reverb step needs an RIR dataset"):
        AugmentConfig(source="events", steps=[{"name": "reverb"}])
    with pytest.raises(ValidationError, match="rirs is set .* but no step reverberates"):
        AugmentConfig(source="scenes", steps=[{"name": "gain"}], rirs="mic_rooms")


@pytest.mark.parametrize("overrides, message", [
    ({"source": "events", "steps": [{"name": "reverb"}, {"name": "mix"}], "rirs": "foa_rooms"},
     "reverb before mix"),
    ({"source": "events", "steps": [{"name": "rotate"}]}, "rotate needs FOA or MIC clips"),
    ({"steps": [{"name": "reverb"}], "rirs": "foa_rooms"}, "already reverberant"),
    ({"source": "events", "steps": [{"name": "reverb"}], "rirs": "events"}, "is not an RIR dataset"),
    ({"source": "events", "steps": [{"name": "reverb", "p": 0.5}], "rirs": "foa_rooms"},
     r"steps\[0\].p is 0.5: reverb would turn some mono clips"),
])
def test_bad_inputs_fail_before_the_job(inputs, overrides, message):
    catalog = inputs
    with pytest.raises(RoomtoneError, match=message):
        run_augment(AugmentConfig(name="bad", **{**AUG, **overrides}), catalog, show_progress=False)
    assert not catalog.exists("bad")


def _copy(catalog, source: str, name: str, edit=lambda rows: rows, drop=()) -> None:
    """Publish the rows of ``source`` (through ``edit``, less the columns ``drop``) as ``name``, with its info."""
    snap = catalog.show(source)
    features = datasets.Features({k: v for k, v in snap.features.items() if k not in drop})
    rows = [{k: r[k] for k in features} for r in catalog.arrow_dataset(snap.ref).to_table().to_pylist()]
    run = catalog.create_run(name, {"copy_of": snap.ref}, features, info=snap.info)
    write_shard(run.shard("train", 0, 1), features, edit(rows))
    catalog.publish(run)


def _first_at_16k(rows: list[dict]) -> list[dict]:
    """The rows with the first clip's samples declared at 16 kHz."""
    audio, _ = decode_audio(rows[0]["audio"]["bytes"])
    return [{**rows[0], "audio": audio_cell(encode_flac(audio, 16_000), "16k.flac")}, *rows[1:]]


@pytest.mark.parametrize("step", ["mix", "rotate"])
def test_a_source_whose_rows_hold_two_formats_is_refused_before_the_job(inputs, step):
    if not inputs.exists("two_formats"):
        _copy(inputs, "scenes", "two_formats", lambda rows: [{**r, "format": "mic"} if i % 2 else r
                                                             for i, r in enumerate(rows)])
    with pytest.raises(RoomtoneError) as err:
        run_augment(AugmentConfig(name="bad", source="two_formats", steps=[{"name": step}]), inputs,
                    show_progress=False)
    assert f"{step} needs clips of one format" in err.value.problem
    assert "(format/num_channels: foa/4, mic/4)" in err.value.problem and "as its own dataset" in err.value.fix
    assert not inputs.exists("bad")


@pytest.mark.parametrize("steps", [["gain"], ["shift", "gain"], ["mix"]])
def test_a_library_clip_at_another_sample_rate_is_refused_before_the_job_naming_the_row_the_field_and_the_fix(
        inputs, steps):
    rate = inputs.show("events").features["audio"].sampling_rate

    if not inputs.exists("two_rates"):
        _copy(inputs, "events", "two_rates", _first_at_16k)
    first = inputs.arrow_dataset("two_rates").to_table(columns=["id"]).to_pylist()[0]["id"]
    with pytest.raises(RoomtoneError) as err:
        check_inputs(AugmentConfig(name="bad_rate", source="two_rates", steps=[{"name": n} for n in steps]), inputs)
    assert f"row {first} of" in err.value.problem and "sampled at 16000 Hz" in err.value.problem
    assert "sampling_rate" in err.value.problem and f"--sample-rate {rate}" in err.value.fix
    assert not inputs.exists("bad_rate")


def test_a_clip_at_another_rate_in_a_source_with_num_channels_fails_in_its_worker_naming_the_row(inputs):
    """Such a source's headers are not scanned before the job (its rows state their channels), so
    the worker that decodes the stray clip names it."""
    _copy(inputs, "scenes", "scenes_two_rates", _first_at_16k)
    ref = inputs.show("scenes_two_rates").ref
    first = inputs.arrow_dataset(ref).to_table(columns=["id"]).to_pylist()[0]["id"]
    with pytest.raises(RoomtoneError, match=f"row {first} of .* is sampled at 16000 Hz"):
        load_rows(inputs, ref, "train", {first}, inputs.show("scenes").features["audio"].sampling_rate)


@pytest.mark.parametrize("drop, where", [((), "(num_channels)"), (("num_channels",), "(their headers")],
                         ids=["with num_channels", "without num_channels"])
def test_rirs_of_another_channel_count_are_refused_before_the_job(inputs, drop, where):
    """Dry 4-channel clips (scenes without their scene metadata) and uniformly 2-channel RIRs."""
    rate = inputs.show("scenes").features["audio"].sampling_rate
    if not inputs.exists("stereo_rirs"):
        rir_dataset(inputs, "stereo_rirs", [rate], [2])
    name = "dry_" + "_".join(["clips", *drop])
    _copy(inputs, "scenes", name, drop=("events", "labels", "room_id", *drop))
    with pytest.raises(RoomtoneError) as err:
        run_augment(AugmentConfig(name="bad_rirs", source=name, rirs="stereo_rirs", steps=[{"name": "reverb"}]),
                    inputs, show_progress=False)
    assert "has [2]-channel RIRs (num_channels)" in err.value.problem and "[4]-channel clips " + where in \
        err.value.problem
    assert "mono clips" in err.value.fix
    assert not inputs.exists("bad_rirs")
    if not drop:   # FOA clips and MIC RIRs of the same channel count
        with pytest.raises(RoomtoneError, match=r"is foa but .* holds \['tetra_mic'\]"):
            check_inputs(AugmentConfig(name="bad_rirs", source=name, rirs="mic_rooms", steps=[{"name": "reverb"}]),
                         inputs)


@pytest.mark.parametrize("steps, message", [
    ([{"name": "echo"}], "unknown augmentation 'echo'"),
    ([{"name": "mix", "snr_db": [5, -5]}], "min <= max"),
    ([{"name": "speed", "factor": [1.2, 0.8]}], "min <= max"),
    ([{"name": "speed", "factor": [0, 0]}], r"speed.factor must lie in \[0.25, 4\]"),   # divided by zero in a worker
    ([{"name": "speed", "factor": [-1, -0.5]}], "must lie in"),                         # wrote near-silent clips
    ([{"name": "gain", "gain_db": [-200, -190]}], r"gain.gain_db must lie in \[-60, 24\]"),  # silence, still labelled
    ([{"name": "mix", "snr_db": [80, 90]}], r"mix.snr_db must lie in \[-30, 30\]"),     # an inaudible partner
    ([{"name": "noise", "snr_db": [-60, -50]}], r"noise.snr_db must lie in"),             # events drowned
])
def test_bad_steps_are_refused_by_the_config(steps, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        AugmentConfig(steps=steps)


def test_cli_refuses_an_unknown_step_in_one_line(tmp_path):
    roomtone = str(Path(sys.executable).parent / "roomtone")
    proc = subprocess.run([roomtone, "augment", "scenes", "--steps", "mix:0.5,echo"], capture_output=True, text=True,
                          env={**os.environ, "ROOMTONE_ROOT": str(tmp_path)}, timeout=120)
    assert proc.returncode == 1 and "unknown augmentation 'echo'" in proc.stderr
    assert "Traceback" not in proc.stderr and "fix:" in proc.stderr
