"""Fractional-delay kernel and its low-rank split into a fixed filter bank.

Every image adds g * w(n - tau) * sinc(n - tau) around its arrival tau
(rir-generator's kernel: Hann window of `taps` samples, centred on tau). With
tau = p + f (p integer, f in [0, 1)) the tap at offset m from p is k(m; f), a
smooth function of f. Interpolating it in f at Chebyshev nodes gives
k(m; f) = sum_q C[q, m] T_q(2f - 1) to ~1e-11 with 12 terms, so an RIR becomes
sum_q C[q] * h_q, where h_q[p] = sum of g * T_q(2f - 1) over images with
floor(tau) = p. Scattering a few numbers per image and running a handful of FFT
convolutions replaces scattering `taps` numbers per image.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["default_taps", "default_terms", "kernel_coefficients", "windowed_sinc"]


def default_taps(fs: float) -> int:
    """rir-generator's kernel length: 2 * round(0.004 fs) (8 ms)."""
    return 2 * int(math.floor(0.004 * fs + 0.5))


def default_terms(dtype: torch.dtype) -> int:
    """Chebyshev terms whose interpolation error sits below the dtype's rounding."""
    return 12 if dtype == torch.float64 else 8


def windowed_sinc(t: np.ndarray, taps: int) -> np.ndarray:
    """Hann-windowed sinc at offsets t (samples) from the arrival."""
    return 0.5 * (1.0 + np.cos(2.0 * np.pi * t / taps)) * np.sinc(t)


@lru_cache(maxsize=32)
def kernel_coefficients(taps: int, terms: int) -> np.ndarray:
    """C[q, j]: Chebyshev coefficients of tap j (offset m = j - taps/2 + 1) in x = 2f - 1."""
    if taps < 2 or taps % 2:
        raise ValueError(f"taps must be an even integer >= 2; got {taps}")
    q = np.arange(terms)
    nodes = np.cos(np.pi * (q + 0.5) / terms)
    frac = 0.5 * (nodes + 1.0)
    offsets = np.arange(taps) - taps // 2 + 1
    values = windowed_sinc(offsets[None, :] - frac[:, None], taps)  # (node, tap)
    basis = np.cos(q[:, None] * np.arccos(nodes)[None, :])  # (q, node)
    coeffs = (2.0 / terms) * basis @ values
    coeffs[0] *= 0.5
    return coeffs
