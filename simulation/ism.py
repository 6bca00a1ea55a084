"""Batched image-source method (Allen & Berkley) in torch.

Conventions (those of rir-generator and of Habets' RIR generator):
  * walls x0, x1, y0, y1, z0, z1 with amplitude reflection coefficients beta;
  * each image adds  D * prod(beta_w ** hits_w) / (4 pi d)  with a positive sign,
    d in metres and D the receiver's first-order directivity towards the image;
  * the arrival sits at d / c * fs samples (fractional), rendered with a Hann-
    windowed sinc of `taps` samples centred on it (2 * round(0.004 fs) by default),
    taps falling outside [0, nsample) dropped; no high-pass filter;
  * `order` limits the L1 reflection order (-1: every image arriving before nsample);
  * output (S, M, nsample): sources x receivers x samples, in pressure per unit
    source strength.
Band absorption and air absorption render one RIR per octave band and sum them
through the complementary zero-phase filters of `bands.py`.

The kernel is applied through its Chebyshev split (`_kernel.py`), which equals the
direct tap-by-tap sum to ~1e-11 (float64, 12 terms) and needs `terms` scattered
values per image instead of `taps`. Images are processed in chunks of at most
`chunk_size` image-receiver pairs, in a fixed order, and summed into one buffer
with a sequential index_add_, so on CPU the result is bit-identical whatever
the chunk size and whatever else is in the batch.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ._images import Axis, iter_images, make_axis
from ._kernel import default_taps, default_terms, kernel_coefficients
from .arrays import MicArray
from .bands import band_pad, band_weights
from .rooms import Room
from .scene import as_positions, check_signal, normalize_batch

__all__ = ["image_source_rir", "early_bands", "next_fast_len", "check_kernel", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 1 << 18


def next_fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n, a fast FFT size."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _axis_gains(room: Room, axes: tuple[Axis, ...], device: torch.device) -> list[torch.Tensor]:
    """Per axis, (B, S, n) reflection gain beta_low ** low_hits * beta_high ** high_hits."""
    beta = room.band_reflection() if room.uses_bands else [[b] for b in room.beta]
    beta_t = torch.tensor(beta, dtype=torch.float64, device=device)[..., None, None]  # (6, B, 1, 1)
    return [beta_t[2 * a] ** axis.low_hits.to(torch.float64) * beta_t[2 * a + 1] ** axis.high_hits.to(torch.float64)
            for a, axis in enumerate(axes)]


_GROUP_PAIRS = 1 << 22  # (x, y) image pairs screened at once: sources are enumerated in groups of this many pairs


def _accumulate(room: Room, sources: np.ndarray, array: MicArray, fs: float, limit: int, order: int, terms: int,
                dtype: torch.dtype, device: torch.device, chunk_size: int) -> torch.Tensor:
    """Histogram (S * M, B, terms, limit) of gain * T_q(2 frac - 1) at floor(arrival).

    Sources go through `iter_images` in groups (as many as keep its (S, nx, ny) screen under
    _GROUP_PAIRS entries); a histogram cell only ever receives one source's images, in
    enumeration order, so the grouping changes nothing on the CPU."""
    per_sample = room.c / fs  # metres per sample
    rec = torch.tensor(array.positions, dtype=torch.float64, device=device) / per_sample
    look = torch.tensor(array.orientations, dtype=torch.float64, device=device)
    pattern = torch.tensor(array.patterns, dtype=torch.float64, device=device)
    directional = bool((pattern < 1).any())
    air = torch.tensor(room.air_attenuation() if room.air_absorption else [], dtype=torch.float64, device=device)
    n_mics, n_bands = len(array), len(room.band_centers) if room.uses_bands else 1
    center = rec.mean(dim=0)
    reach = limit + float((rec - center).norm(dim=-1).max()) + 1.0
    hist = torch.zeros(n_bands * terms, len(sources) * n_mics * limit, dtype=dtype, device=device)
    row_base = torch.arange(n_mics, device=device) * limit
    positions = torch.tensor(sources, dtype=torch.float64, device=device) / per_sample
    entries = [2 * (2 * math.ceil(limit / (2.0 * room.dims[a] / per_sample)) + 1) for a in range(2)]
    group = max(1, _GROUP_PAIRS // (entries[0] * entries[1]))
    for first in range(0, len(sources), group):
        src = positions[first:first + group]
        axes = tuple(make_axis(room.dims[a] / per_sample, src[:, a], limit, order) for a in range(3))
        gains = _axis_gains(room, axes, device)  # (B, S, n_a)
        offsets = [axes[a].coord[:, :, None] - rec[None, None, :, a] for a in range(3)]  # (S, n_a, M) image - receiver
        squares = [o * o for o in offsets]
        facing = [o * look[:, a] for a, o in enumerate(offsets)] if directional else []
        for s, ix, iy, iz in iter_images(axes, center, reach, order, max(1, chunk_size // n_mics)):
            dist = (squares[0][s, ix] + squares[1][s, iy] + squares[2][s, iz]).sqrt_()  # (K, M) samples
            whole = dist.floor()
            valid = whole < limit
            refl = gains[0][:, s, ix] * gains[1][:, s, iy] * gains[2][:, s, iz]  # (B, K)
            spread = valid / (4.0 * math.pi * per_sample * dist)
            if directional:
                cos = (facing[0][s, ix] + facing[1][s, iy] + facing[2][s, iz]) / dist
                spread = spread * (pattern + (1.0 - pattern) * cos)
            gain = refl[:, :, None] * spread  # (B, K, M)
            if len(air):
                gain = gain * torch.exp(-0.5 * per_sample * air[:, None, None] * dist)
            gain = gain.to(dtype).reshape(n_bands, -1)
            base = ((first + s) * (n_mics * limit))[:, None] + row_base  # (K, M)
            index = (base + torch.where(valid, whole, 0.0).long()).reshape(-1)
            x = (2.0 * (dist - whole) - 1.0).to(dtype).reshape(-1)
            prev, basis = torch.ones_like(x), torch.ones_like(x)  # T_{q-1}, T_q (Chebyshev recurrence)
            for q in range(terms):
                if q == 1:
                    prev, basis = basis, x
                elif q > 1:
                    prev, basis = basis, 2.0 * x * basis - prev
                for b in range(n_bands):
                    hist[b * terms + q].index_add_(0, index, gain[b] * basis)
    return hist.view(n_bands, terms, len(sources) * n_mics, limit).permute(2, 0, 1, 3)


def early_bands(room: Room, sources: np.ndarray, array: MicArray, *, fs: float, nsample: int, limit: int,
                order: int, taps: int, terms: int, dtype: torch.dtype, device: torch.device,
                chunk_size: int) -> torch.Tensor:
    """Per-band RIRs (S, M, B, nsample) of the images arriving before `limit` samples.

    B is 1 for a broadband room. Inputs are assumed validated (see `image_source_rir`).
    """
    limit = min(limit, nsample)
    hist = _accumulate(room, sources, array, fs, limit, order, terms, dtype, device, chunk_size)
    n_bands = hist.shape[1]
    pad = band_pad(fs, room.band_centers) if n_bands > 1 else 0
    n_fft = next_fast_len(limit + taps + 2 * pad)
    coeffs = torch.tensor(kernel_coefficients(taps, terms), dtype=dtype, device=device)
    # a plain product and sum over the terms, not einsum: einsum's batched matmul may order the sum by the
    # batch's size, and a source's RIR must not depend on how many share its call
    spectrum = (torch.fft.rfft(hist, n=n_fft) * torch.fft.rfft(coeffs, n=n_fft)).sum(dim=2)
    if n_bands > 1:
        spectrum = spectrum * band_weights(room.band_centers, n_fft, fs, dtype, device)
    signal = torch.fft.irfft(spectrum, n=n_fft)
    first = taps // 2 - 1  # output sample p is full-convolution index p + taps/2 - 1
    span = min(nsample, n_fft - first - pad)
    out = torch.zeros(hist.shape[0], n_bands, nsample, dtype=dtype, device=device)
    out[..., :span] = signal[..., first : first + span]
    return out.view(len(sources), len(array), n_bands, nsample)


def image_source_rir(room: Room, sources: Sequence[Sequence[float]] | np.ndarray, array: MicArray, *, fs: float,
                     nsample: int, order: int = -1, taps: int | None = None, terms: int | None = None,
                     dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                     chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Exact image-source RIRs of one room: (S, M, nsample) tensor of `dtype` on `device`.

    sources: (3,) or (S, 3) in metres. order: L1 reflection order limit, -1 for all
    images arriving before nsample. taps: kernel length (even; default
    2 * round(0.004 fs)). terms: Chebyshev terms (default 12 for float64, 8 otherwise).
    Raises ValueError before any compute for out-of-room points or bad sizes.
    """
    src = as_positions("sources", sources)
    normalize_batch(room, src, array)
    check_signal(fs, nsample)
    taps, terms = check_kernel(fs, order, taps, terms, dtype)
    out = early_bands(room, src, array, fs=fs, nsample=nsample, limit=nsample, order=order, taps=taps, terms=terms,
                      dtype=dtype, device=torch.device(device), chunk_size=chunk_size)
    return out.sum(dim=2)


def check_kernel(fs: float, order: int, taps: int | None, terms: int | None, dtype: torch.dtype) -> tuple[int, int]:
    if not isinstance(order, (int, np.integer)) or order < -1:
        raise ValueError(f"order must be an integer in [-1, inf) (-1 = no limit); got {order!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    taps = default_taps(fs) if taps is None else taps
    if not isinstance(taps, (int, np.integer)) or taps < 2 or taps % 2:
        raise ValueError(f"taps must be an even integer in [2, inf); got {taps!r}")
    terms = default_terms(dtype) if terms is None else terms
    if not isinstance(terms, (int, np.integer)) or not 2 <= terms <= 24:
        raise ValueError(f"terms must be an integer in [2, 24]; got {terms!r}")
    return int(taps), int(terms)
