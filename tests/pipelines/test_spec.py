"""Pipeline specs: validation at the door, DAG order, and reuse of unchanged stages on a real Ray cluster."""

import pytest
import yaml

from catalog import RoomtoneError
from pipelines.report import write_report
from pipelines.spec import check_external_inputs, plan_spec, read_spec, run_plan
from tests.helpers import REPO_ROOT, publish_dataset

TINY = {
    "name": "tiny",
    "seed": 3,
    "stages": {
        "scenes": {"kind": "scenes", "events": "events", "rirs": "rooms", "num_scenes": 2, "clip_seconds": 3.0,
                   "rir_seconds": 0.2, "test_fraction": 0.0, "max_shard_bytes": 100_000},
        "events": {"kind": "synthetic_events", "per_class": 1, "duration": [0.3, 0.6], "max_shard_bytes": 100_000},
        "rooms": {"kind": "rirs", "array": "foa", "num_rooms": 1, "sources_per_room": 1, "room_x": [4, 5],
                  "room_y": [4, 5], "room_z": [2.5, 3], "rt60": [0.2, 0.3], "test_fraction": 0.0,
                  "max_shard_bytes": 200_000},
    },
}


def test_plan_orders_the_dag_and_applies_the_spec_seed():
    plan = plan_spec(TINY)
    order = [s.key for s in plan.stages]
    assert order.index("scenes") > order.index("events") and order.index("scenes") > order.index("rooms")
    assert {s.key: s.needs for s in plan.stages}["scenes"] == ("events", "rooms")
    assert all(s.config.seed == 3 for s in plan.stages)
    assert plan.digest == plan_spec(yaml.safe_load(yaml.safe_dump(TINY, sort_keys=True))).digest


def test_demo_spec_is_valid():
    plan = plan_spec(read_spec(REPO_ROOT / "pipelines" / "specs" / "demo.yaml"))
    assert plan.stages[-1].needs


@pytest.mark.parametrize("change, message", [
    (("scenes", "num_scenes", -1), r"stage 'scenes' \(scenes\)"),
    (("scenes", "polyphony_typo", 2), "polyphony_typo"),
    (("rooms", "kind", "rooms"), "unknown kind 'rooms'"),
    (("events", "name", "rooms"), "write the same dataset"),
])
def test_a_bad_stage_is_refused_naming_stage_and_field(change, message):
    stage, field, value = change
    spec = {**TINY, "stages": {k: dict(v) for k, v in TINY["stages"].items()}}
    spec["stages"][stage][field] = value
    with pytest.raises(RoomtoneError, match=message) as err:
        plan_spec(spec)
    assert field in err.value.problem or field == "kind" or field == "name"


def test_a_cycle_is_refused_with_its_path():
    spec = {"name": "loop", "stages": {
        "events": {"kind": "events", "catalog_dataset": "scenes"},
        "scenes": {"kind": "scenes", "events": "events", "rirs": "rooms"},
        "rooms": {"kind": "rirs"}}}
    with pytest.raises(RoomtoneError, match=r"cycle: (events -> scenes -> events|scenes -> events -> scenes)"):
        plan_spec(spec)


def test_overrides_and_their_errors():
    plan = plan_spec(TINY, overrides=["scenes.num_scenes=5", "seed=9"])
    assert {s.key: s.config for s in plan.stages}["scenes"].num_scenes == 5
    assert all(s.config.seed == 9 for s in plan.stages)
    with pytest.raises(RoomtoneError, match="names no stage"):
        plan_spec(TINY, overrides=["nope.x=1"])
    with pytest.raises(RoomtoneError, match="has no '='"):
        plan_spec(TINY, overrides=["scenes.num_scenes"])


def test_unreadable_spec_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(RoomtoneError, match="not valid YAML"):
        read_spec(bad)
    with pytest.raises(RoomtoneError, match="does not exist"):
        read_spec(tmp_path / "missing.yaml")
    with pytest.raises(RoomtoneError, match="is a folder"):
        read_spec(tmp_path)
    bad.write_bytes(b"\xf5\xf6 not text")
    with pytest.raises(RoomtoneError, match="not valid YAML: 'utf-8' codec"):
        read_spec(bad)


def test_missing_external_input_is_named_before_anything_runs(catalog):
    spec = {"name": "ext", "stages": {"scenes": {"kind": "scenes", "events": "library", "rirs": "rooms@v3"}}}
    with pytest.raises(RoomtoneError, match="stage 'scenes' field 'events'") as err:
        check_external_inputs(plan_spec(spec), catalog)
    assert "roomtone catalog ls" in err.value.fix
    assert catalog.list() == []


def test_what_a_dry_run_can_know_is_refused_before_anything_runs(catalog, tmp_path):
    """An unreachable RT60, an evaluation of a run folder that does not exist and a missing version of
    an existing dataset each passed `run --dry-run` and failed only after earlier stages had run."""
    impossible = {"name": "x", "stages": {"rooms": {**TINY["stages"]["rooms"], "room_x": [20, 25],
                                                    "room_y": [20, 25], "room_z": [8, 10], "rt60": [0.05, 0.06]}}}
    with pytest.raises(RoomtoneError, match="stage 'rooms' \\(rirs\\): no room .* reaches an rt60"):
        check_external_inputs(plan_spec(impossible), catalog)
    probe = {"name": "p", "stages": {"probe": {"kind": "eval", "checkpoint": str(tmp_path / "no_such_run"),
                                               "dataset": "events"},
                                     "events": TINY["stages"]["events"]}}
    with pytest.raises(RoomtoneError, match="stage 'probe' field 'checkpoint': .*no_such_run does not exist"):
        check_external_inputs(plan_spec(probe), catalog)
    mic = {**TINY, "stages": {**TINY["stages"], "scenes": {**TINY["stages"]["scenes"], "format": "mic"}}}
    with pytest.raises(RoomtoneError, match="stage 'scenes' \\(scenes\\): format 'mic' needs RIRs of the tetra_mic"):
        check_external_inputs(plan_spec(mic), catalog)  # the spec's own rirs stage simulates foa
    grid = {**TINY, "stages": {**TINY["stages"], "scenes": {**TINY["stages"]["scenes"], "rir_source": "dataset"}}}
    with pytest.raises(RoomtoneError, match="places sources at random"):
        check_external_inputs(plan_spec(grid), catalog)
    on_rirs = {**TINY, "stages": {**TINY["stages"], "train": {"kind": "pretrain", "dataset": "rooms", "steps": 2}}}
    with pytest.raises(RoomtoneError, match="stage 'train' \\(pretrain\\): dataset 'rooms' must be a dataset of "
                                            "audio clips"):
        check_external_inputs(plan_spec(on_rirs), catalog)  # found before the stages making it have run
    check_external_inputs(plan_spec(TINY), catalog)  # and a spec that is fine passes
    publish_dataset(catalog, "library", {"v": 1}, rows=2)
    spec = {"name": "ext", "stages": {"scenes": {"kind": "scenes", "events": "library@v9", "rirs": "library"}}}
    with pytest.raises(RoomtoneError, match="library@v9") as err:
        check_external_inputs(plan_spec(spec), catalog)
    assert err.value.fix == "name a version it has (roomtone catalog history library)"


def _with(**stages) -> dict:
    return {**TINY, "stages": {**TINY["stages"], **stages}}


@pytest.mark.parametrize("spec, message", [
    (_with(scenes={**TINY["stages"]["scenes"], "events": "rooms"}),
     "stage 'scenes' \\(scenes\\): events 'rooms' must be an event library, but this spec makes it with its rirs"),
    (_with(scenes={**TINY["stages"]["scenes"], "rirs": "events"}), "rirs 'events' must be an RIR dataset"),
    (_with(mix={"kind": "augment", "source": "rooms", "steps": [{"name": "gain"}]}),
     "source 'rooms' must be a dataset of audio clips"),
    (_with(mix={"kind": "augment", "source": "scenes", "steps": [{"name": "reverb"}], "rirs": "rooms"}),
     "already reverberant"),
    (_with(qa={"kind": "qa", "source": "rooms"}), "stage 'qa' \\(qa\\): source 'rooms' must be a dataset of audio"),
    ({"name": "x", "stages": {"scenes": {**TINY["stages"]["scenes"], "events": "clips", "rirs": "clips"}}},
     "rirs clips@.* is not an RIR dataset: it has no rir column"),  # read from the catalog
])
def test_an_input_of_the_wrong_kind_is_refused_by_a_dry_run(catalog, spec, message):
    """Each passed `run --dry-run`, and `run` found it only after the stages before it had run."""
    publish_dataset(catalog, "clips", {"v": 1}, rows=2)
    with pytest.raises(RoomtoneError, match=message):
        check_external_inputs(plan_spec(spec), catalog)


def test_second_run_of_an_unchanged_spec_reuses_every_snapshot(catalog, ray_cluster):
    plan = plan_spec(TINY)
    first = run_plan(plan, catalog, show_progress=False)
    assert not any(r.reused for r in first)
    scenes = {r.stage: r.snapshot for r in first}["scenes"]
    assert set(scenes.inputs) == {first[0].snapshot.ref, first[1].snapshot.ref}
    again = run_plan(plan_spec(TINY), catalog, show_progress=False)
    assert all(r.reused for r in again)
    assert [r.snapshot.snapshot_id for r in again] == [r.snapshot.snapshot_id for r in first]
    assert [s.version for s in catalog.history("scenes")] == [1]
    changed = run_plan(plan_spec(TINY, overrides=["scenes.num_scenes=3"]), catalog, show_progress=False)
    assert [r.reused for r in changed] == [True, True, False]
    assert catalog.show("scenes").stats["rows"] == 3
    for name in ("scenes", "rooms"):
        paths = write_report(catalog, name, catalog.config.root + "/reports")
        page = paths["html"].read_text()
        assert f"{name}@{catalog.show(name).snapshot_id}" in page and "data:image/png;base64," in page
        assert paths["png"].stat().st_size > 10_000
