"""Scene plans: track and polyphony constraints, determinism, round trip, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulation.scenes import Box, LibraryItem, PlanConfig, ScenePlan, frame_labels, plan_scene

LIBRARY = [LibraryItem("dog1", 0, "dog", 1.3), LibraryItem("bell1", 1, "bell", 2.0),
           LibraryItem("speech1", 2, "speech", 0.6), LibraryItem("door1", 3, "door", 3.1)]
CENTER = (4.0, 3.0, 1.5)
REGION = Box((0.5, 0.5, 0.5), (7.5, 5.5, 2.5))


def _occupancy(plan: ScenePlan) -> np.ndarray:
    """(tracks, frames) count of events per track and frame."""
    n = int(round(plan.duration / plan.hop))
    occ = np.zeros((plan.tracks, n), dtype=int)
    for e in plan.events:
        occ[e.track, int(round(e.onset / plan.hop)):int(round(e.offset / plan.hop))] += 1
    return occ


@pytest.mark.parametrize("tracks,polyphony", [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3)])
@pytest.mark.parametrize("seed", range(6))
def test_tracks_never_overlap_and_polyphony_holds(tracks: int, polyphony: int, seed: int) -> None:
    config = PlanConfig(duration=10.0, tracks=tracks, polyphony=polyphony, events_per_minute=90.0, min_gap=0.2)
    plan = plan_scene(seed, LIBRARY, CENTER, REGION, config)
    occ = _occupancy(plan)
    assert occ.max() <= 1 and occ.sum(axis=0).max() <= polyphony
    for track in range(tracks):  # min_gap of silence between consecutive events of a track
        spans = sorted((e.onset, e.offset) for e in plan.events if e.track == track)
        assert all(b[0] - a[1] >= 0.2 - 1e-9 for a, b in zip(spans, spans[1:]))
    per_frame = np.bincount([r.frame for r in frame_labels(plan)], minlength=occ.shape[1])
    assert per_frame.max() <= polyphony
    for e in plan.events:
        assert 0.0 <= e.onset < e.offset <= plan.duration
        assert abs(e.onset / plan.hop - round(e.onset / plan.hop)) < 1e-6
    for item in LIBRARY:  # a recording never sounds on top of itself (it was placed 0.1 s after itself)
        spans = sorted((e.onset, e.offset) for e in plan.events if e.item_id == item.id)
        assert all(b[0] >= a[1] - 1e-9 for a, b in zip(spans, spans[1:])), (item.id, spans)


def test_plans_are_deterministic_and_round_trip() -> None:
    config = PlanConfig(duration=8.0, moving_fraction=0.5)
    a = plan_scene(11, LIBRARY, CENTER, REGION, config)
    b = plan_scene(11, LIBRARY, CENTER, REGION, config)
    c = plan_scene(12, LIBRARY, CENTER, REGION, config)
    assert a.to_dict() == b.to_dict() and a.to_dict() != c.to_dict()
    restored = ScenePlan.from_dict(json.loads(json.dumps(a.to_dict())))
    assert restored == a and restored.to_dict() == a.to_dict()
    assert a.seed == 11 and any(e.moving for e in a.events) and any(not e.moving for e in a.events)
    with pytest.raises(ValueError, match="fields"):
        ScenePlan.from_dict({**a.to_dict(), "extra": 1})
    stored_before_grids = {k: v for k, v in a.to_dict().items() if k != "noise_db"}  # plans already in datasets
    stored_before_grids["events"] = [{k: v for k, v in e.items() if k not in ("azimuth_step", "snr_db")}
                                     for e in stored_before_grids["events"]]
    assert ScenePlan.from_dict(stored_before_grids) == a


def test_density_targets() -> None:
    # the rate is a mean: counts vary per clip (a constant count makes every "how many" answer the same)
    counts = [len(plan_scene(seed, LIBRARY, CENTER, REGION, PlanConfig(duration=20.0, events_per_minute=15.0)).events)
              for seed in range(60)]
    assert len(set(counts)) >= 4 and min(counts) >= 1
    assert abs(np.mean(counts) - 5.0) < 0.8
    config = PlanConfig(duration=20.0, tracks=1, polyphony=1, events_per_minute=None, active_fraction=0.6)
    by_fraction = plan_scene(0, LIBRARY, CENTER, REGION, config)
    assert _occupancy(by_fraction).sum() / 200 >= 0.6


def test_moving_arcs_stay_in_the_region_at_constant_distance() -> None:
    tight = Box((2.5, 1.5, 1.0), (5.5, 4.5, 2.0))
    config = PlanConfig(duration=10.0, moving_fraction=1.0, speed_range=(20.0, 40.0), distance_range=(1.0, 1.4),
                        elevation_range=(-20.0, 20.0))
    plan = plan_scene(3, LIBRARY, CENTER, tight, config)
    for e in plan.events:
        assert 20.0 <= abs(e.speed) <= 40.0
        path = e.position_at(np.linspace(e.onset, e.offset, 200), CENTER)
        assert tight.contains(path).all()
        np.testing.assert_allclose(np.linalg.norm(path - CENTER, axis=-1), e.distance, rtol=1e-12)
    inside_sphere = plan_scene(3, LIBRARY, CENTER, lambda p: np.linalg.norm(p - CENTER, axis=-1) < 1.2, config)
    assert all(e.distance < 1.2 for e in inside_sphere.events)


@pytest.mark.parametrize("kwargs,library,field", [
    (dict(tracks=2, polyphony=3), LIBRARY, "polyphony"),
    (dict(tracks=4, polyphony=1), LIBRARY, "tracks"),
    (dict(duration=2.0), LIBRARY, r"library\[3\].duration"),
    (dict(), [], "library"),
    (dict(active_fraction=0.5), LIBRARY, "events_per_minute"),
    (dict(level_db=(0.0, -10.0)), LIBRARY, "level_db"),
    (dict(event_snr_db=(0.0, 10.0)), LIBRARY, "level_db"),  # exactly one of them sets the levels
    (dict(level_db=None, event_snr_db=(0.0, 10.0)), LIBRARY, "snr_db"),  # both would fix the ambience level
    (dict(elevation_range=(-100.0, 0.0)), LIBRARY, "elevation_range"),
    (dict(distance_range=(0.0, 1.0)), LIBRARY, "distance_range"),
    (dict(distance_range=(20.0, 30.0)), LIBRARY, "region"),
])
def test_bad_input_names_the_field(kwargs: dict, library: list, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        plan_scene(0, library, CENTER, REGION, PlanConfig(**kwargs))
