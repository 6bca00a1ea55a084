"""The QA job on a real Ray cluster and catalog: a tiny scenes dataset in, QA tuples out."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import ThreadingHTTPServer

import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError
from pipelines.qa import CONVENTION, LTU_KEYS, SPATIAL_KEYS, LmConfig
from pipelines.stages.qa import QaConfig, export_qa, run_qa, run_summary
from pipelines.stages.rirs import RirsConfig, run_rirs
from pipelines.stages.scenes import ScenesConfig, run_scenes
from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events
from tests.conftest import SHARED, free_port
from tests.pipelines.qa.test_lm import Stub
from tests.pipelines.qa.test_splits_records import missing_convention

ONTOLOGY = SHARED / "data" / "ontology" / "audioset_ontology.json"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, ray_cluster):
    """Synthetic events (with a test split), two FOA rooms (one held out) and four scenes."""
    catalog = Catalog(CatalogConfig(root=str(tmp_path_factory.mktemp("qa") / "home")))
    run_synthetic_events(SyntheticEventsConfig(name="events", per_class=2, duration=(0.3, 0.8), test_fraction=0.4,
                                               ontology=ONTOLOGY if ONTOLOGY.is_file() else None,
                                               max_shard_bytes=200_000), catalog, show_progress=False)
    run_rirs(RirsConfig(name="rooms", array="foa", num_rooms=2, sources_per_room=1, room_x=(4.0, 6.0),
                        room_y=(4.0, 6.0), room_z=(2.5, 3.5), rt60=(0.2, 0.4), test_fraction=0.5,
                        max_shard_bytes=200_000), catalog, show_progress=False)
    run_scenes(ScenesConfig(name="scenes", events="events", rirs="rooms", num_scenes=4, clip_seconds=3.0,
                            rir_seconds=0.2, test_fraction=0.5, events_per_minute=60.0, max_shard_bytes=100_000),
               catalog, show_progress=False)
    return catalog


def test_qa_job_publishes_linked_tuples_with_lineage_and_a_summary(inputs, tmp_path):
    catalog = inputs
    source = catalog.show("scenes")
    cfg = QaConfig(source="scenes", ontology=ONTOLOGY if ONTOLOGY.is_file() else None, max_shard_bytes=100_000)
    snap = run_qa(cfg, catalog, show_progress=False)
    assert snap.name == "scenes_qa" and snap.inputs == [source.ref]
    rows = catalog.arrow_dataset(snap.ref).to_table().to_pylist()
    scenes = {r["id"]: r for r in catalog.arrow_dataset(source.ref).to_table(columns=["id", "room_id", "events"])
              .to_pylist()}
    assert {r["audio_id"] for r in rows} <= set(scenes) and all(r["dataset"] == source.ref for r in rows)
    summary = run_summary(snap)
    assert summary["tuples"] == len(rows) and sum(summary["tuples_per_family"].values()) == len(rows)
    assert summary["skipped_families"] == ({} if cfg.ontology else {"description": summary["skipped_families"]
                                                                    ["description"]})
    assert {"classification", "temporal", "counting", "direction", "distance", "room"} <= \
        set(summary["tuples_per_family"])
    # multiple-choice options stay inside the dataset's spread of event counts and distances
    per_clip = [len(r["events"]) for r in scenes.values()]
    assert summary["choice_ranges"]["events_per_clip"] == [min(per_clip), max(per_clip)]
    for r in rows:
        if r["task"] == "count_choice":
            assert all(min(per_clip) <= int(c) <= max(per_clip) for c in r["answer"]["choices"])
    by_split = {}
    for split in catalog.splits(snap.ref):
        ids = {r["audio_id"] for r in catalog.arrow_dataset(snap.ref, split).to_table(columns=["audio_id"]).to_pylist()}
        by_split[split] = ({scenes[i]["room_id"] for i in ids},
                           {e["event_id"] for i in ids for e in scenes[i]["events"]})
    assert set(by_split) == {"train", "test"}
    assert not by_split["train"][0] & by_split["test"][0] and not by_split["train"][1] & by_split["test"][1]
    assert all(r["convention"].startswith("azimuth: degrees counter-clockwise") for r in rows)
    # the same config again: the same snapshot, nothing rewritten
    assert run_qa(cfg, catalog, show_progress=False).snapshot_id == snap.snapshot_id
    out = export_qa(catalog, snap.ref, tmp_path / "json", audio_path="foa_dev/{split}/fold{fold}_{audio_id}.wav")
    ltu = json.loads((tmp_path / "json" / "ltu_train.json").read_text())
    assert ltu and all(tuple(r) == LTU_KEYS for r in ltu) and ltu[0]["audio_id"].startswith("foa_dev/train/fold1_")
    ltu_test = json.loads((tmp_path / "json" / "ltu_test.json").read_text())
    assert all(r["audio_id"].startswith("foa_dev/test/fold4_") for r in ltu_test)  # where the DCASE export puts it
    spatial = json.loads((tmp_path / "json" / "spatialsoundqa_test.json").read_text())
    assert spatial and all(tuple(r) == SPATIAL_KEYS for r in spatial)
    assert sum(out["records"].values()) == 2 * len(rows)
    assert missing_convention(ltu + ltu_test, "instruction", "output") == []
    assert missing_convention(spatial, "question", "answer") == []
    assert json.loads((tmp_path / "json" / "convention.json").read_text()) == {"dataset": snap.ref,
                                                                                "convention": CONVENTION}


def test_qa_job_with_a_language_model_counts_its_rejections(inputs):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lm = LmConfig(base_url=f"http://127.0.0.1:{server.server_port}", model="stub", max_clips=1)
        snap = run_qa(QaConfig(name="qa_lm", source="scenes", families=["open"], lm=lm), inputs, show_progress=False)
    finally:
        server.shutdown()
        server.server_close()
    lm_summary = snap.info["summary"]["language_model"]
    assert lm_summary["clips"] == 1 and lm_summary["answers"] == 2
    rows = inputs.arrow_dataset(snap.ref).to_table().to_pylist()
    assert sum(r["generator"] == "lm" for r in rows) == lm_summary["kept"]
    assert lm_summary["kept"] + lm_summary["rejected"] == 2 and lm_summary["rejected"] >= 1


def test_families_the_dataset_cannot_answer_are_skipped_with_the_reason_or_refused(inputs):
    snap = run_qa(QaConfig(name="events_qa", source="events", test_fraction=0.0), inputs, show_progress=False)
    summary = run_summary(snap)
    assert set(summary["tuples_per_family"]) <= {"classification", "description"}
    assert "not spatial" in summary["skipped_families"]["distance"]
    assert "no per-event metadata" in summary["skipped_families"]["temporal"]
    with pytest.raises(RoomtoneError, match="cannot answer the families asked for: distance: .* is not spatial"):
        run_qa(QaConfig(name="bad_qa", source="events", families=["distance"]), inputs, show_progress=False)
    assert not inputs.exists("bad_qa")
    # a QA dataset answers nothing (every family skipped): refused, not published empty
    with pytest.raises(RoomtoneError, match="is a QA dataset: its rows are questions") as err:
        run_qa(QaConfig(name="qa_of_qa", source=snap.ref), inputs, show_progress=False)
    assert "events@" in err.value.fix and not inputs.exists("qa_of_qa")


def test_an_unreachable_language_model_fails_before_the_job(inputs):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RoomtoneError, match="unreachable"):
        run_qa(QaConfig(name="lm_down", source="scenes", lm=LmConfig(base_url=url, model="m")), inputs,
               show_progress=False)
    assert not inputs.exists("lm_down")


def test_a_dataset_whose_clips_all_hold_the_same_number_of_events_is_warned_about():
    """Scenes made at a fixed count gave every counting answer the same value: the run says so."""
    from collections import Counter

    from pipelines.stages.qa import _Scan, _warnings

    (constant,), skip = _warnings(["counting"], _Scan(event_counts=Counter({36: 40})))
    assert "all 40 clips hold 36 events" in constant and "events_per_minute" in constant
    assert skip == {"count_events", "count_choice"}
    assert _warnings(["counting"], _Scan(event_counts=Counter({35: 12, 36: 20, 41: 8}))) == ([], frozenset())
    assert _warnings(["classification"], _Scan(event_counts=Counter({36: 40})))[0] == []  # no counting asked
    assert _warnings(["counting"], _Scan(event_counts=Counter({3: 4})))[0] == []  # too few clips to tell


def test_a_question_whose_answer_never_varies_is_left_out_with_a_warning():
    """60 s scenes start every class in the first third, and a dataset of static sources never
    moves: those tasks are left out, with a warning."""
    from collections import Counter

    from pipelines.stages.qa import _Scan, _warnings

    scan = _Scan()
    scan.coarse["first heard"] = Counter({"the beginning": 40})
    warnings, skip = _warnings(["temporal"], scan)
    assert skip == {"temporal_part", "temporal_part_choice"} and "all 40 sounds asked about" in warnings[0]
    scan.coarse["first heard"] = Counter({"the beginning": 30, "the end": 3})
    assert _warnings(["temporal"], scan) == ([], frozenset())
    # a dataset of static sources: "Is X moving?" always no, "how many move?" always 0
    scan.coarse.update({"motion": Counter({"static": 50}), "motion sense": Counter({"it does not move": 50}),
                        "moving sources": Counter({"0": 25})})
    assert _warnings(["motion"], scan)[1] == {"motion_state", "motion_choice", "motion_count"}


def test_the_scan_sees_what_the_tuples_are_built_from(inputs):
    """The scan read no durations, so every first-heard part was unknown and the part questions
    went unweighted: its facts must be the full rows' facts."""
    from pipelines.qa import Context, extract_facts
    from pipelines.qa.families import first_parts
    from pipelines.stages.qa import _metadata_columns, _scan

    snap = inputs.show("scenes")
    scan = _scan(inputs, snap, Context(families=("temporal", "counting")))
    rows = inputs.arrow_dataset(snap.ref).to_table(columns=_metadata_columns(snap)).to_pylist()
    parts = scan.coarse["first heard"]
    assert parts == Counter(p for r in rows for p in first_parts(extract_facts(r))) and parts.total() > 0
    assert scan.event_counts == Counter(len(r["events"]) for r in rows)


def test_a_coarse_word_nearly_every_clip_shares_is_not_asked_and_the_run_says_why():
    """With the RIR stage's default rooms 293 of 299 clips were 'large' (room_size_yesno answered 98 %
    from the word alone), and 60 s scenes are all 'busy': those tasks are left out, with a warning."""
    from collections import Counter

    from pipelines.qa import Context, extract_facts, generate
    from pipelines.stages.qa import _Scan, _warnings
    from tests.pipelines.qa.test_families import CLASSES, scene_row

    scan = _Scan(event_counts=Counter({30: 20, 36: 20}))
    scan.coarse.update({"room size": Counter({"large": 293, "medium-sized": 6}),
                        "event count bin": Counter({"busy": 40}), "reverberance": Counter({"dry": 20, "very "
                                                                                           "reverberant": 20})})
    warnings, skip = _warnings(["counting", "room"], scan)
    assert skip == {"room_size", "room_size_choice", "room_size_yesno", "count_bin"}
    assert any("293 of 299 clips are 'large'" in w for w in warnings)
    row = scene_row(1, 10.0, 0.0, ["Dog", "Bell"], dims=(20.0, 15.0, 4.0))
    tasks = {q.task for q in generate(extract_facts(row), Context(class_map=tuple(CLASSES), skip_tasks=skip))}
    assert "room_rt60" in tasks and "count_events" in tasks and not tasks & skip
