"""The 16 audio channel swap (ACS) patterns of SELD data augmentation, with their label maps.

Pattern p in 0..15 maps a direction (azimuth phi, elevation theta) to
(sigma * phi + 90 k, epsilon * theta) with k = p % 4, sigma = -1 when (p // 4) is odd
(azimuth reflected before the rotation) and epsilon = -1 for p >= 8. Pattern 0 is the
identity. Every such map sends +-x and +-y axes onto +-x and +-y, so for FOA (ACN order
W, Y, Z, X) it is a signed permutation of Y, Z, X: audio and labels move together
exactly. A tetrahedral MIC array is mapped onto itself only by the 8 patterns whose
horizontal part keeps the sign product of (x, y) equal to epsilon; the others would need
capsules the array does not have, and are refused rather than approximated.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from ..arrays import TETRA_ANGLES, direction
from ..scenes.labels import direction_words

__all__ = ["NUM_PATTERNS", "azimuth_sign", "caption_maps", "channel_map", "pattern_angles", "rotate_caption",
           "valid_patterns"]

NUM_PATTERNS = 16
FORMATS = ("foa", "mic")


def _parts(pattern: int) -> tuple[int, int, int]:
    if not (isinstance(pattern, (int, np.integer)) and 0 <= pattern < NUM_PATTERNS):
        raise ValueError(f"rotation pattern must be an integer in [0, {NUM_PATTERNS}); got {pattern!r}")
    return int(pattern) % 4, -1 if (int(pattern) // 4) % 2 else 1, -1 if pattern >= 8 else 1


def _matrix(pattern: int) -> np.ndarray:
    """The 3x3 map of (x, y, z) direction vectors."""
    k, sigma, eps = _parts(pattern)
    c, s = [1, 0, -1, 0][k], [0, 1, 0, -1][k]
    rot = np.array([[c, -s], [s, c]]) @ np.diag([1, sigma])
    out = np.zeros((3, 3), dtype=np.int64)
    out[:2, :2], out[2, 2] = rot, eps
    return out


def pattern_angles(pattern: int, azimuth, elevation) -> tuple[np.ndarray, np.ndarray]:
    """Transformed (azimuth in [-180, 180), elevation) in degrees; works on arrays."""
    k, sigma, eps = _parts(pattern)
    az = (sigma * np.asarray(azimuth, dtype=np.float64) + 90.0 * k + 180.0) % 360.0 - 180.0
    return az, eps * np.asarray(elevation, dtype=np.float64)


def azimuth_sign(pattern: int) -> int:
    """+1 or -1: how an angular speed (deg/s, counter-clockwise positive) changes sign."""
    return _parts(pattern)[1]


def _mic_sources(pattern: int) -> list[int] | None:
    """Capsule i of the rotated field hears what capsule M^-1 d_i heard (None: not a capsule)."""
    m = _matrix(pattern)
    dirs = np.array([direction(az, el) for az, el in TETRA_ANGLES])
    src = []
    for d in dirs:
        hit = np.flatnonzero(np.abs(dirs - m.T @ d).max(axis=1) < 1e-9)
        if not len(hit):
            return None
        src.append(int(hit[0]))
    return src


@lru_cache(maxsize=None)
def valid_patterns(fmt: str) -> tuple[int, ...]:
    """Patterns a format supports: all 16 for FOA, 8 for the tetrahedral MIC array."""
    if fmt not in FORMATS:
        raise ValueError(f"rotation needs format 'foa' or 'mic'; got {fmt!r}")
    return tuple(p for p in range(NUM_PATTERNS) if fmt == "foa" or _mic_sources(p) is not None)


@lru_cache(maxsize=None)
def channel_map(pattern: int, fmt: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(source channel, sign) of every output channel: out[i] = sign[i] * in[source[i]]."""
    if pattern not in valid_patterns(fmt):
        _parts(pattern)
        raise ValueError(f"rotation pattern {pattern} does not map the tetrahedral MIC array onto itself; "
                         f"MIC supports patterns {list(valid_patterns('mic'))}")
    if fmt == "mic":
        return tuple(_mic_sources(pattern)), (1.0,) * 4
    m = _matrix(pattern)
    order = [1, 2, 0]  # FOA channels Y, Z, X hold the y, z, x components
    src, sign = [0], [1.0]
    for out_axis in order:
        in_axis = int(np.flatnonzero(m[out_axis])[0])
        src.append(1 + order.index(in_axis))
        sign.append(float(m[out_axis, in_axis]))
    return tuple(src), tuple(sign)


_SECTOR_AZ = {"in front": 0.0, "to the left": 90.0, "behind": 180.0, "to the right": -90.0}
_TOWARDS_AZ = {"front": 0.0, "left": 90.0, "back": 180.0, "right": -90.0}
_PHRASE = re.compile(r"\b(?:(above|below)(?:, | and ))?(in front|to the left|behind|to the right)\b"
                     r"|\btowards the (front|left|back|right)\b")


def rotate_caption(caption: str, pattern: int) -> str:
    """Rewrite the direction words of a scene caption (`direction_words` vocabulary) for a pattern.

    The 90-degree sectors of the captions map onto sectors under every pattern, and the
    above/below thresholds are symmetric, so the rewritten words are the words the
    rotated scene would get.
    """
    def repl(m: re.Match) -> str:
        if m.group(3):
            az, _ = pattern_angles(pattern, _TOWARDS_AZ[m.group(3)], 0.0)
            word = direction_words(float(az), 0.0)
            return "towards " + {"in front": "the front", "to the left": "the left", "behind": "the back",
                                 "to the right": "the right"}[word]
        el = {"above": 45.0, "below": -45.0, None: 0.0}[m.group(1)]
        az, el = pattern_angles(pattern, _SECTOR_AZ[m.group(2)], el)
        return direction_words(float(az), float(el))

    return _PHRASE.sub(repl, caption)


def caption_maps(azimuths, pattern: int) -> bool:
    """Whether `rotate_caption` gives a source at each of these azimuths (deg) the sector its turned
    direction has. Sectors are half-open ([45, 135) deg is left), so a mirror can send a source on an
    edge (45 deg, common on RIR grids) to the other side of it, where the mapped word is wrong."""
    for az in azimuths:
        mapped = pattern_angles(pattern, _SECTOR_AZ[direction_words(az, 0.0)], 0.0)[0]
        if direction_words(float(pattern_angles(pattern, az, 0.0)[0]), 0.0) != direction_words(float(mapped), 0.0):
            return False
    return True
