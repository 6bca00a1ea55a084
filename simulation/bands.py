"""Octave-band split on an FFT grid, used for band absorption, air absorption and tails.

Band b's weight rises from 0 at centre b-1 to 1 at centre b and falls to 0 at
centre b+1 as raised cosines in log-frequency; the lowest band extends to DC
and the highest to Nyquist, so the weights sum to exactly one at every bin and
a band-split signal with equal band gains is returned unchanged. Filters are
zero-phase (applied on the FFT grid), so callers pad by `band_pad(fs)` samples
to keep the circular wrap of their short pre- and post-ringing outside the RIR.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["band_weights", "band_pad"]


def band_pad(fs: float, centers: Sequence[float]) -> int:
    """Zero padding in samples that holds the ringing of the lowest crossover."""
    return int(math.ceil(8.0 * fs / centers[0])) if len(centers) > 1 else 0


def band_weights(centers: Sequence[float], n_fft: int, fs: float, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """(n_bands, n_fft // 2 + 1) real weights that sum to one at every rfft bin."""
    freqs = torch.fft.rfftfreq(n_fft, d=1.0 / fs, dtype=torch.float64)
    n_bands = len(centers)
    weights = torch.ones(n_bands, freqs.numel(), dtype=torch.float64)
    for k in range(n_bands - 1):
        lo, hi = math.log2(centers[k]), math.log2(centers[k + 1])
        pos = ((torch.log2(freqs.clamp_min(1e-12)) - lo) / (hi - lo)).clamp(0.0, 1.0)
        rise = 0.5 - 0.5 * torch.cos(math.pi * pos)  # 0 below centre k, 1 above centre k+1
        weights[: k + 1] *= 1.0 - rise
        weights[k + 1 :] *= rise
    return weights.to(dtype=dtype, device=device)
