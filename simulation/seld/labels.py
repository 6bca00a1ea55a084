"""SELD labels of one clip, and the network targets built from them.

Conventions (DCASE 2020-2024): one label frame is 100 ms; class and track
indices are 0-based; azimuth in degrees, counter-clockwise from +x (+90 is
left), in [-180, 180); elevation in degrees, positive up, in [-90, 90];
distance in metres. The unit vector of (azimuth, elevation) is
x = cos(ele) cos(azi), y = cos(ele) sin(azi), z = sin(ele).

Target layouts follow the DCASE2023/2024 baselines (also used by PSELDNets):

* multi-ACCDOA: float64 (frames, 3 tracks, 3 or 4, classes), the middle axis
  being (x, y, z[, distance m]); ``.reshape(frames, -1)`` gives the baseline's
  flat network output of 3*3*C (2023) or 3*4*C (2024) values. An active track
  holds a unit vector, an inactive one zeros.
* ADPIT: float64 (frames, 6, 4 or 5, classes), the middle axis being
  (activity, x, y, z[, distance m]). The 6 slots hold A0 | B0 B1 | C0 C1 C2:
  a class with one event in a frame fills A0, two events B0 and B1, three or
  more C0-C2 (first three by track index; more are dropped, as the baseline
  does). The ADPIT loss expands these into the 13 track permutations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

import numpy as np

__all__ = [
    "LABEL_HOP_S",
    "Event",
    "SeldLabels",
    "polar_to_unit",
    "unit_to_polar",
    "multi_accdoa_target",
    "decode_multi_accdoa",
    "adpit_target",
]

LABEL_HOP_S = 0.1  # seconds per label frame
N_TRACKS = 3
N_ADPIT_SLOTS = 6
_ADPIT_FIRST_SLOT = {1: 0, 2: 1, 3: 3}  # A0 | B0 B1 | C0 C1 C2


class Event(NamedTuple):
    """One active source in one label frame; distance in m or None when unknown."""

    frame: int
    class_index: int
    track: int
    azimuth: float
    elevation: float
    distance: float | None = None


def polar_to_unit(azimuth: Any, elevation: Any) -> np.ndarray:
    """Unit vectors (..., 3) from azimuth and elevation in degrees."""
    azi, ele = np.radians(np.asarray(azimuth, float)), np.radians(np.asarray(elevation, float))
    return np.stack([np.cos(ele) * np.cos(azi), np.cos(ele) * np.sin(azi), np.sin(ele)], axis=-1)


def unit_to_polar(xyz: Any) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth in [-180, 180), elevation in [-90, 90]) in degrees of vectors (..., 3).

    Vectors need not be unit length; the zero vector maps to (0, 0).
    """
    v = np.asarray(xyz, dtype=np.float64)
    azimuth = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    azimuth = np.where(azimuth >= 180.0, azimuth - 360.0, azimuth)
    elevation = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return azimuth, elevation


def _check(name: str, bad: np.ndarray, values: np.ndarray, valid: str) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] = {values[i].item()!r} is out of range: {name} must be {valid}")


@dataclass(frozen=True, eq=False)
class SeldLabels:
    """Events of one clip as parallel arrays, sorted by (frame, class, track).

    Several events of one class may share a frame (overlapping sources). The
    track index identifies a source within its class (DCASE 'source' column);
    duplicates are allowed because predictions often carry no track identity.
    distance is None when the clip has no distances, else metres for every
    event. n_frames is the clip length in label frames (default: last event + 1).
    """

    frame: np.ndarray
    class_index: np.ndarray
    track: np.ndarray
    azimuth: np.ndarray
    elevation: np.ndarray
    distance: np.ndarray | None = None
    n_frames: int | None = None

    def __post_init__(self) -> None:
        ints = {k: np.asarray(getattr(self, k)) for k in ("frame", "class_index", "track")}
        floats = {k: np.asarray(getattr(self, k), dtype=np.float64) for k in ("azimuth", "elevation")}
        if self.distance is not None:
            floats["distance"] = np.asarray(self.distance, dtype=np.float64)
        n = len(ints["frame"])
        for name, arr in {**ints, **floats}.items():
            if arr.shape != (n,):
                raise ValueError(f"{name} must be a 1-D array of {n} values like frame; got shape {arr.shape}")
        for name, arr in ints.items():
            if n and not (np.issubdtype(arr.dtype, np.integer) or np.array_equal(arr, np.round(arr))):
                raise ValueError(f"{name} must hold integers; got {arr.dtype} values such as {arr[0]!r}")
            ints[name] = arr.astype(np.int64)
            _check(name, ints[name] < 0, ints[name], "an integer >= 0")
        azi, ele = floats["azimuth"], floats["elevation"]
        _check("azimuth", ~((azi >= -180.0) & (azi < 180.0)), azi, "in [-180, 180) degrees")
        _check("elevation", ~((ele >= -90.0) & (ele <= 90.0)), ele, "in [-90, 90] degrees")
        if "distance" in floats:
            dist = floats["distance"]
            _check("distance", ~(np.isfinite(dist) & (dist >= 0.0)), dist, "finite and >= 0 m")
        n_frames = int(ints["frame"].max()) + 1 if n else 0
        if self.n_frames is not None:
            if not (isinstance(self.n_frames, (int, np.integer)) and self.n_frames >= n_frames):
                raise ValueError(f"n_frames must be an integer >= last event frame + 1 = {n_frames}; "
                                 f"got {self.n_frames!r}")
            n_frames = int(self.n_frames)
        order = np.lexsort((ints["track"], ints["class_index"], ints["frame"]))
        for name, arr in {**ints, **floats}.items():
            object.__setattr__(self, name, arr[order])
        object.__setattr__(self, "n_frames", n_frames)

    @classmethod
    def from_events(cls, events: Iterable[Event | tuple], n_frames: int | None = None) -> SeldLabels:
        """Build from (frame, class, track, azimuth, elevation[, distance]) tuples.

        Either every event has a distance or none has (None or a 5-tuple).
        """
        rows = [Event(*e) for e in events]
        has = {r.distance is not None for r in rows}
        if len(has) > 1:
            raise ValueError("distance must be given for every event or for none")
        cols = list(zip(*rows)) if rows else [()] * 6
        return cls(np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64),
                   np.array(cols[2], dtype=np.int64), np.array(cols[3], dtype=np.float64),
                   np.array(cols[4], dtype=np.float64),
                   np.array(cols[5], dtype=np.float64) if has == {True} else None, n_frames)

    def __len__(self) -> int:
        return len(self.frame)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeldLabels):
            return NotImplemented
        return self.n_frames == other.n_frames and self.events() == other.events()

    def events(self) -> list[Event]:
        dist = self.distance.tolist() if self.distance is not None else [None] * len(self)
        return [Event(*row) for row in zip(self.frame.tolist(), self.class_index.tolist(), self.track.tolist(),
                                           self.azimuth.tolist(), self.elevation.tolist(), dist)]

    def unit_vectors(self) -> np.ndarray:
        """(events, 3) unit DOA vectors."""
        return polar_to_unit(self.azimuth, self.elevation)

    def check_classes(self, n_classes: int) -> None:
        """Reject class indices that a model with n_classes outputs cannot hold."""
        _check("class_index", self.class_index >= n_classes, self.class_index, f"in [0, {n_classes - 1}]")


def _ranks_and_sizes(labels: SeldLabels) -> tuple[np.ndarray, np.ndarray]:
    """Per event: its rank among same-class events of its frame (0, 1, ...) and their count."""
    same = (labels.frame[1:] == labels.frame[:-1]) & (labels.class_index[1:] == labels.class_index[:-1])
    group = np.cumsum(np.r_[True, ~same]) - 1 if len(labels) else np.zeros(0, np.int64)
    first = np.searchsorted(group, group)
    return np.arange(len(labels)) - first, np.bincount(group)[group]


def _target_values(labels: SeldLabels, with_distance: bool) -> np.ndarray:
    if with_distance and labels.distance is None:
        raise ValueError("with_distance=True needs labels with distance")
    xyz = labels.unit_vectors()
    return np.concatenate([xyz, labels.distance[:, None]], axis=1) if with_distance else xyz


def multi_accdoa_target(labels: SeldLabels, n_classes: int, *, with_distance: bool = False) -> np.ndarray:
    """Multi-ACCDOA target (frames, 3, 3 or 4, classes); see the module docstring.

    Events of one class in one frame fill tracks 0, 1, 2 in track-index order;
    a fourth or later event is dropped.
    """
    labels.check_classes(n_classes)
    values = _target_values(labels, with_distance)
    out = np.zeros((labels.n_frames, N_TRACKS, values.shape[1], n_classes))
    rank, _ = _ranks_and_sizes(labels)
    keep = rank < N_TRACKS
    out[labels.frame[keep], rank[keep], :, labels.class_index[keep]] = values[keep]
    return out


def decode_multi_accdoa(output: np.ndarray, *, threshold: float = 0.5) -> SeldLabels:
    """Events from a multi-ACCDOA array (frames, 3, 3 or 4, classes).

    A track is active where its (x, y, z) norm exceeds threshold (0.5 in the
    baselines); the event's track index is the track slot. Distances (fourth
    channel) are clipped at 0 m, since a regression output may go negative.
    """
    arr = np.asarray(output, dtype=np.float64)
    if arr.ndim != 4 or arr.shape[1] != N_TRACKS or arr.shape[2] not in (3, 4):
        raise ValueError(f"output must have shape (frames, {N_TRACKS}, 3 or 4, classes); got {arr.shape}")
    f, t, c = np.nonzero(np.linalg.norm(arr[:, :, :3, :], axis=2) > threshold)
    azimuth, elevation = unit_to_polar(arr[f, t, :3, c])
    distance = np.maximum(arr[f, t, 3, c], 0.0) if arr.shape[2] == 4 else None
    return SeldLabels(f, c, t, azimuth, elevation, distance, n_frames=arr.shape[0])


def adpit_target(labels: SeldLabels, n_classes: int, *, with_distance: bool = False) -> np.ndarray:
    """ADPIT target (frames, 6, 4 or 5, classes); see the module docstring for the slots."""
    labels.check_classes(n_classes)
    values = _target_values(labels, with_distance)
    out = np.zeros((labels.n_frames, N_ADPIT_SLOTS, 1 + values.shape[1], n_classes))
    rank, size = _ranks_and_sizes(labels)
    for i in np.nonzero(rank < 3)[0]:
        slot = _ADPIT_FIRST_SLOT[min(int(size[i]), 3)] + int(rank[i])
        out[labels.frame[i], slot, 0, labels.class_index[i]] = 1.0
        out[labels.frame[i], slot, 1:, labels.class_index[i]] = values[i]
    return out
