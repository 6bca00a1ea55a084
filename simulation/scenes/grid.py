"""Stored RIR grids: scenes rendered from RIRs measured or simulated once, as the DCASE generators do.

A grid is the set of source positions around one array for which an RIR is stored:
rings of constant elevation and distance with a point every `azimuth_step` degrees
(points outside the room are simply absent). Static events sit exactly on a grid point;
moving events step along their ring, one grid point at a time, so every label is the
true direction of a stored RIR. Angles follow DCASE (azimuth counter-clockwise from +x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .plan import PlannedEvent, ScenePlan
from .render import RirBank

__all__ = ["RirGrid", "grid_rirs"]

_MATCH_METRES = 1e-3  # a planned position and a stored one closer than this are the same point


@dataclass(frozen=True)
class RirGrid:
    """Positions (G,) of the stored RIRs relative to the array centre: deg, deg, m; ring spacing in deg."""

    azimuth: np.ndarray
    elevation: np.ndarray
    distance: np.ndarray
    azimuth_step: float

    def __post_init__(self) -> None:
        shapes = {np.shape(self.azimuth), np.shape(self.elevation), np.shape(self.distance)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1 or not np.size(self.azimuth):
            raise ValueError(f"RirGrid needs equal-length, non-empty 1-D azimuth, elevation and distance; got {shapes}")
        if not (math.isfinite(self.azimuth_step) and 0 < self.azimuth_step <= 360):
            raise ValueError(f"RirGrid.azimuth_step must be in (0, 360] deg; got {self.azimuth_step}")

    def __len__(self) -> int:
        return len(self.azimuth)

    def offsets(self) -> np.ndarray:
        """(G, 3) positions relative to the array centre, m."""
        return self._points.copy()

    @cached_property
    def _points(self) -> np.ndarray:  # computed once: every event of every scene in a room looks points up
        return _offsets(self.azimuth, self.elevation, self.distance)

    @cached_property
    def _index(self) -> dict:  # (azimuth, elevation, distance) as `_key` rounds them -> point
        return {key: i for i, key in enumerate(_keys(self.azimuth.tolist(), self.elevation.tolist(),
                                                     self.distance.tolist()))}

    def find(self, azimuth, elevation, distance) -> np.ndarray:
        """Index of the stored point at each position (broadcast arrays); -1 where there is none.

        A position given by a stored point's own coordinates (as plans give them) is looked up by
        them; any other is matched in space (within 1 mm), which also finds a stored point named by
        other angles (at a pole, or 360 degrees round). Lists, not arrays: a plan asks for a few
        points at a time, where numpy's per-call overhead is the cost.
        """
        az, el, dist = (np.asarray(v, float) for v in (azimuth, elevation, distance))
        zero = np.zeros((az + el + dist).shape)
        cols = [(v + zero).ravel().tolist() for v in (az, el, dist)]
        index = self._index
        found = [index.get(key, -1) for key in _keys(*cols)]
        miss = [i for i, f in enumerate(found) if f < 0]
        if miss:
            query = _offsets(*(np.take(col, miss) for col in cols))
            gap = np.linalg.norm(query[:, None, :] - self._points[None], axis=-1)
            best = gap.argmin(axis=1)
            for i, b, g in zip(miss, best.tolist(), gap[np.arange(len(miss)), best].tolist()):
                found[i] = b if g < _MATCH_METRES else -1
        return np.array(found, dtype=np.int64).reshape(zero.shape)


def _keys(azimuth: list, elevation: list, distance: list):
    """Positions as hashable triples, rounded far below the 1 mm match (1e-6 deg, 1e-6 m) so the same
    point reached by different float arithmetic has one key."""
    return ((round(a % 360.0, 6) % 360.0, round(e, 6), round(d, 6)) for a, e, d in zip(azimuth, elevation, distance))


def _offsets(azimuth, elevation, distance) -> np.ndarray:
    az, el = np.radians(np.asarray(azimuth, float)), np.radians(np.asarray(elevation, float))
    return np.asarray(distance, float)[..., None] * np.stack(
        [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def _stamp_times(event: PlannedEvent, hop: float) -> np.ndarray:
    """The RIR times of an event (s): onset + k hop, k = 0..frames (the time-variant convolution's stamps)."""
    frames = int(round((event.offset - event.onset) / hop))
    return event.onset + np.arange(frames + 1) * hop


def grid_rirs(plan: ScenePlan, grid: RirGrid, rirs: RirBank | np.ndarray) -> list:
    """Each plan event's RIRs from the stored `rirs` (G, M, L), in `render_scene`'s layout: a pair
    (RirBank, at), `at` the event's grid point (static) or its point at each stamp (moving).

    Pass a RirBank to keep its RIRs' spectra for the room's next scenes (an array makes a new one).
    ValueError when a planned position is not a grid point (the plan was not drawn on `grid`).
    """
    if not isinstance(rirs, RirBank):
        rirs = RirBank(rirs)
    if len(rirs) != len(grid):
        raise ValueError(f"rirs must hold one RIR per grid point ({len(grid)}); got {len(rirs)}")
    out = []
    for i, event in enumerate(plan.events):
        times = _stamp_times(event, plan.hop) if event.moving else np.array([event.onset])
        points = grid.find(event.azimuth_at(times), event.elevation, event.distance)
        if (points < 0).any():
            raise ValueError(f"plan.events[{i}] is not on the RIR grid (azimuth {event.azimuth:.2f}, elevation "
                             f"{event.elevation:.2f}, distance {event.distance:.3f}); plan it with grid=")
        out.append((rirs, points if event.moving else int(points[0])))
    return out
