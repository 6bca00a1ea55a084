"""Moving sources: one RIR per label frame along a trajectory.

DCASE labels and time-varying convolution both work on a frame grid (100 ms),
so a trajectory given at any timestamps is resampled linearly onto that grid
and every frame position becomes a static source of one batched simulation.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .api import simulate
from .arrays import MicArray
from .rooms import Room
from .scene import as_positions

__all__ = ["trajectory_rirs"]


def trajectory_rirs(room: Room, positions: Sequence[Sequence[float]] | np.ndarray, array: MicArray, *,
                    times: Sequence[float] | None = None, frame_period: float = 0.1,
                    **simulate_options: Any) -> tuple[np.ndarray, torch.Tensor]:
    """(frame times (F,) in s, RIRs (F, M, nsample)) for a source moving through `positions` (T, 3).

    times: timestamps of the positions in s, strictly increasing (default: one per
    frame_period). Frames sit at 0, frame_period, ... up to the last timestamp.
    `simulate_options` go to `simulate` (fs, nsample or duration, mode, ...).
    """
    pos = as_positions("positions", positions)
    stamps = np.arange(len(pos)) * frame_period if times is None else np.asarray(times, dtype=np.float64)
    if not frame_period > 0:
        raise ValueError(f"frame_period must be in (0, inf) s; got {frame_period}")
    if stamps.shape != (len(pos),) or (len(pos) > 1 and not (np.diff(stamps) > 0).all()):
        raise ValueError(f"times must be {len(pos)} strictly increasing timestamps in s")
    frames = stamps[0] + np.arange(int(np.floor((stamps[-1] - stamps[0]) / frame_period + 1e-9)) + 1) * frame_period
    path = np.stack([np.interp(frames, stamps, pos[:, a]) for a in range(3)], axis=-1)
    return frames, simulate(room, path, array, **simulate_options)[0]
