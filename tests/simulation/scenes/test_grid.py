"""Scenes from stored grid RIRs: sources on grid points, moving ones stepping along their ring."""

from __future__ import annotations

import numpy as np
import pytest

from simulation import Room, foa
from simulation.scenes import (LibraryItem, PlanConfig, PlannedEvent, RirGrid, ScenePlan, convolve_event,
                               frame_labels, grid_rirs, plan_scene, render_scene, room_region)

FS = 8000
ROOM = Room(dims=(8.0, 6.0, 4.0), beta=(0.0,) * 6)
CENTER = (4.0, 3.0, 1.6)
LIBRARY = [LibraryItem("a", 0, "dog", 0.8), LibraryItem("b", 1, "bell", 2.5)]


def _grid(step: float = 30.0, drop: tuple[float, ...] = ()) -> RirGrid:
    """Rings at elevations -20, 0, 20 and distances 1, 2 m; `drop` removes azimuths from every ring."""
    az, el, dist = np.meshgrid(np.arange(-180.0, 180.0, step), [-20.0, 0.0, 20.0], [1.0, 2.0], indexing="ij")
    keep = ~np.isin(az, drop)
    return RirGrid(az[keep], el[keep], dist[keep], step)


def test_find_names_a_stored_point_however_its_position_is_written() -> None:
    """The lookup by coordinates and the match in space agree: other angle spellings and sub-millimetre
    arithmetic find the point, a position 1 cm away or off the grid finds none, shapes broadcast."""
    grid = _grid(drop=(90.0,))
    g = int(grid.find(-150.0, 20.0, 2.0))
    assert (grid.azimuth[g], grid.elevation[g], grid.distance[g]) == (-150.0, 20.0, 2.0)
    same = [(210.0, 20.0, 2.0), (-510.0, 20.0, 2.0), (-150.0 + 1e-9, 20.0, 2.0), (-150.0, 20.0, 2.0 + 5e-4)]
    assert [int(grid.find(*p)) for p in same] == [g] * 4
    assert [int(grid.find(*p)) for p in [(-150.0, 20.0, 2.01), (90.0, 0.0, 1.0), (-135.0, 0.0, 1.0)]] == [-1] * 3
    everywhere = grid.find(grid.azimuth, grid.elevation, grid.distance)
    assert everywhere.tolist() == list(range(len(grid)))
    assert grid.find(np.array([[0.0], [30.0]]), np.array([-20.0, 20.0]), 1.0).shape == (2, 2)
    pole = RirGrid(np.array([0.0, 0.0]), np.array([90.0, 0.0]), np.array([1.0, 1.0]), 30.0)
    assert int(pole.find(123.0, 90.0, 1.0)) == 0  # straight up: any azimuth


def test_static_events_sit_on_grid_points_and_labels_are_their_directions() -> None:
    grid = _grid()
    config = PlanConfig(duration=10.0, events_per_minute=60.0, moving_fraction=0.0)
    plan = plan_scene(1, LIBRARY, CENTER, room_region(ROOM), config, grid=grid)
    assert len(plan.events) >= 5
    labels = frame_labels(plan)
    for event in plan.events:
        g = int(grid.find(event.azimuth, event.elevation, event.distance))
        assert g >= 0
        rows = [r for r in labels if r.track == event.track and event.onset <= r.frame * 0.1 < event.offset - 1e-9]
        assert rows and all(r.azimuth == pytest.approx(grid.azimuth[g], abs=1e-9)
                            and r.elevation == pytest.approx(grid.elevation[g], abs=1e-9)
                            and r.distance == pytest.approx(grid.distance[g], abs=1e-12) for r in rows)


def test_moving_labels_step_along_the_ring_in_the_direction_of_motion() -> None:
    grid = _grid()
    config = PlanConfig(duration=20.0, events_per_minute=30.0, moving_fraction=1.0, speed_range=(20.0, 40.0))
    plan = plan_scene(2, [LIBRARY[1]], CENTER, room_region(ROOM), config, grid=grid)
    assert plan.events and all(e.moving and e.azimuth_step == 30.0 for e in plan.events)
    labels = frame_labels(plan)
    for event in plan.events:
        rows = sorted((r for r in labels if r.track == event.track
                       and event.onset <= r.frame * 0.1 < event.offset - 1e-9), key=lambda r: r.frame)
        az = np.array([r.azimuth for r in rows])
        assert (grid.find(az, event.elevation, event.distance) >= 0).all()  # every label is a grid point
        turns = (np.diff(az) + 180.0) % 360.0 - 180.0
        assert set(np.round(turns, 6)) <= {0.0, round(30.0 * np.sign(event.speed), 6)}  # one step at a time
        travelled = turns.sum()  # about speed x duration, within one step of rounding
        assert abs(travelled - event.speed * (rows[-1].frame - rows[0].frame) * 0.1) <= 30.0 + 1e-6
        assert abs(travelled) >= 30.0  # 20-40 deg/s for 2.5 s crosses at least one grid step


def test_moving_sources_avoid_rings_with_missing_points() -> None:
    grid = _grid(drop=(0.0, 30.0, 60.0, 90.0, 120.0, 150.0))  # half of every ring is gone
    config = PlanConfig(duration=10.0, events_per_minute=30.0, moving_fraction=1.0, speed_range=(30.0, 40.0))
    plan = plan_scene(3, [LIBRARY[1]], CENTER, room_region(ROOM), config, grid=grid)
    for event in plan.events:
        times = np.linspace(event.onset, event.offset, 50)
        assert (grid.find(event.azimuth_at(times), event.elevation, event.distance) >= 0).all()
    with pytest.raises(ValueError, match="none of its"):
        plan_scene(3, LIBRARY, CENTER, room_region(ROOM), PlanConfig(elevation_range=(30.0, 45.0)), grid=grid)


def test_stepped_rendering_equals_the_frame_by_frame_time_variant_convolution() -> None:
    rng = np.random.default_rng(4)
    grid = _grid()
    stored = rng.standard_normal((len(grid), 4, 200)) * np.exp(-np.arange(200) / 40.0)
    event = PlannedEvent("b", 1, "bell", 0, 0.5, 3.0, -3.0, float(grid.azimuth[5]), float(grid.elevation[5]),
                         float(grid.distance[5]), speed=35.0, azimuth_step=30.0)
    plan = ScenePlan(0, 4.0, 1, 1, 0.1, CENTER, None, 0, (event,))
    (bank, index), = grid_rirs(plan, grid, stored)
    assert len(np.unique(index)) == 4 and len(index) == 26  # 87.5 deg in 2.5 s: steps 0..round(87.5 / 30) = 3
    x = rng.standard_normal(int(2.5 * FS))
    hop = FS // 10
    frames = stored[index]  # (F, M, L): every stamp's RIR
    padded = np.concatenate([np.zeros(hop), x, np.zeros(hop)])
    window = np.sin(np.pi * np.arange(2 * hop) / (2 * hop)) ** 2
    direct = np.zeros((4, len(padded) + 200 + hop))  # every 2-hop segment, Hann-faded, convolved with its frame's RIR
    for f in range(len(x) // hop + 1):
        segment = padded[f * hop:f * hop + 2 * hop] * window
        direct[:, f * hop:f * hop + 2 * hop + 199] += np.stack([np.convolve(segment, h) for h in frames[f]])
    np.testing.assert_allclose(convolve_event(x, bank, index, hop), direct[:, hop:hop + len(x) + 199], atol=1e-9)
    signals = {"b": x}
    stepped = render_scene(plan, signals, [(bank, index)], FS, foa(CENTER))
    full = render_scene(plan, signals, [frames], FS, foa(CENTER))
    np.testing.assert_allclose(stepped.audio, full.audio, atol=1e-6)
    off_grid = ScenePlan(0, 4.0, 1, 1, 0.1, CENTER, None, 0, (PlannedEvent("b", 1, "bell", 0, 0.5, 3.0, -3.0,
                                                                         12.0, 0.0, 1.0),))
    with pytest.raises(ValueError, match="not on the RIR grid"):
        grid_rirs(off_grid, grid, stored)
