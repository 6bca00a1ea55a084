"""Stateless augmentation ops on batches: audio (B, C, T) torch tensors, one parameter per item.

Every op keeps the clip length T (what a training batch needs), works on any device
and dtype, and takes its randomness only from values the caller passes in (noise
seeds, offsets), so the offline job and the batched training path share one code path.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["add_noise", "apply_gain", "channel_swap", "convolve_aligned", "direct_path_index", "dot", "mix",
           "mix_gains",
           "peak_limits", "place", "rms", "shift", "speed"]

SPEED_TAPER = 0.05  # the share of the band `speed` keeps over which it rolls off


def dot(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """sum(x * y) in an order that depends only on the shapes: one BLAS inner product per row.

    Torch's CPU reductions split work by thread count and memory alignment, so their last
    bits vary between runs; numpy's single-row inner products came out identical for every
    alignment and BLAS thread count we tried (and run 2x faster than einsum). Every
    statistic a gain is derived from goes through here, so a recipe resolves to the same
    numbers on any worker. On a GPU: a float64 sum. Callers that slice one clip several
    times pass numpy views (`_host`): a tensor slice and its conversion cost more than a
    cached inner product.
    """
    if torch.is_tensor(x):
        if x.device.type != "cpu":
            return float((x * y).sum(dtype=torch.float64))
        x, y = x.detach().numpy(), y.detach().numpy()
    if x.ndim == 1:
        return float(np.inner(x, y))
    if x.ndim > 2:
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    total = 0.0
    for a, b in zip(x, y):
        total += float(np.inner(a, b))
    return total


def _host(x: torch.Tensor) -> torch.Tensor | np.ndarray:
    """A CPU tensor as a numpy view (for `dot` and numpy's loops); a tensor on another device as it is."""
    return x.detach().numpy() if x.device.type == "cpu" else x


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square over channels and time: (B, C, T) -> (B,) float64, order-fixed (see `dot`)."""
    n = x.shape[-2] * x.shape[-1]
    return torch.tensor([math.sqrt(dot(item, item) / n) for item in x], dtype=torch.float64)


def place(partner: torch.Tensor, offset: int, length: int) -> torch.Tensor:
    """partner (C, T2) starting at sample `offset` (may be negative) of a zero (C, length) window."""
    out = partner.new_zeros(partner.shape[0], length)
    start, stop = max(0, offset), min(length, offset + partner.shape[-1])
    if stop > start:
        out[:, start:stop] = partner[:, start - offset:stop - offset]
    return out


SILENT_DBFS = -100.0   # a mixing partner this quiet (RMS over the window) is silence


def _peak(x: torch.Tensor) -> float:
    if not x.numel():
        return 0.0
    low, high = torch.aminmax(x)  # one pass, no |x| temporary
    return max(float(high), -float(low))


def _overlap(partner: torch.Tensor | np.ndarray, offset: int,
             length: int) -> tuple[int, int, torch.Tensor | np.ndarray]:
    """The window span [start, stop) the partner covers, and the partner samples there."""
    start, stop = max(0, offset), max(0, min(length, offset + partner.shape[-1]))
    return start, max(start, stop), partner[:, start - offset:max(start, stop) - offset]


def mix_gains(a: torch.Tensor, partners: Sequence[torch.Tensor], offsets: Sequence[int], snr_db: Sequence[float],
              norm_db: float, mix_rms_db: Sequence[float]) -> list[tuple[float, float]]:
    """AudioGen-style gains (gain_a, gain_b) per item, as Python floats (float64).

    a (B, C, T) is the first clip; partner i (C, T2) starts at offsets[i] in the window.
    Both are normalised to `norm_db` dBFS RMS over the window, the partner lowered by
    `snr_db`, and the sum rescaled to `mix_rms_db` dBFS RMS; the sum's RMS comes from the
    energies and the cross term, so the mixture itself is formed once, by `mix`. A partner silent
    over the window (below `SILENT_DBFS`) gets gain 0: no gain can bring it to the SNR, and 1e11
    times its dither would be labelled as heard.
    """
    n = a.shape[-2] * a.shape[-1]
    floor = n * 10.0 ** (SILENT_DBFS / 10.0)
    gains = []
    for item, p, offset, snr, target in zip(a, partners, offsets, snr_db, mix_rms_db):
        item, p = _host(item), _host(p)
        start, stop, part = _overlap(p, offset, item.shape[-1])
        ea, eb, cross = dot(item, item), dot(part, part), dot(item[:, start:stop], part)
        ga = 10.0 ** (norm_db / 20.0) / max(math.sqrt(ea / n), 1e-12)
        gb = 10.0 ** ((norm_db - snr) / 20.0) / math.sqrt(eb / n) if eb > floor else 0.0
        level = math.sqrt(max(ga * ga * ea + gb * gb * eb + 2.0 * ga * gb * cross, 0.0) / n)
        scale = 10.0 ** (target / 20.0) / max(level, 1e-12)
        gains.append((ga * scale, gb * scale))
    return gains


def mix(a: torch.Tensor, partners: Sequence[torch.Tensor], offsets: Sequence[int],
        gains: Sequence[tuple[float, float]], limits: Sequence[float] | None = None) -> torch.Tensor:
    """gain_a * a + gain_b * (partner placed at its offset), times `limits` (a peak limiter
    factor, 1 for none) per item; a (B, C, T)."""
    out = torch.empty_like(a)
    host_a, host_out = _host(a), _host(out)
    scale = np.multiply if isinstance(host_a, np.ndarray) else torch.mul  # numpy's loop: a fifth faster
    for i, (p, offset, (ga, gb)) in enumerate(zip(partners, offsets, gains)):
        scale(host_a[i], ga, out=host_out[i])
        start, stop, part = _overlap(p, offset, a.shape[-1])
        out[i, :, start:stop].add_(part, alpha=gb)
        if limits is not None and limits[i] != 1.0:
            out[i].mul_(limits[i])
    return out


def peak_limits(x: torch.Tensor, peak: float) -> list[float]:
    """Per item, the factor that brings its peak down to `peak` (1.0 where it is already below)."""
    return [min(1.0, peak / top) if top > 0 else 1.0 for top in (_peak(item) for item in x)]


def apply_gain(x: torch.Tensor, gain_db: Sequence[float]) -> torch.Tensor:
    g = torch.as_tensor([10.0 ** (d / 20.0) for d in gain_db], dtype=x.dtype, device=x.device)
    return x * g[:, None, None]


def add_noise(x: torch.Tensor, snr_db: Sequence[float], seeds: Sequence[int]) -> torch.Tensor:
    """White Gaussian noise, independent per channel, at `snr_db` below the item's RMS.

    Noise is drawn on the CPU by numpy from each item's seed, so every device and batch
    layout gets the same samples.
    """
    shape = x.shape[1:]
    noise = torch.stack([torch.from_numpy(np.random.default_rng(s).standard_normal(shape, dtype=np.float32))
                         for s in seeds])
    noise = noise.to(device=x.device, dtype=x.dtype)
    level = rms(x) / rms(noise).clamp_min(1e-12) * torch.tensor([10.0 ** (-s / 20.0) for s in snr_db],
                                                                  dtype=torch.float64)
    return x + noise * level.to(device=x.device, dtype=x.dtype)[:, None, None]


def shift(x: torch.Tensor, samples: Sequence[int]) -> torch.Tensor:
    """Delay (positive) or advance (negative) each item, zero-filled, length kept."""
    return torch.stack([place(item, int(s), x.shape[-1]) for item, s in zip(x, samples)])


def speed(x: torch.Tensor, factors: Sequence[float]) -> torch.Tensor:
    """Play each item `factor` times faster (pitch moves with it), band-limited, length kept.

    Resampling is by FFT (spectrum cut or zero-padded) after padding the clip with a
    quarter of its length of zeros, so the circular wrap falls in silence; the result
    is cut or zero-padded at the end to T samples. The top `SPEED_TAPER` of the band kept
    rolls off on a raised cosine: a brick-wall cut rang for the whole clip, a burst leaving
    a floor at -58 dB of its peak a second away; with the roll-off that floor is below -110 dB.
    """
    n = x.shape[-1]
    pad = n // 4
    out = []
    for item, f in zip(x, factors):
        total = n + pad
        m = max(1, int(round(total / float(f))))
        spec = torch.fft.rfft(torch.nn.functional.pad(item, (0, pad)), dim=-1)
        bins = m // 2 + 1
        keep = min(bins, spec.shape[-1])
        width = int(keep * SPEED_TAPER)
        roll = 0.5 + 0.5 * torch.cos(torch.linspace(0.0, math.pi, width, dtype=torch.float64, device=x.device))
        spec = torch.cat([spec[..., :keep - width], spec[..., keep - width:keep] * roll.to(spec.real.dtype)], dim=-1)
        spec = torch.nn.functional.pad(spec, (0, bins - keep))
        y = torch.fft.irfft(spec, n=m, dim=-1) * (m / total)
        out.append(place(y, 0, n))
    return torch.stack(out)


def channel_swap(x: torch.Tensor, sources: Sequence[Sequence[int]], signs: Sequence[Sequence[float]]) -> torch.Tensor:
    """out[b, i] = signs[b][i] * x[b, sources[b][i]]: exact (signed permutations only)."""
    idx = torch.as_tensor(sources, device=x.device)
    sgn = torch.as_tensor(signs, dtype=x.dtype, device=x.device)
    return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[-1])) * sgn[:, :, None]


def direct_path_index(rir: np.ndarray) -> int:
    """Sample of the strongest peak over channels: the direct path of a simulated RIR."""
    return int(np.abs(np.asarray(rir)).max(axis=0).argmax())


def convolve_aligned(x: torch.Tensor, rirs: Sequence[torch.Tensor], onsets: Sequence[int]) -> torch.Tensor:
    """Each item convolved with its RIR (Cr, L), channel by channel, direct path at sample 0.

    A mono item is convolved with every RIR channel (multichannel out, never mixed down);
    otherwise the item must have Cr channels. Output (B, Cr, T): samples before the direct
    path are dropped, so the wet signal lines up with the dry one.
    """
    n = x.shape[-1]
    channels = {int(r.shape[0]) for r in rirs}
    if len(channels) != 1:
        raise ValueError(f"RIRs in one batch must have one channel count; got {sorted(channels)}")
    cr = channels.pop()
    if x.shape[1] not in (1, cr):
        raise ValueError(f"reverb needs mono audio or audio with the RIR's {cr} channels; got {x.shape[1]}")
    # one item at a time, its FFT size from its own RIR: a transform of several stacked items takes
    # another arithmetic path (outputs differed by 9e-8 once two items shared an FFT size), and an
    # item's output must not depend on the rest of its batch
    out = x.new_empty((x.shape[0], cr, n))
    for b, rir in enumerate(rirs):
        nfft = 1 << math.ceil(math.log2(n + int(rir.shape[-1]) - 1))
        h = rir.to(device=x.device, dtype=x.dtype)
        y = torch.fft.irfft(torch.fft.rfft(x[b], nfft) * torch.fft.rfft(h, nfft), nfft)
        out[b] = y[:, int(onsets[b]):int(onsets[b]) + n]
    return out
