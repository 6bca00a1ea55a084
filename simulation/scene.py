"""Validation of what goes into a simulation, done before any compute.

Every check raises ValueError naming the offending argument and its valid
range, so a bad room in a batch of thousands fails fast and legibly.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .arrays import MicArray
from .rooms import Room

__all__ = ["MIN_WALL_DISTANCE", "as_positions", "check_inside", "check_signal", "normalize_batch"]

MIN_WALL_DISTANCE = 1e-3  # m; a point on a wall would coincide with its own image


def as_positions(name: str, value: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """(N, 3) float64 array from one point (3,) or a list of points (N, 3)."""
    pos = np.asarray(value, dtype=np.float64)
    if pos.ndim == 1:
        pos = pos[None]
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) == 0 or not np.isfinite(pos).all():
        raise ValueError(f"{name} must be finite coordinates of shape (3,) or (N, 3) with N >= 1; got shape {pos.shape}")
    return pos


def check_inside(name: str, points: np.ndarray, room: Room) -> None:
    """Every point at least MIN_WALL_DISTANCE inside the room."""
    dims = np.asarray(room.dims)
    low, high = MIN_WALL_DISTANCE, dims - MIN_WALL_DISTANCE
    bad = ~((points >= low) & (points <= high)).all(axis=-1)
    if bad.any():
        i = int(np.argmax(bad))
        ranges = ", ".join(f"[{low:g}, {h:g}]" for h in high)
        raise ValueError(f"{name}[{i}] = {points[i].tolist()} m is outside the room or on a wall: "
                         f"valid ranges are x, y, z in {ranges} m")


def check_signal(fs: float, nsample: int) -> None:
    if not (isinstance(fs, (int, float)) and math.isfinite(fs) and 1000 <= fs <= 384000):
        raise ValueError(f"fs must be a sample rate in [1000, 384000] Hz; got {fs!r}")
    if not (isinstance(nsample, (int, np.integer)) and 1 <= nsample <= 2**26):
        raise ValueError(f"nsample must be an integer in [1, {2**26}] samples; got {nsample!r}")


def _check_pair(sources: np.ndarray, array: MicArray) -> None:
    mics = np.asarray(array.positions)
    gap = np.linalg.norm(sources[:, None] - mics[None], axis=-1)
    if (gap < MIN_WALL_DISTANCE).any():
        s, m = np.argwhere(gap < MIN_WALL_DISTANCE)[0]
        raise ValueError(f"sources[{s}] coincides with array capsule {m}: source-capsule distance must be in ["
                         f"{MIN_WALL_DISTANCE}, inf) m")


def normalize_batch(rooms: Room | Sequence[Room], sources: Sequence | np.ndarray,
                    arrays: MicArray | Sequence[MicArray]) -> tuple[list[Room], list[np.ndarray], list[MicArray]]:
    """Broadcast one room / source set / array over the batch and check every item.

    sources: (S, 3) for all items or (B, S, 3) per item. Returns B rooms, B (S, 3)
    source arrays and B arrays, all with the same S and the same capsule count.
    """
    room_list = [rooms] if isinstance(rooms, Room) else list(rooms)
    array_list = [arrays] if isinstance(arrays, MicArray) else list(arrays)
    if not room_list or not all(isinstance(r, Room) for r in room_list):
        raise ValueError("rooms must be a Room or a non-empty sequence of Room")
    if not array_list or not all(isinstance(a, MicArray) for a in array_list):
        raise ValueError("arrays must be a MicArray or a non-empty sequence of MicArray")
    src = np.asarray(sources, dtype=np.float64)
    per_item = src.ndim == 3
    batch = max(len(room_list), len(array_list), len(src) if per_item else 1)
    for name, n in (("rooms", len(room_list)), ("arrays", len(array_list)), ("sources", len(src) if per_item else 1)):
        if n not in (1, batch):
            raise ValueError(f"{name} has batch size {n}; it must be 1 or {batch} to match the other inputs")
    room_list = room_list * batch if len(room_list) == 1 else room_list
    array_list = array_list * batch if len(array_list) == 1 else array_list
    src_list = [as_positions(f"sources[{b}]" if per_item else "sources", src[b] if per_item else src)
                for b in (range(batch) if per_item else [0] * batch)]
    if len({len(a) for a in array_list}) != 1 or len({len(s) for s in src_list}) != 1:
        raise ValueError("every batch item must have the same number of sources and of capsules (output is a dense tensor)")
    for b, (room, srcs, arr) in enumerate(zip(room_list, src_list, array_list)):
        check_inside(f"sources[{b}]" if per_item else "sources", srcs, room)
        check_inside(f"arrays[{b}].positions", np.asarray(arr.positions), room)
        _check_pair(srcs, arr)
    return room_list, src_list, array_list
