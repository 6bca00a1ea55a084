"""Microphone arrays as sets of receivers with first-order directivity.

Every capsule has a position (m), a pattern parameter a and a unit look
direction o; its gain for a wave arriving from unit direction u is
a + (1 - a) * (u . o): a = 1 omni, 0.5 cardioid, 0 figure-8. A first-order
Ambisonics receiver is four coincident capsules (W omni, then Y, Z, X figure-8s
along +y, +z, +x), which yields the ACN/SN3D plane-wave gains exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["MicArray", "PATTERNS", "direction", "fibonacci_sphere", "tetra_mic", "foa", "circular", "linear", "custom"]

PATTERNS: dict[str, float] = {
    "omni": 1.0,
    "subcardioid": 0.75,
    "cardioid": 0.5,
    "supercardioid": 0.5 * (math.sqrt(3.0) - 1.0),
    "hypercardioid": 0.25,
    "figure8": 0.0,
}
TETRA_ANGLES = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
_COINCIDENT_M = 1e-6


def direction(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    """Unit vector for an azimuth (counter-clockwise from +x) and elevation (up), in degrees."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere (golden-angle spiral): the plane-wave
    directions of every diffuse-field model here."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = math.pi * (3.0 - math.sqrt(5.0)) * k
    rho = np.sqrt(1.0 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=-1)


def _pattern_value(pattern: str | float) -> float:
    if isinstance(pattern, str):
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {sorted(PATTERNS)} or a number in [0, 1]; got {pattern!r}")
        return PATTERNS[pattern]
    return float(pattern)


@dataclass(frozen=True)
class MicArray:
    """Receivers: positions (M, 3) in metres, patterns (M,) in [0, 1], unit orientations (M, 3)."""

    positions: tuple[tuple[float, float, float], ...]
    patterns: tuple[float, ...]
    orientations: tuple[tuple[float, float, float], ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) == 0 or not np.isfinite(pos).all():
            raise ValueError(f"MicArray.positions must be a finite (M, 3) array with M >= 1; got shape {pos.shape}")
        m = len(pos)
        pat = np.asarray(self.patterns, dtype=np.float64)
        if pat.shape != (m,) or not ((pat >= 0) & (pat <= 1)).all():
            raise ValueError(f"MicArray.patterns must be {m} values in [0, 1]; got {pat.tolist()}")
        ori = np.asarray(self.orientations, dtype=np.float64)
        norms = np.linalg.norm(ori, axis=-1) if ori.ndim == 2 else None
        if ori.shape != (m, 3) or norms is None or not (norms > 0).all():
            raise ValueError(f"MicArray.orientations must be {m} non-zero 3-vectors; got shape {ori.shape}")
        ori = ori / norms[:, None]
        gap = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        same = (gap < _COINCIDENT_M) & (np.abs(pat[:, None] - pat[None]) < 1e-12) & ((ori @ ori.T) > 1 - 1e-12)
        np.fill_diagonal(same, False)
        if same.any():
            i, j = np.argwhere(same)[0]
            raise ValueError(
                f"MicArray.positions: capsules {i} and {j} are coincident (closer than {_COINCIDENT_M} m) "
                "with the same pattern and orientation; capsules must be >= 1e-6 m apart or differ in directivity"
            )
        object.__setattr__(self, "positions", tuple(tuple(map(float, p)) for p in pos))
        object.__setattr__(self, "patterns", tuple(map(float, pat)))
        object.__setattr__(self, "orientations", tuple(tuple(map(float, o)) for o in ori))

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def center(self) -> tuple[float, float, float]:
        c = np.asarray(self.positions).mean(axis=0)
        return (float(c[0]), float(c[1]), float(c[2]))

    def moved_to(self, center: Sequence[float]) -> MicArray:
        """The same array translated so that its centre is at `center`."""
        shift = np.asarray(center, dtype=np.float64) - np.asarray(self.center)
        pos = np.asarray(self.positions) + shift
        return MicArray(tuple(map(tuple, pos)), self.patterns, self.orientations, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"positions": [list(p) for p in self.positions], "patterns": list(self.patterns),
                "orientations": [list(o) for o in self.orientations], "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MicArray:
        return cls(tuple(map(tuple, data["positions"])), tuple(data["patterns"]),
                   tuple(map(tuple, data["orientations"])), data.get("name", "custom"))


def custom(coords: Sequence[Sequence[float]], pattern: str | float | Sequence[str | float] = "omni",
           orientations: Sequence[Sequence[float]] | None = None, name: str = "custom") -> MicArray:
    """Array from absolute capsule coordinates (M, 3); orientations default to +x."""
    pos = np.atleast_2d(np.asarray(coords, dtype=np.float64))  # one capsule may be given as one 3-vector
    pats = [pattern] * len(pos) if isinstance(pattern, (str, int, float)) else list(pattern)
    ori = np.tile([1.0, 0.0, 0.0], (len(pos), 1)) if orientations is None else np.asarray(orientations, dtype=np.float64)
    return MicArray(tuple(map(tuple, pos)), tuple(_pattern_value(p) for p in pats), tuple(map(tuple, ori)), name)


def tetra_mic(center: Sequence[float] = (0.0, 0.0, 0.0), radius: float = 0.042, pattern: str | float = "omni") -> MicArray:
    """DCASE/TAU MIC format: four capsules on a 4.2 cm sphere, facing outwards.

    The rigid-sphere baffle of the em32 is not modelled; capsules are open-array
    points (omni by default, or an outward first-order pattern).
    """
    if not radius > 0:
        raise ValueError(f"radius must be in (0, inf) m; got {radius}")
    dirs = np.array([direction(az, el) for az, el in TETRA_ANGLES])
    return custom(np.asarray(center, dtype=np.float64) + radius * dirs, pattern, dirs, name="tetra_mic")


def foa(center: Sequence[float] = (0.0, 0.0, 0.0)) -> MicArray:
    """First-order Ambisonics receiver, ACN order W, Y, Z, X with SN3D gains (AmbiX)."""
    ori = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    return custom(np.tile(np.asarray(center, dtype=np.float64), (4, 1)), [1.0, 0.0, 0.0, 0.0], ori, name="foa")


def circular(n: int, radius: float, center: Sequence[float] = (0.0, 0.0, 0.0), pattern: str | float = "omni") -> MicArray:
    """n capsules evenly on a horizontal circle, first one on +x, facing outwards."""
    if n < 1 or not radius > 0:
        raise ValueError(f"circular needs n >= 1 and radius in (0, inf) m; got n={n}, radius={radius}")
    dirs = np.array([direction(360.0 * k / n, 0.0) for k in range(n)])
    return custom(np.asarray(center, dtype=np.float64) + radius * dirs, pattern, dirs, name=f"circular{n}")


def linear(n: int, spacing: float, center: Sequence[float] = (0.0, 0.0, 0.0), axis: Sequence[float] = (1.0, 0.0, 0.0),
           pattern: str | float = "omni") -> MicArray:
    """n capsules spaced `spacing` m apart along `axis`, centred on `center`, facing +x."""
    if n < 1 or not spacing > 0:
        raise ValueError(f"linear needs n >= 1 and spacing in (0, inf) m; got n={n}, spacing={spacing}")
    ax = np.asarray(axis, dtype=np.float64)
    if ax.shape != (3,) or not (np.isfinite(ax).all() and np.linalg.norm(ax) > 0):
        raise ValueError(f"linear needs axis to be a finite, non-zero 3-vector; got {ax.tolist()}")
    ax = ax / np.linalg.norm(ax)
    offsets = (np.arange(n) - (n - 1) / 2.0)[:, None] * spacing * ax
    return custom(np.asarray(center, dtype=np.float64) + offsets, pattern, name=f"linear{n}")
