"""One entry point for every backend: `simulate` validates, then dispatches."""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np
import torch

from .arrays import MicArray
from .backends import create_backend
from .ism import check_kernel
from .rooms import Room
from .scene import check_signal, normalize_batch

__all__ = ["simulate", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """torch.device from 'cpu' / 'cuda[:i]', failing early when CUDA is absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:index]'; got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but torch.cuda.is_available() is False")
    return dev


def simulate(rooms: Room | Sequence[Room], sources: Sequence | np.ndarray, arrays: MicArray | Sequence[MicArray], *,
             fs: float = 24000, nsample: int | None = None, duration: float | None = None, order: int = -1,
             mode: Literal["ism", "hybrid"] = "ism", transition: float | None = None, taps: int | None = None,
             dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", backend: str = "torch",
             **backend_options: Any) -> torch.Tensor:
    """Spatial RIRs for a batch of scenes: tensor (B, S, M, nsample) of `dtype` on `device`.

    rooms: one Room or B rooms. sources: (S, 3) shared or (B, S, 3) per item, metres.
    arrays: one MicArray or B arrays with the same capsule count. Length: `nsample`
    samples or `duration` seconds (exactly one). mode "ism": every image up to the
    L1 `order` (-1: all arriving before nsample); "hybrid": images up to
    `transition` s (default about a quarter of the Sabine time), then a seeded
    diffuse tail. taps: fractional-delay kernel length (default 2 * round(0.004 fs)).
    backend: "torch" (default), "pyroomacoustics" or "gpurir"; `backend_options`
    go to its constructor (e.g. chunk_size, frac_delay_length). Units: a direct
    path peaks at 1 / (4 pi d) times the kernel value; no high-pass filter.
    Every argument is validated, raising ValueError, before any compute.
    """
    room_list, source_list, array_list = normalize_batch(rooms, sources, arrays)
    if (nsample is None) == (duration is None):
        raise ValueError("give exactly one of nsample (samples) or duration (seconds)")
    if duration is not None:
        if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
            raise ValueError(f"duration must be a time in (0, inf) s; got {duration!r}")
        nsample = int(math.ceil(duration * fs)) if isinstance(fs, (int, float)) and math.isfinite(fs) else -1
    check_signal(fs, nsample)
    taps, _ = check_kernel(fs, order, taps, None, dtype)
    if mode not in ("ism", "hybrid"):
        raise ValueError(f"mode must be 'ism' or 'hybrid'; got {mode!r}")
    if transition is not None:
        _check_transition(transition, room_list, source_list, array_list, fs, taps)
    dev = resolve_device(device)
    engine = create_backend(backend, **backend_options)
    return engine.simulate(room_list, source_list, array_list, fs=fs, nsample=nsample, order=order, mode=mode,
                           transition=transition, taps=taps, dtype=dtype, device=dev)


def _check_transition(transition: float, rooms: Sequence[Room], sources: Sequence[np.ndarray],
                      arrays: Sequence[MicArray], fs: float, taps: int) -> None:
    """The fit window before the transition must hold reflections, not the direct path."""
    latest = max(float(np.linalg.norm(s[:, None] - np.asarray(a.positions)[None], axis=-1).max()) / r.c
                 for r, s, a in zip(rooms, sources, arrays))
    low = latest + 3.0 * taps / fs
    if not (isinstance(transition, (int, float)) and math.isfinite(transition) and transition >= low):
        raise ValueError(f"transition must be a time in [{low:.4f}, inf) s (latest direct path plus three "
                         f"kernel lengths); got {transition!r}")
