"""Every random choice derives from (seed, item id), so output never depends on worker count."""

from __future__ import annotations

import hashlib

import numpy as np


def item_seed(seed: int, item_id, *salt) -> int:
    """A 63-bit seed for one item (and an optional purpose, e.g. ``"split"``, or a step and rank)."""
    text = ":".join([str(int(seed)), *map(str, (item_id, *salt))])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def item_rng(seed: int, item_id, *salt) -> np.random.Generator:
    return np.random.default_rng(item_seed(seed, item_id, *salt))
