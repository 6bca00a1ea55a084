"""Scene plans: a seeded, serialisable recipe for one SELD clip.

A plan fixes everything random about a scene (which library item plays when,
on which track, how loud, from where, moving or not, the ambience SNR and the
noise seed) so rendering is a pure function of plan, dry signals and RIRs.
Times are seconds on a label grid of `hop` s (100 ms, DCASE); onsets and
durations are multiples of it. Angles follow DCASE: azimuth counter-clockwise
from +x in [-180, 180) degrees, elevation up, relative to the array centre.
A moving source follows an arc at constant distance and elevation around the
centre, its azimuth changing at `speed` deg/s (positive counter-clockwise).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from .grid import RirGrid

__all__ = ["Box", "LibraryItem", "PlanConfig", "PlannedEvent", "ScenePlan", "plan_scene", "stepped_azimuth"]

Region = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LibraryItem:
    """One dry event recording: id, 0-based class index, class name and duration in s."""

    id: str
    class_index: int
    class_name: str
    duration: float


@dataclass(frozen=True)
class Box:
    """Axis-aligned region (metres) where sources may be; `contains` maps (N, 3) -> (N,) bool."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def contains(self, points: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(points)
        return ((p >= np.asarray(self.low)) & (p <= np.asarray(self.high))).all(axis=-1)


@dataclass(frozen=True)
class PlanConfig:
    """What to draw. Exactly one of events_per_minute / active_fraction sets the density,
    and exactly one of level_db / event_snr_db sets the event levels.

    duration: clip length s. tracks: label track slots (1..3); polyphony: most events
    at once (1..tracks). events_per_minute: the mean; each clip's count is a Poisson
    draw around it (at least 1), so clips differ in how many events they hold.
    active_fraction: stop adding events once at least this fraction of the clip has an
    event. level_db: event RMS range in dB re the reference (unit-RMS dry signal).
    event_snr_db: instead, each event's SNR range in dB against the ambience (see
    `render_scene`); the ambience then has a fixed level and snr_db must be None.
    snr_db: ambience SNR range of the whole clip in dB (None: no ambience, unless
    event_snr_db is set). moving_fraction: probability an event moves; speed_range:
    |deg/s|. distance_range m, elevation_range deg: where sources are drawn. min_gap: s of
    silence between events on one track. hop: label frame s.
    """

    duration: float = 5.0
    tracks: int = 3
    polyphony: int = 3
    events_per_minute: float | None = 36.0
    active_fraction: float | None = None
    level_db: tuple[float, float] | None = (-10.0, 0.0)
    snr_db: tuple[float, float] | None = (6.0, 30.0)
    event_snr_db: tuple[float, float] | None = None
    moving_fraction: float = 0.5
    speed_range: tuple[float, float] = (10.0, 40.0)
    distance_range: tuple[float, float] = (1.0, 3.0)
    elevation_range: tuple[float, float] = (-45.0, 45.0)
    min_gap: float = 0.0
    hop: float = 0.1

    def validate(self) -> None:
        """ValueError naming the first bad field; called before any drawing."""
        def bad(name: str, want: str) -> ValueError:
            return ValueError(f"PlanConfig.{name} must be {want}; got {getattr(self, name)!r}")

        if not (math.isfinite(self.hop) and self.hop > 0):
            raise bad("hop", "a time in (0, inf) s")
        if not (math.isfinite(self.duration) and self.duration >= self.hop):
            raise bad("duration", f"a clip length in [{self.hop}, inf) s")
        if self.tracks not in (1, 2, 3):
            raise bad("tracks", "1, 2 or 3")
        if not 1 <= self.polyphony <= self.tracks:
            raise bad("polyphony", f"in [1, tracks={self.tracks}]")
        if (self.events_per_minute is None) == (self.active_fraction is None):
            raise bad("events_per_minute", "set, or active_fraction set, but not both")
        if self.events_per_minute is not None and not self.events_per_minute > 0:
            raise bad("events_per_minute", "in (0, inf)")
        if self.active_fraction is not None and not 0 < self.active_fraction <= 1:
            raise bad("active_fraction", "in (0, 1]")
        if (self.level_db is None) == (self.event_snr_db is None):
            raise bad("level_db", "set, or event_snr_db set, but not both (exactly one sets the event levels)")
        if self.event_snr_db is not None and self.snr_db is not None:
            raise bad("snr_db", "None when event_snr_db sets each event against the ambience (both would fix "
                                "the ambience level)")
        for name in ("level_db", "snr_db", "event_snr_db", "speed_range", "distance_range", "elevation_range"):
            lo_hi = getattr(self, name)
            if lo_hi is not None and not (len(lo_hi) == 2 and np.isfinite(lo_hi).all() and lo_hi[0] <= lo_hi[1]):
                raise bad(name, "a finite (low, high) pair with low <= high")
        if not self.speed_range[0] >= 0:
            raise bad("speed_range", "inside [0, inf) deg/s")
        if not self.distance_range[0] > 0:
            raise bad("distance_range", "inside (0, inf) m")
        if not -90 <= self.elevation_range[0] <= self.elevation_range[1] <= 90:
            raise bad("elevation_range", "inside [-90, 90] deg")
        if not 0 <= self.moving_fraction <= 1:
            raise bad("moving_fraction", "in [0, 1]")
        if not self.min_gap >= 0:
            raise bad("min_gap", "in [0, inf) s")


def stepped_azimuth(azimuth: float, arc: float, step: float = 0.0, phase: float = 0.0) -> float:
    """The azimuth (deg, wrapped) of a source that started at `azimuth` once its arc has run `arc` deg.

    Gliding (step 0) it is azimuth + arc. On a grid ring (step > 0) it jumps a whole step each
    time arc + phase passes a half step: phase is how far the glide had already run past the
    grid point at the (cut) onset, in [-step/2, step/2]; 0 for an event as planned."""
    if step > 0:
        arc = step * round((arc + phase) / step)
    return (azimuth + arc + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class PlannedEvent:
    """One event: which item, when (s), where at onset (deg, deg, m), and its arc speed (deg/s).

    level_db: dry RMS in dB re unit; or None when snr_db (dB against the ambience) sets the
    level at render time. azimuth_step > 0 (deg): the source moves on a stored RIR grid,
    jumping from one ring point to the next (azimuth + k step) instead of gliding; it jumps
    when the arc it would glide, plus `step_phase` (deg; nonzero only for an event whose start
    was cut, see `stepped_azimuth`), reaches half a step.
    """

    item_id: str
    class_index: int
    class_name: str
    track: int
    onset: float
    offset: float
    level_db: float | None
    azimuth: float
    elevation: float
    distance: float
    speed: float = 0.0
    azimuth_step: float = 0.0
    snr_db: float | None = None
    step_phase: float = 0.0

    @property
    def moving(self) -> bool:
        return self.speed != 0.0

    def azimuth_at(self, t: np.ndarray | float) -> np.ndarray | float:
        """Azimuth in [-180, 180) deg at times t (s), clamped to the event span (on the grid, if stepped)."""
        if isinstance(t, float):  # captions ask one time at a time: the same arithmetic without numpy's overhead
            return stepped_azimuth(self.azimuth, self.speed * (min(max(t, self.onset), self.offset) - self.onset),
                                   self.azimuth_step, self.step_phase)
        tt = np.clip(np.asarray(t, dtype=np.float64), self.onset, self.offset)
        turn = self.speed * (tt - self.onset)
        if self.azimuth_step > 0:
            turn = self.azimuth_step * np.round((turn + self.step_phase) / self.azimuth_step)
        return (self.azimuth + turn + 180.0) % 360.0 - 180.0

    def position_at(self, t: np.ndarray | float, center: Sequence[float]) -> np.ndarray:
        """Source position(s) in metres, shape (..., 3), at times t (s)."""
        return np.asarray(center) + self.distance * _unit(self.azimuth_at(t), self.elevation)


@dataclass(frozen=True)
class ScenePlan:
    """A replayable scene recipe; `to_dict` / `from_dict` round-trip through JSON types.

    snr_db: ambience SNR of the whole clip (dB); noise_db: instead, the ambience's absolute
    power (dB re unit mean square), which events with an snr_db are set against.
    """

    seed: int
    duration: float
    tracks: int
    polyphony: int
    hop: float
    center: tuple[float, float, float]
    snr_db: float | None
    noise_seed: int
    events: tuple[PlannedEvent, ...]
    noise_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # Every field is a plain value: shallow copies (asdict deep-copies each of them; it was a tenth of
        # a scene's row time).
        return {**vars(self), "center": list(self.center), "events": [dict(vars(e)) for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenePlan:
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        if not required <= set(data) <= known:  # plans stored before a defaulted field existed still load
            raise ValueError(f"ScenePlan.from_dict needs the fields {sorted(required)} (optional: "
                             f"{sorted(known - required)}); got {sorted(data)}")
        return cls(**{**data, "center": tuple(data["center"]),
                      "events": tuple(PlannedEvent(**e) for e in data["events"])})


def _unit(azimuth_deg: np.ndarray | float, elevation_deg: float) -> np.ndarray:
    az, el = np.radians(azimuth_deg), math.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.full_like(az, math.sin(el))], axis=-1)


def _check_library(library: Sequence[LibraryItem], config: PlanConfig) -> None:
    if len(library) == 0:
        raise ValueError("library must hold at least one LibraryItem; got none")
    for i, item in enumerate(library):
        if not (math.isfinite(item.duration) and 0 < item.duration <= config.duration):
            raise ValueError(f"library[{i}].duration must be in (0, duration={config.duration}] s "
                             f"(the clip must be at least as long as every event); got {item.duration}")
        if int(item.class_index) != item.class_index or item.class_index < 0:
            raise ValueError(f"library[{i}].class_index must be a non-negative integer; got {item.class_index}")


def _draw_speed(rng: np.random.Generator, config: PlanConfig) -> float:
    if rng.random() < config.moving_fraction:
        return float(rng.uniform(*config.speed_range) * rng.choice([-1.0, 1.0]))
    return 0.0


def _draw_place(rng: np.random.Generator, config: PlanConfig, region: Region, center: np.ndarray,
                length: float, attempts: int = 200) -> tuple[float, float, float, float]:
    """(azimuth, elevation, distance, speed) whose whole arc lies inside `region`."""
    for _ in range(attempts):
        az = float(rng.uniform(-180.0, 180.0))
        el = float(rng.uniform(*config.elevation_range))
        dist = float(rng.uniform(*config.distance_range))
        speed = _draw_speed(rng, config)
        ts = np.linspace(0.0, length, max(2, int(np.ceil(4 * length / config.hop)) + 1))
        path = center + dist * _unit(az + speed * ts, el)
        if np.all(region(path)):
            return az, el, dist, speed
    raise ValueError(f"region: no source position inside it after {attempts} draws; widen the region or "
                     f"change distance_range={config.distance_range} / elevation_range={config.elevation_range}")


def _usable_grid_points(grid: RirGrid, config: PlanConfig, region: Region, center: np.ndarray) -> np.ndarray:
    """Indices of the grid points inside the region and the distance and elevation ranges."""
    ok = (region(center + grid.offsets())
          & (grid.distance >= config.distance_range[0] - 1e-6) & (grid.distance <= config.distance_range[1] + 1e-6)
          & (grid.elevation >= config.elevation_range[0] - 1e-6)
          & (grid.elevation <= config.elevation_range[1] + 1e-6))
    if not ok.any():
        raise ValueError(f"grid: none of its {len(grid)} points lies inside the region, distance_range="
                         f"{config.distance_range} and elevation_range={config.elevation_range}; widen them")
    return np.flatnonzero(ok)


def _draw_grid_place(rng: np.random.Generator, config: PlanConfig, grid: RirGrid, usable: np.ndarray,
                     length: float, attempts: int = 200) -> tuple[float, float, float, float]:
    """A usable grid point, and for a moving source a speed whose ring steps all land on usable points."""
    allowed = np.zeros(len(grid), dtype=bool)
    allowed[usable] = True
    for _ in range(attempts):
        g = int(usable[int(rng.integers(len(usable)))])
        az, el, dist = float(grid.azimuth[g]), float(grid.elevation[g]), float(grid.distance[g])
        speed = _draw_speed(rng, config)
        steps = int(np.round(abs(speed) * length / grid.azimuth_step))
        ring = grid.find(az + np.sign(speed) * grid.azimuth_step * np.arange(steps + 1), el, dist)
        if (ring >= 0).all() and allowed[ring].all():
            return az, el, dist, speed
    raise ValueError(f"grid: no moving source fits on its rings after {attempts} draws; lower speed_range="
                     f"{config.speed_range} or moving_fraction, or store a fuller grid")


def plan_scene(rng: np.random.Generator | int, library: Sequence[LibraryItem], center: Sequence[float],
               region: Box | Region, config: PlanConfig = PlanConfig(), grid: RirGrid | None = None) -> ScenePlan:
    """Draw a scene plan. rng: a numpy Generator or an int seed (stored in the plan when an int).

    center: array centre (m). region: Box, or a function (N, 3) points -> (N,) bool
    saying where a source may be. Events are drawn one at a time (item uniform over
    the library, track uniform, onset uniform over the grid slots where the track
    is free, fewer than `polyphony` events sound and the item itself does not: the same
    recording on top of itself is a comb filter, not two events) until the density target (a
    Poisson count, or the active fraction) is met or ten items in a row fit nowhere.
    The plan stores `seed` (-1 when a Generator was given); replay needs only the plan
    itself. grid: sources sit only on
    its points (inside the region and ranges); moving ones step along their ring.
    """
    config.validate()
    _check_library(library, config)
    seed = int(rng) if isinstance(rng, (int, np.integer)) else -1
    gen = np.random.default_rng(seed) if seed >= 0 else rng
    inside = region.contains if isinstance(region, Box) else region
    c = np.asarray(center, dtype=np.float64)
    usable = None if grid is None else _usable_grid_points(grid, config, inside, c)
    n_frames = int(round(config.duration / config.hop))
    gap = int(np.ceil(config.min_gap / config.hop - 1e-9))
    busy = np.zeros((config.tracks, n_frames), dtype=bool)
    sounding = np.zeros(n_frames, dtype=np.int64)
    # the count is Poisson around the rate, so "how many events" has more than one answer across clips
    target = (max(1, int(gen.poisson(config.events_per_minute * config.duration / 60.0)))
              if config.events_per_minute is not None else None)
    playing: dict[str, np.ndarray] = {}  # item id -> frames it sounds in: a recording never overlaps itself
    events: list[PlannedEvent] = []
    misses = 0  # consecutive items that fitted nowhere: the clip is full
    while misses < 10 and ((len(events) < target) if target is not None
                           else (sounding > 0).mean() < config.active_fraction):
        item = library[int(gen.integers(len(library)))]
        span = min(n_frames, max(1, int(round(item.duration / config.hop))))
        placed = False
        # every start at once, by window sums: a start is free when no frame of [s, s + span) already
        # sounds `polyphony` events and the track is idle over [s - gap, s + span + gap)
        first = np.arange(n_frames - span + 1)
        full = np.concatenate([[0], np.cumsum(sounding >= config.polyphony)])
        itself = np.concatenate([[0], np.cumsum(playing.setdefault(item.id, np.zeros(n_frames, dtype=bool)))])
        uncrowded = (full[first + span] == full[first]) & (itself[first + span] == itself[first])
        lo, hi = np.maximum(0, first - gap), np.minimum(n_frames, first + span + gap)
        for track in gen.permutation(config.tracks):
            taken = np.concatenate([[0], np.cumsum(busy[track])])
            starts = np.flatnonzero(uncrowded & (taken[hi] == taken[lo]))
            if not len(starts):
                continue
            s = int(starts[int(gen.integers(len(starts)))])
            if grid is None:
                az, el, dist, speed = _draw_place(gen, config, inside, c, span * config.hop)
            else:
                az, el, dist, speed = _draw_grid_place(gen, config, grid, usable, span * config.hop)
            busy[track, s:s + span] = True
            sounding[s:s + span] += 1
            playing[item.id][s:s + span] = True
            level, snr = ((float(gen.uniform(*config.level_db)), None) if config.level_db is not None
                          else (None, float(gen.uniform(*config.event_snr_db))))
            events.append(PlannedEvent(item.id, int(item.class_index), item.class_name, int(track),
                                       round(s * config.hop, 9), round((s + span) * config.hop, 9),
                                       level, az, el, dist, speed,
                                       azimuth_step=0.0 if grid is None or not speed else float(grid.azimuth_step),
                                       snr_db=snr))
            placed = True
            break
        misses = 0 if placed else misses + 1
    snr = None if config.snr_db is None else float(gen.uniform(*config.snr_db))
    events.sort(key=lambda e: (e.onset, e.track))
    return ScenePlan(seed, float(config.duration), config.tracks, config.polyphony, float(config.hop),
                     (float(c[0]), float(c[1]), float(c[2])), snr, int(gen.integers(2**31)), tuple(events),
                     noise_db=0.0 if config.event_snr_db is not None else None)
