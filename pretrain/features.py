"""Model inputs: Kaldi log-mel filterbanks (SSAST and BEATs conventions), SELD features, augmentation.

`fbank` reimplements Kaldi's `compute-fbank-feats` (as torchaudio's `compliance.kaldi.fbank`,
which roomtone cannot use) in batched torch, on any device: 25 ms frames every 10 ms
(`snip_edges`), DC removal, pre-emphasis 0.97, povey or hanning window, 512-point power
spectrum, triangular HTK-mel banks from 20 Hz to Nyquist, log with a float32-epsilon floor.
A `FbankPreset` adds one model's conventions around it (waveform scaling and mean removal,
padding to a frame count, mean/std normalisation, patch order); tests pin agreement with
`kaldi_native_fbank`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from catalog.errors import RoomtoneError

__all__ = ["FbankPreset", "PRESETS", "kaldi_fbank", "fbank", "seld_features", "normalize_seld", "spec_augment",
           "mixup"]

_EPS = torch.finfo(torch.float32).eps  # Kaldi's log floor
# On a CPU, clips go through the features a few at a time, about 2048 frames (20 s of mono
# audio, 5 s of FOA): a batch's frames, spectra and powers then stay in cache. 16 ten-second
# clips at once took twice the time per clip for fbank, 1.5x for 5 s SELD clips. A GPU takes
# the batch whole. Each clip's features are the same either way, to the bit.
_CPU_CHUNK_FRAMES = 2048


def _rows_at_once(x: Tensor, frames_per_row: int) -> int:
    return x.shape[0] if x.device.type != "cpu" else max(1, _CPU_CHUNK_FRAMES // frames_per_row)


@dataclass(frozen=True)
class FbankPreset:
    """One model's input convention around the Kaldi filterbank.

    `scale` multiplies the waveform (BEATs feeds int16-range audio); `remove_mean` subtracts
    the waveform mean first (SSAST); `target_frames` pads (with zeros, before normalising,
    as SSAST does) or cuts to a fixed length, None keeps every frame; the output is
    `(x - mean) / (2 * std)`. `patch_order` records how the model tokenises (B, T, F):
    "freq_major" (SSAST: token = f * time_patches + t) or "time_major" (BEATs: t * 8 + f).
    """

    name: str
    sample_rate: int = 16000
    num_mel_bins: int = 128
    window: Literal["povey", "hanning"] = "povey"
    scale: float = 1.0
    remove_mean: bool = False
    target_frames: int | None = None
    mean: float = 0.0
    std: float = 0.5
    patch_order: Literal["freq_major", "time_major"] = "freq_major"

    def with_(self, **changes) -> FbankPreset:
        """A copy with some fields changed, e.g. `PRESETS["ssast"].with_(target_frames=256)`."""
        return replace(self, **changes)


PRESETS: dict[str, FbankPreset] = {
    "ssast": FbankPreset(
        "ssast", window="hanning", remove_mean=True, target_frames=1024,
        mean=-4.2677393, std=4.5689974, patch_order="freq_major",
    ),
    "beats": FbankPreset(
        "beats", window="povey", scale=2.0**15, mean=15.41663, std=6.55582, patch_order="time_major",
    ),
}


def _mel(f: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def _mel_banks(num_bins: int, n_fft: int, sample_rate: float, low: float, high: float) -> Tensor:
    """Kaldi's triangular banks (num_bins, n_fft // 2 + 1), linear in HTK mel; Nyquist column zero."""
    high = sample_rate / 2 + high if high <= 0 else high
    mel_low, mel_high = _mel(torch.tensor(low, dtype=torch.float64)), _mel(torch.tensor(high, dtype=torch.float64))
    delta = (mel_high - mel_low) / (num_bins + 1)
    i = torch.arange(num_bins, dtype=torch.float64)[:, None]
    left, center, right = mel_low + i * delta, mel_low + (i + 1) * delta, mel_low + (i + 2) * delta
    mel = _mel(sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float64))[None]
    w = torch.clamp(torch.minimum((mel - left) / (center - left), (right - mel) / (right - center)), min=0)
    return F.pad(w, (0, 1))


def _window(kind: str, length: int) -> Tensor:
    hann = torch.hann_window(length, periodic=False, dtype=torch.float64)
    return hann.pow(0.85) if kind == "povey" else hann


def _mel_blocks(num_bins: int, n_fft: int, sample_rate: float, low: float, high: float) -> tuple:
    """The mel matrix as blocks of 16 filters, each with the span of FFT bins it touches:
    ((first_filter, lo, hi, (hi - lo, filters) weights), ...). The triangles are narrow, so
    the blocks hold 3x fewer weights than the dense matrix, and the product runs 2x faster."""
    banks = _mel_banks(num_bins, n_fft, sample_rate, low, high)
    blocks = []
    for first in range(0, num_bins, 16):
        block = banks[first:first + 16]
        used = block.sum(0).nonzero().flatten()
        lo, hi = (int(used.min()), int(used.max()) + 1) if len(used) else (0, 1)
        blocks.append((first, lo, hi, block[:, lo:hi].T.contiguous()))
    return tuple(blocks)


@functools.lru_cache(maxsize=16)
def _fbank_constants(num_bins: int, n_fft: int, size: int, sample_rate: float, low: float, high: float,
                     window: str, scale: float, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, tuple]:
    """The window (times `scale`, zero-padded to the FFT size) and the mel blocks, on `device` in
    `dtype`, made once: copied to a GPU on every call, each of the nine copies made the host
    wait for the device."""
    taper = F.pad(_window(window, size) * scale, (0, n_fft - size)).to(device, dtype)
    blocks = tuple((first, lo, hi, block.to(device, dtype))
                   for first, lo, hi, block in _mel_blocks(num_bins, n_fft, sample_rate, low, high))
    return taper, blocks


def kaldi_fbank(
    wave: Tensor, sample_rate: int, *, num_mel_bins: int = 128, window: str = "povey",
    frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, preemphasis: float = 0.97,
    low_freq: float = 20.0, high_freq: float = 0.0, scale: float = 1.0,
) -> Tensor:
    """Kaldi log-mel filterbank of (..., T) audio -> (..., frames, num_mel_bins), dither 0.

    Runs in the input's dtype (float32 unless float64 is given) on its device. `scale`
    multiplies the waveform (applied with the window, which saves a pass over the audio).

    Kaldi works frame by frame: subtract the frame's mean, pre-emphasise (x[i] - k x[i-1],
    and x[0] - k x[0]), window, FFT. Here the signal is pre-emphasised once, whole: inside
    a frame that differs from Kaldi's only at i = 0, where both windows are 0, and the mean
    m comes out as the constant m (1 - k). Frames are cut 512 samples long, their tail
    zeroed by the window, so the FFT needs no padding copy. Every row is computed on its own,
    so a clip's features do not depend on the batch it comes in.
    """
    if wave.ndim < 1 or not wave.is_floating_point():
        raise ValueError(f"kaldi_fbank wants a float waveform (..., samples), got {tuple(wave.shape)} {wave.dtype}")
    size, shift = int(sample_rate * frame_length_ms / 1000), int(sample_rate * frame_shift_ms / 1000)
    if wave.shape[-1] < size:
        raise ValueError(f"kaldi_fbank needs at least {size} samples ({frame_length_ms} ms), got {wave.shape[-1]}")
    lead = wave.shape[:-1]
    x = wave.reshape(-1, wave.shape[-1])
    frames, n_fft = 1 + (x.shape[-1] - size) // shift, 1 << (size - 1).bit_length()
    rows = _rows_at_once(x, frames)
    taper, banks = _fbank_constants(num_mel_bins, n_fft, size, float(sample_rate), float(low_freq),
                                    float(high_freq), window, float(scale), x.device, x.dtype)
    out = x.new_empty(x.shape[0], frames, num_mel_bins)
    for i in range(0, x.shape[0], rows):
        _fbank_rows(x[i:i + rows], size, shift, preemphasis, taper, banks, out[i:i + rows])
    return out.reshape(*lead, frames, num_mel_bins)


def _fbank_rows(x: Tensor, size: int, shift: int, preemphasis: float, taper: Tensor, banks: tuple,
                out: Tensor) -> None:
    """`kaldi_fbank` of (rows, T) audio into ``out`` (rows, frames, num_mel_bins); ``taper`` is
    the window times the scale, zero-padded to the FFT size."""
    mean = x.unfold(-1, size, shift).mean(-1)  # snip_edges: whole frames only
    n_fft, used = taper.shape[0], (mean.shape[-1] - 1) * shift + size
    emphasised = x.new_empty(x.shape[0], used + n_fft - size)
    emphasised[:, used:] = 0.0  # the frames' tails, which the window zeroes anyway
    emphasised[:, 0] = x[:, 0]
    torch.sub(x[:, 1:used], x[:, :used - 1], alpha=preemphasis, out=emphasised[:, 1:used])
    frames = emphasised.unfold(-1, n_fft, shift) - (mean * (1 - preemphasis))[..., None]
    frames *= taper
    power = torch.view_as_real(torch.fft.rfft(frames)).square_()
    power = power[..., 0] + power[..., 1]
    for first, lo, hi, block in banks:
        out[..., first:first + block.shape[1]] = power[..., lo:hi] @ block
    out.clamp_(min=_EPS).log_()


def _preset(preset: str | FbankPreset) -> FbankPreset:
    if isinstance(preset, FbankPreset):
        return preset
    if preset not in PRESETS:
        raise RoomtoneError(f"unknown fbank preset {preset!r}", f"use one of {sorted(PRESETS)} or a FbankPreset")
    return PRESETS[preset]


def fbank(wave: Tensor, sample_rate: int, preset: str | FbankPreset = "ssast") -> Tensor:
    """Normalised model input (B, frames, mels) from (B, T) float audio in [-1, 1].

    Batched and device-agnostic; frames are padded or cut to the preset's `target_frames`.
    """
    p = _preset(preset)
    if wave.ndim != 2:
        raise RoomtoneError(f"fbank wants a (batch, samples) waveform, got shape {tuple(wave.shape)}",
                            "mix to mono and stack clips into one (B, T) tensor")
    if sample_rate != p.sample_rate:
        raise RoomtoneError(f"preset {p.name!r} expects {p.sample_rate} Hz audio, got {sample_rate} Hz",
                            "resample the audio (or use a preset with that rate)")
    x = wave.float()
    if p.remove_mean:
        x = x - x.mean(-1, keepdim=True)
    feats = kaldi_fbank(x, sample_rate, num_mel_bins=p.num_mel_bins, window=p.window, scale=p.scale)
    feats = feats.sub_(p.mean).div_(2 * p.std)
    if p.target_frames is not None:
        n = feats.shape[1]  # padding frames hold what a zero feature normalises to
        feats = (F.pad(feats, (0, 0, 0, p.target_frames - n), value=-p.mean / (2 * p.std)) if n < p.target_frames
                 else feats[:, : p.target_frames])
    return feats


def _slaney_norm_mel_banks(n_mels: int, n_fft: int, sample_rate: int, f_min: float) -> Tensor:
    """HTK-mel triangles with Slaney area normalisation (n_mels, n_fft // 2 + 1), as PSELDNets'
    torchaudio `MelScale(norm="slaney")` (whose default scale is HTK)."""
    mels = torch.linspace(float(_mel(torch.tensor(float(f_min)))), float(_mel(torch.tensor(sample_rate / 2))),
                          n_mels + 2, dtype=torch.float64)
    hz = 700 * torch.expm1(mels / 1127)
    freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    lower = (freqs[None] - hz[:-2, None]) / (hz[1:-1] - hz[:-2])[:, None]
    upper = (hz[2:, None] - freqs[None]) / (hz[2:] - hz[1:-1])[:, None]
    return torch.clamp(torch.minimum(lower, upper), min=0) * (2.0 / (hz[2:] - hz[:-2]))[:, None]


def seld_features(wave: Tensor, sample_rate: int, *, n_fft: int = 1024, hop: int = 240, n_mels: int = 64,
                  f_min: float = 20.0) -> Tensor:
    """PSELDNets input (B, 7, frames, n_mels) from FOA audio (B, 4, T) in W, Y, Z, X order.

    Channels 0-3: log-mel power of W, Y, Z, X (dB, 1e-10 floor, no top_db); 4-6: the active
    intensity Re(conj(W) * (Y, Z, X)) per STFT bin, scaled to unit length per bin, then
    projected onto the same mel banks (HTK scale, Slaney norm, 20 Hz to Nyquist). Periodic
    Hann window, centred reflect-padded STFT; at 24 kHz the defaults give 10 ms frames.
    """
    if wave.ndim != 3 or wave.shape[1] != 4:
        raise RoomtoneError(f"seld_features wants FOA audio (batch, 4, samples), got shape {tuple(wave.shape)}",
                            "pass first-order ambisonics in W, Y, Z, X order")
    b, _, t = wave.shape
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    banks = _slaney_norm_mel_banks(n_mels, n_fft, sample_rate, f_min).to(wave.dtype).to(wave.device)
    frames = t // hop + 1  # centred frames
    rows = _rows_at_once(wave, 4 * frames)
    out = wave.new_empty(b, 7, frames, n_mels)
    for i in range(0, b, rows):
        _seld_rows(wave[i:i + rows], n_fft, hop, window, banks, out[i:i + rows])
    return out


def _seld_rows(wave: Tensor, n_fft: int, hop: int, window: Tensor, banks: Tensor, out: Tensor) -> None:
    """`seld_features` of (rows, 4, T) FOA audio into ``out`` (rows, 7, frames, n_mels)."""
    b, _, t = wave.shape
    spec = torch.stft(wave.reshape(b * 4, t), n_fft, hop, window=window, center=True, pad_mode="reflect",
                      return_complex=True).reshape(b, 4, n_fft // 2 + 1, -1).transpose(2, 3)  # (B, 4, frames, bins)
    # written out over real and imaginary parts: torch's norm over the 3 channels and sum over
    # (re, im) of these strided views took two thirds of the time (26 of 45 ms for 5 s of FOA)
    re, im = spec.real, spec.imag
    logmel = 10 * torch.log10(torch.clamp((re.square() + im.square()) @ banks.T, min=1e-10))
    intensity = re[:, :1] * re[:, 1:] + im[:, :1] * im[:, 1:]  # Re(conj(W) * (Y, Z, X))
    unit = intensity / (intensity.square().sum(1, keepdim=True).sqrt_() + torch.finfo(torch.float32).eps)
    torch.cat([logmel, unit @ banks.T], 1, out=out)


# `seld_features` on unit scale, as SSAST's fbank constants do for its input: dB log-mels sit
# around -35 +- 20 on FOA scenes, intensity vectors on Slaney-normalised banks around +-0.0125.
# Unscaled, the patch embedding sees only the log-mels: seld-tiny on the learning test's scenes
# settled on predicting silence (SELD score 1.0, F 0 after 60, 200 and 300 steps); scaled, it
# reaches 0.95 with F 0.11 and localisation recall 0.15 in 150. Zero is then the mean, which
# SpecAugment's stripes fill with.
SELD_LOGMEL_MEAN_DB, SELD_LOGMEL_STD_DB, SELD_INTENSITY_STD = -35.0, 20.0, 0.0125


def normalize_seld(features: Tensor) -> Tensor:
    """`seld_features` (B, 7, frames, mels) brought to unit scale: what SELD models take."""
    return torch.cat([(features[:, :4] - SELD_LOGMEL_MEAN_DB) / SELD_LOGMEL_STD_DB,
                      features[:, 4:] / SELD_INTENSITY_STD], 1)


def spec_augment(x: Tensor, generator: torch.Generator, *, time_masks: int = 2, time_width: int = 64,
                 freq_masks: int = 2, freq_width: int = 8) -> Tensor:
    """Zero random time and frequency stripes of (B, [C,] frames, mels), per example.

    PANNs' setting by default (two stripes of up to 64 frames, two of up to 8 bins). Masks
    are drawn on the generator's device (CPU generators give device-independent draws).
    """
    *lead, frames, mels = x.shape
    b = lead[0]
    gdev = generator.device
    keep = torch.ones(b, frames, mels, dtype=torch.bool, device=x.device)
    for n, width, size, axis in ((time_masks, time_width, frames, 1), (freq_masks, freq_width, mels, 2)):
        for _ in range(n):
            w = torch.randint(0, width + 1, (b,), generator=generator, device=gdev)
            start = (torch.rand(b, generator=generator, device=gdev) * (size - w + 1).clamp(min=1)).long()
            # the stripe bounds (2 x b numbers) travel, not the mask: no host wait on a GPU
            start, stop = start.to(x.device, non_blocking=True), (start + w).to(x.device, non_blocking=True)
            pos = torch.arange(size, device=x.device)[None]
            hit = (pos >= start[:, None]) & (pos < stop[:, None])
            keep &= ~(hit[:, :, None] if axis == 1 else hit[:, None, :])
    return x * (keep if x.ndim == 3 else keep[:, None]).to(x.dtype)


def mixup(x: Tensor, y: Tensor, generator: torch.Generator, *, alpha: float = 1.0) -> tuple[Tensor, Tensor]:
    """Mix each example with a shuffled partner: lam ~ Beta(alpha, alpha) per example.

    Returns (lam * x + (1 - lam) * x[perm], same for the targets y), as PANNs trains.
    """
    b = x.shape[0]
    perm = torch.randperm(b, generator=generator, device=generator.device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, b))  # Beta draws torch cannot seed

    def mix(t: Tensor) -> Tensor:
        t = t if t.is_floating_point() else t.float()
        w = lam.to(t.device, t.dtype, non_blocking=True).reshape(b, *[1] * (t.ndim - 1))
        return w * t + (1 - w) * t[perm.to(t.device, non_blocking=True)]

    return mix(x), mix(y)
