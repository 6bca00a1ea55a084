"""Hybrid RIRs: exact images up to a transition time, then a seeded diffuse tail.

The tail follows the statistics of the image lattice itself. An image seen
from the receiver in unit direction u at distance r = c t has hit the walls of
axis a about |u_a| r / L_a times, half on each, so its amplitude carries
att(u, r) = exp(r / 2 * sum_a |u_a| (ln beta_a0 + ln beta_a1) / L_a) times air
absorption. Images arrive at 4 pi r^2 (c / fs) / V per sample with amplitude
D(u) att / (4 pi r), D the receiver directivity, so per sample the RIR has
  mean     (c / fs) r / V * <D att>          (all reflections are positive: a
                                               slowly varying low-frequency trend)
  variance (c / fs) / (4 pi V) * <D^2 att^2>
with <.> the average over directions. This captures the non-exponential decay
of rooms with uneven absorption and the positive trend that dominates the late
energy of an unfiltered image-source RIR, both of which Sabine or Eyring times
miss. The variance is scaled per channel and band to fit the image-source
energy just before the transition and carried by Gaussian noise drawn from
`Room.seed`, band-split like the images, so a room replays bit-exact; the
mean joins the lowest band. Channels get independent noise: the inter-capsule
coherence of the diffuse field is not modelled.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import MicArray, fibonacci_sphere
from .bands import band_weights
from .ism import early_bands, next_fast_len
from .rooms import Room

__all__ = ["default_transition", "hybrid_rir", "lattice_moments"]

_DIRECTIONS = 512
_STEP_S = 0.002  # seconds between evaluations of the decay model (interpolated in between)
_GROUP_SAMPLES = 1 << 24  # sources x capsules x bands x samples of early RIRs held at once


def default_transition(room: Room, sources: np.ndarray, array: MicArray, fs: float, taps: int) -> float:
    """Transition time in s: a quarter of the slowest Sabine time (~15 dB of decay), at least
    40 ms and at least the latest direct path plus three kernels."""
    rts = [room.rt60("sabine")]
    if room.uses_bands:
        rts += [Room(dims=room.dims, beta=tuple(row[b] for row in room.band_reflection()), temperature=room.temperature).rt60()
                for b in range(len(room.band_centers))]
    rt = max(r for r in rts if math.isfinite(r)) if any(math.isfinite(r) for r in rts) else 1.0
    direct = float(np.linalg.norm(sources[:, None] - np.asarray(array.positions)[None], axis=-1).max()) / room.c
    return max(0.25 * rt, 0.04, direct + 3.0 * taps / fs)


def lattice_moments(room: Room, array: MicArray, fs: float, nsample: int,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected image-source RIR per sample: mean (M, nsample) and variance (M, B, nsample), float64."""
    u = torch.as_tensor(fibonacci_sphere(_DIRECTIONS), device=device)  # (U, 3)
    beta = torch.tensor(room.band_reflection() if room.uses_bands else [[b] for b in room.beta],
                        dtype=torch.float64, device=device).clamp_min(1e-30)  # (6, B)
    lengths = torch.tensor(room.dims, dtype=torch.float64, device=device)
    rate = beta.log().view(3, 2, -1).sum(dim=1) / lengths[:, None]  # (3, B): log energy per metre along each axis
    air = torch.tensor(room.air_attenuation() if room.air_absorption else [0.0] * rate.shape[1],
                       dtype=torch.float64, device=device)
    slope = (u.abs() @ rate - air).T  # (B, U): d log(energy) / d r
    look = torch.tensor(array.orientations, dtype=torch.float64, device=device)
    pattern = torch.tensor(array.patterns, dtype=torch.float64, device=device)
    gain = pattern[:, None] + (1.0 - pattern[:, None]) * (look @ u.T)  # (M, U)
    per_sample = room.c / fs
    step = max(1, round(_STEP_S * fs))
    metres = torch.arange(0, nsample + step, step, dtype=torch.float64, device=device) * per_sample  # (K,)
    energy = torch.exp(slope[:, None, :] * metres[None, :, None])  # (B, K, U)
    amplitude = torch.exp(0.5 * slope[0, None, :] * metres[:, None])  # (K, U), lowest band
    mean = per_sample * metres / room.volume * (amplitude @ gain.T).T / len(u)  # (M, K)
    var = torch.einsum("mu,bku->mbk", gain * gain, energy) * (per_sample / (4.0 * math.pi * room.volume * len(u)))
    log_var = var.clamp_min(1e-300).log()  # interpolated in the log domain: the decay is close to exponential
    t = torch.arange(nsample, dtype=torch.float64, device=device) / step
    lo = t.floor().long()
    w = t - lo
    return mean[..., lo] * (1.0 - w) + mean[..., lo + 1] * w, (log_var[..., lo] * (1.0 - w) + log_var[..., lo + 1] * w).exp()


def hybrid_rir(room: Room, sources: np.ndarray, array: MicArray, *, fs: float, nsample: int, transition: float,
               order: int, taps: int, terms: int, dtype: torch.dtype, device: torch.device,
               chunk_size: int) -> torch.Tensor:
    """(S, M, nsample): images arriving before `transition` s, diffuse tail after it.

    Inputs are assumed validated. The level of the tail of each (source, capsule,
    band) is fitted on [max(transition / 2, direct + taps), transition - taps / 2).
    """
    split = int(round(transition * fs))
    if split >= nsample:
        return early_bands(room, sources, array, fs=fs, nsample=nsample, limit=split, order=order, taps=taps,
                           terms=terms, dtype=dtype, device=device, chunk_size=chunk_size).sum(dim=2)
    mean, var = lattice_moments(room, array, fs, nsample, device)  # (M, N), (M, B, N)
    n_bands = var.shape[1]
    direct = np.linalg.norm(sources[:, None] - np.asarray(array.positions)[None], axis=-1) / room.c * fs
    starts = torch.as_tensor(np.maximum(split // 2, np.ceil(direct) + taps).astype(np.int64), device=device)  # (S, M)
    stop = split - taps // 2
    time = torch.arange(split, device=device)
    band_noise = _band_splitter(room, fs, nsample, n_bands, device)
    generator = torch.Generator().manual_seed(room.seed)
    trend = torch.zeros_like(var)
    trend[:, 0] = mean  # the positive trend lives at the lowest frequencies
    out = []
    group = max(1, _GROUP_SAMPLES // (len(array) * n_bands * nsample))
    for first in range(0, len(sources), group):  # sources at once (one GPU pass), in groups of bounded memory
        sel = slice(first, first + group)
        early = early_bands(room, sources[sel], array, fs=fs, nsample=nsample, limit=split, order=order, taps=taps,
                            terms=terms, dtype=dtype, device=device, chunk_size=chunk_size)  # (G, M, B, N)
        inside = ((time >= starts[sel, :, None]) & (time < stop))[:, :, None, :]  # (G, M, 1, split)
        early_energy = ((early[..., :split].double() - trend[..., :split]) ** 2 * inside).sum(-1)  # (G, M, B)
        model_energy = (var[..., :split] * inside).sum(-1)
        level = torch.where(model_energy > 0, early_energy / model_energy.clamp_min(1e-300), 0.0)
        spread = (level[..., None] * var[..., split:]).sqrt()  # (G, M, B, N - split)
        # one draw per source in turn from the room's generator: a source's noise does not depend on the grouping
        noise = torch.stack([torch.randn(len(array), nsample, generator=generator, dtype=dtype)
                             for _ in range(early.shape[0])]).to(device)
        tail = (trend[..., split:] + spread * band_noise(noise.double())[..., split:]).sum(dim=-2)
        rir = early.sum(dim=2)
        rir[..., split:] += tail.to(dtype)
        out.append(rir)
    return torch.cat(out)


def _band_splitter(room: Room, fs: float, nsample: int, n_bands: int, device: torch.device):
    """Function mapping white noise (..., N) to unit-power band noises (..., B, N)."""
    if n_bands == 1:
        return lambda noise: noise[..., None, :]
    n_fft = next_fast_len(nsample)
    weights = band_weights(room.band_centers, n_fft, fs, torch.float64, device)  # (B, F)
    bins = torch.full((weights.shape[1],), 2.0, dtype=torch.float64, device=device)
    bins[0] = 1.0
    if n_fft % 2 == 0:
        bins[-1] = 1.0
    power = (weights**2 * bins).sum(-1) / n_fft  # share of white-noise power in each band
    gains = weights / power.sqrt()[:, None]
    return lambda noise: torch.fft.irfft(torch.fft.rfft(noise, n=n_fft)[..., None, :] * gains, n=n_fft)[..., :nsample]
