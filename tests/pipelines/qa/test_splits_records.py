"""Splits share no room or recording; the LTU and SpatialSoundQA records have exactly their keys."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import RoomtoneError
from pipelines.qa import (LTU_KEYS, SPATIAL_KEYS, Clip, Context, Ontology, assign_splits, extract_facts, generate,
                          ltu_record, spatial_record, to_rows, write_json)
from pipelines.qa.records import DCASE_AUDIO_PATH
from tests.pipelines.qa.test_families import CLASSES, ONTOLOGY, scene_row

# what a record says, and what its question must then state: the array frame (directions, motion) or at least
# the distance origin (distances)
DIRECTIONAL = re.compile(r"\b(?:azimuth|elevation|left|right|front|behind|above|below|higher|lower|clockwise|"
                         r"counter-clockwise|direction|where|side|mov\w*|stationary|static|still|position|speed|"
                         r"path|degrees per second)\b", re.I)
DISTANCE = re.compile(r"\b(?:distance|distant|far|farthest|closest|closer|nearest|nearer|away|(?<!cubic )metres?|"
                      r"\d+(?:\.\d+)?\s?m)\b", re.I)
FRAME = "relative to the microphone array; azimuth counter-clockwise from its front, 90 degrees = left"
ORIGIN = ("relative to the microphone array", "distance from the centre of the microphone array")


def missing_convention(records: list[dict], question: str, answer: str) -> list[dict]:
    """The records that mention a direction, motion, speed or distance without stating its frame."""
    return [r for r in records
            if DIRECTIONAL.search(r[question] + " " + r[answer]) and FRAME not in r[question]
            or DISTANCE.search(r[question] + " " + r[answer]) and not any(o in r[question] for o in ORIGIN)]

def source_row(split: str, rooms: list[str], events: frozenset[str]) -> dict:
    """A row as the QA stage reads it: no room, a scene in rooms[0], or a mixture of two clips from
    rooms[0] and rooms[1], which keeps its first parent's room_id and lists both in room_ids."""
    row = {"split": split, "room_id": rooms[0] if rooms else None,
           "events": [{"event_id": e, "class_name": "Dog", "onset": 0.0, "offset": 1.0} for e in sorted(events)]}
    return {**row, "room_ids": rooms} if len(rooms) > 1 else row


source_rows = st.lists(st.builds(
    source_row, st.sampled_from(["train", "train", "test"]),
    st.lists(st.sampled_from([f"room-{i}" for i in range(6)]), max_size=2),
    st.frozensets(st.sampled_from([f"ev-{i}" for i in range(30)]), min_size=1, max_size=4)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(rows=source_rows, fraction=st.floats(0.0, 0.9), seed=st.integers(0, 5), keep_input_split=st.booleans())
def test_splits_share_no_room_and_no_recording(rows, fraction, seed, keep_input_split):
    """Rooms and recordings are read from the rows (a mixture holds both parents' rooms), as the QA
    stage reads them, and checked against the rows themselves."""
    rows = {f"c{i}": {**r, "id": f"c{i}", "split": r["split"] if keep_input_split else "train"}
            for i, r in enumerate(rows)}
    facts = {i: extract_facts(r) for i, r in rows.items()}
    by_split, dropped = assign_splits([Clip(i, r["split"], facts[i].rooms, facts[i].clips) for i, r in rows.items()],
                                      fraction, seed)
    train, test = ([rows[c.id] for c in by_split.get(s, [])] for s in ("train", "test"))

    def rooms(side: list[dict]) -> set[str]:
        return {k for r in side for k in r.get("room_ids") or [r["room_id"]] if k}

    def recordings(side: list[dict]) -> set[str]:
        return {e["event_id"] for r in side for e in r["events"]}

    assert not rooms(train) & rooms(test) and not recordings(train) & recordings(test)
    assert sorted([r["id"] for r in train + test] + list(dropped)) == sorted(rows)
    if any(r["split"] == "test" for r in rows.values()):  # the input's own train rows stay train
        assert {r["id"] for r in train} == {i for i, r in rows.items() if r["split"] == "train"}


def test_mixtures_of_an_event_library_hold_out_recordings_not_rows():
    """Mixtures of room-less library clips: holding out a mixture by its own id would leave almost
    none whose parents are not also mixed into some train row; holding out source recordings
    keeps every mixture of two held-out clips (about fraction squared of them)."""
    rng = random.Random(0)
    pairs = {tuple(rng.sample(range(60), 2)) for _ in range(400)}
    rows = [Clip(f"mix-{a}-{b}", "train", frozenset(), frozenset([f"clip-{a}", f"clip-{b}"])) for a, b in pairs]
    by_split, dropped = assign_splits(rows, 0.3, seed=1)
    assert len(by_split["test"]) >= 0.3 ** 2 * len(rows) / 2
    train_clips = {k for r in by_split["train"] for k in r.clips}
    assert not any(r.clips & train_clips for r in by_split["test"])
    assert all("recording" in why for why in dropped.values())


def test_split_does_not_depend_on_order():
    rows = [Clip(f"c{i}", "train", frozenset([f"room-{i % 5}"]), frozenset([f"ev-{i}"])) for i in range(50)]
    a, _ = assign_splits(rows, 0.3, 1)
    b, _ = assign_splits(rows[::-1], 0.3, 1)
    assert {s: {r.id for r in v} for s, v in a.items()} == {s: {r.id for r in v} for s, v in b.items()}
    assert 0 < len(a["test"]) < 50


def test_ltu_and_spatialsoundqa_records_have_exactly_their_keys(tmp_path):
    row = scene_row(3, 6.0, 0.5, ["Dog", "Bell", "Speech"])
    facts = extract_facts(row)
    rows = to_rows(facts, generate(facts, Context(seed=0)), seed=0, dataset="scenes@123", audio_split="train")
    n = write_json((ltu_record(r, DCASE_AUDIO_PATH) for r in rows), tmp_path / "ltu.json")
    records = json.loads((tmp_path / "ltu.json").read_text())
    assert n == len(records) == len(rows) > 20
    assert all(tuple(r) == LTU_KEYS for r in records)
    assert records[0]["audio_id"] == "foa_dev/train/fold1_scene-3.wav" and records[0]["input"] == ""
    test_record = ltu_record({**rows[0], "audio_split": "test"}, DCASE_AUDIO_PATH)
    assert test_record["audio_id"] == "foa_dev/test/fold4_scene-3.wav"
    with pytest.raises(RoomtoneError, match="no DCASE fold"):
        ltu_record({**rows[0], "audio_split": "validation"}, DCASE_AUDIO_PATH)
    assert ltu_record({**rows[0], "audio_split": "validation"}, "{split}/{audio_id}")["audio_id"] == "validation/scene-3"
    closed = [r for r in records if r["task"] != "open-ended question"]
    prefixed = sum(r["instruction"].startswith("Closed-ended question: ") for r in closed)
    assert 0.3 < prefixed / len(closed) < 0.7
    assert not any(r["instruction"].startswith("Closed-ended") for r in records if r["task"] == "open-ended question")
    spatial = [spatial_record(r) for r in rows]
    assert all(tuple(r) == SPATIAL_KEYS for r in spatial)
    assert {r["question_type"] for r in spatial} >= {"CLASSIFICATION", "DOA", "DISTANCE", "TEMPORAL", "COUNTING"}
    assert all(r["reverb_id"] == "room-1" and r["audio_id2"] is None for r in spatial)
    doa = [r for r in rows if r["task"] == "doa_octant"]
    assert doa and all(r["answer"]["unit"] == "m" and r["convention"].startswith("azimuth") for r in doa)


def test_every_exported_record_that_mentions_a_spatial_quantity_states_the_convention(tmp_path):
    ctx = Context(seed=0, class_map=tuple(CLASSES), ontology=Ontology.load(ONTOLOGY) if ONTOLOGY.is_file() else None)
    rows = []
    for seed in range(30):
        facts = extract_facts({**scene_row(seed, 10.0, 0.5, sorted(CLASSES)[:4]),
                               "caption": "a dog barks to the left while a bell rings behind, moving to the right"})
        rows += to_rows(facts, generate(facts, ctx), seed=0, dataset="scenes@1")
    write_json((ltu_record(r) for r in rows), tmp_path / "ltu.json")
    write_json((spatial_record(r) for r in rows), tmp_path / "spatialsoundqa.json")
    ltu = json.loads((tmp_path / "ltu.json").read_text())
    spatial = json.loads((tmp_path / "spatialsoundqa.json").read_text())
    assert {r["task"] for r in ltu if DIRECTIONAL.search(r["instruction"] + r["output"])} >= {
        "doa_vertical", "motion_state", "motion_count", "motion_speed", "motion_choice", "caption",
        "open-ended question"}  # the scan sees the tasks that lacked the note
    assert missing_convention(ltu, "instruction", "output") == []
    assert missing_convention(spatial, "question", "answer") == []


def test_an_export_that_fails_leaves_no_half_written_file_and_a_bad_audio_path_is_refused_first(tmp_path):
    """'{room}/{audio_id}.wav' raised a KeyError from inside the writer and left 'ltu_test.json' as '['."""
    from pipelines.qa.records import check_audio_path

    for template in ("{room}/{audio_id}.wav", "{}.wav", "{audio_id"):
        with pytest.raises(RoomtoneError, match="--audio-path"):
            check_audio_path(template)
    check_audio_path("foa_dev/{split}/{audio_id}.wav")
    check_audio_path(DCASE_AUDIO_PATH)

    def failing():
        yield {"a": 1}
        raise KeyError("room")

    with pytest.raises(KeyError):
        write_json(failing(), tmp_path / "ltu_test.json")
    assert list(tmp_path.iterdir()) == []


def test_a_two_room_mixture_names_no_reverb_in_the_spatialsoundqa_export():
    row = {"audio_id": "m", "room_id": "room-1", "room_ids": ["room-1", "room-2"], "id": "q", "question_type": "DOA",
           "question": "?", "output": "!"}
    assert spatial_record(row)["reverb_id"] is None
    assert spatial_record({**row, "room_ids": ["room-1", "room-1"]})["reverb_id"] == "room-1"
