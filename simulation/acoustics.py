"""Labels and room-acoustic figures computed from geometry or from RIRs.

Angles follow DCASE: azimuth counter-clockwise from +x in [-180, 180) degrees
(+90 is left), elevation up in [-90, 90] degrees. RIR metrics work on the last
axis of numpy arrays or torch tensors and return float64 numpy arrays shaped
like the leading axes.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

__all__ = ["direct_path_labels", "energy_decay_curve", "decay_time", "mid_decay_times", "octave_band",
           "direct_to_reverberant_ratio"]

MID_BANDS = (500.0, 1000.0)  # Hz: the octave bands ISO 3382-1 averages into a room's single T30 or EDT

_FITS = {"edt": (0.0, -10.0), "t20": (-5.0, -25.0), "t30": (-5.0, -35.0)}
_MAX_ITERATIONS = 20  # decay_time's correction for truncation: a T30 of an exponential converges in about five


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def direct_path_labels(sources: np.ndarray, receivers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(azimuth deg, elevation deg, distance m) of every source seen from every receiver point.

    sources (S, 3), receivers (R, 3) (e.g. array centres) -> three (S, R) arrays.
    """
    src = np.atleast_2d(np.asarray(sources, dtype=np.float64))
    rec = np.atleast_2d(np.asarray(receivers, dtype=np.float64))
    d = src[:, None, :] - rec[None, :, :]
    azimuth = np.degrees(np.arctan2(d[..., 1], d[..., 0]))
    azimuth = np.where(azimuth >= 180.0, azimuth - 360.0, azimuth)
    elevation = np.degrees(np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1])))
    return azimuth, elevation, np.linalg.norm(d, axis=-1)


def energy_decay_curve(rir: np.ndarray | torch.Tensor, fs: float | None = None,
                       rt60: float | np.ndarray | None = None) -> np.ndarray:
    """Schroeder backward integral in dB re its start (0 dB at t = 0), on the last axis.

    A cut-off RIR's curve plunges at its end, which biases every decay time fitted near
    the cut short. Given `fs` and `rt60` (s; a scalar or one per curve, NaN for none),
    the energy the RIR would still have had after its end is added: its last 50 ms,
    extrapolated to the end at that decay rate, continued as an exponential (ISO 3382-1's
    correction for truncation). An RIR that ends in silence gets nothing added.
    """
    energy = _as_numpy(rir) ** 2
    if rt60 is not None and fs is None:
        raise ValueError("give fs with rt60: the correction for truncation needs the sample rate")
    return _edc_db(energy, _backward_sum(energy), fs, rt60)


def _backward_sum(energy: np.ndarray) -> np.ndarray:
    return np.cumsum(energy[..., ::-1], axis=-1)[..., ::-1]


def _edc_db(energy: np.ndarray, remaining: np.ndarray, fs: float | None, rt60) -> np.ndarray:
    """The curve in dB from its backward sum, plus the truncated energy when `rt60` is given."""
    if rt60 is not None:
        remaining = remaining + _truncated_energy(energy, fs, np.broadcast_to(rt60, energy.shape[:-1]))[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(remaining / remaining[..., :1])


def _truncated_energy(energy: np.ndarray, fs: float, rt60: np.ndarray) -> np.ndarray:
    """Energy after the last sample of each curve if it kept decaying at `rt60` (0 where NaN)."""
    tail = max(1, min(energy.shape[-1], round(0.05 * fs)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate = np.where(np.isfinite(rt60) & (rt60 > 0), 6.0 * np.log(10.0) / (rt60 * fs), np.inf)  # per sample
        at_end = (energy[..., -tail:] * np.exp(-rate[..., None] * np.arange(tail - 1, -1, -1))).mean(axis=-1)
        after = at_end / np.expm1(rate)  # sum over n >= 1 of at_end * exp(-rate * n)
    return np.nan_to_num(after, nan=0.0, posinf=0.0)


def decay_time(rir: np.ndarray | torch.Tensor, fs: float, method: Literal["edt", "t20", "t30"] = "t30") -> np.ndarray:
    """Reverberation time in s from a least-squares line through the EDC.

    edt fits 0 to -10 dB, t20 -5 to -25 dB, t30 -5 to -35 dB; all are scaled to
    60 dB. The EDC is corrected for the RIR's truncation (see `energy_decay_curve`) at
    the time being fitted, iterated to a fixed point, so an RIR cut after -25 dB still
    gives an unbiased T30 of an exponential decay; where the corrected curve ends above
    the range's low end, the fit uses what it reaches. NaN where fewer than two samples
    fall in the range (silent RIR).
    """
    if method not in _FITS:
        raise ValueError(f"method must be one of {sorted(_FITS)}; got {method!r}")
    x = _as_numpy(rir)
    energy = x.reshape(-1, x.shape[-1]) ** 2
    remaining = _backward_sum(energy)  # once: each iteration only changes the energy added after the end
    t = np.arange(energy.shape[-1]) / fs
    plain = _edc_db(energy, remaining, None, None)
    fitted = _fit(plain, t, method)
    fallback = _fit(plain, t, "edt")  # where the uncorrected curve never reaches the method's range
    for _ in range(_MAX_ITERATIONS):
        refit = _fit(_edc_db(energy, remaining, fs, np.where(np.isfinite(fitted), fitted, fallback)), t, method)
        done = np.allclose(refit, fitted, rtol=1e-4, atol=0.0, equal_nan=True)
        fitted = refit
        if done:
            break
    return fitted.reshape(x.shape[:-1])


def octave_band(rir: np.ndarray | torch.Tensor, fs: float, center: float) -> np.ndarray:
    """The RIR filtered to the octave band around `center` Hz (a 6th-order Butterworth band-pass, near
    IEC 61260's octave filter), run forwards as a measurement's filter bank is."""
    from scipy.signal import butter, sosfilt

    if not 0 < center * 2**0.5 < fs / 2:
        raise ValueError(f"the {center:g} Hz octave band needs a sample rate above {2 * center * 2**0.5:g} Hz; "
                         f"got {fs:g}")
    sos = butter(3, [center / 2**0.5, center * 2**0.5], btype="bandpass", fs=fs, output="sos")
    return sosfilt(sos, _as_numpy(rir).astype(np.float64), axis=-1)


def mid_decay_times(rir: np.ndarray | torch.Tensor, fs: float, methods: Sequence[str] = ("t30",),
                    bands: tuple[float, ...] = MID_BANDS) -> dict[str, np.ndarray]:
    """`decay_time` by each of `methods` in the 500 Hz and 1 kHz octave bands, averaged: a room's
    single figure (ISO 3382-1). The bands are filtered once for every method.

    A broadband fit of an image-source RIR reads the slow decay of its DC trend (with positive
    reflection coefficients every image adds a positive pulse): 1.2-1.7 x the audible decay.
    """
    filtered = [octave_band(rir, fs, fc) for fc in bands]
    return {m: np.mean([decay_time(x, fs, m) for x in filtered], axis=0) for m in methods}


def _fit(edc: np.ndarray, t: np.ndarray, method: str) -> np.ndarray:
    """-60 dB over the slope of a line through each curve's samples in the method's range."""
    high, low = _FITS[method]
    out = np.full(len(edc), np.nan)
    for i, curve in enumerate(edc):
        sel = (curve <= high) & (curve >= low)
        if sel.sum() >= 2:
            out[i] = -60.0 / np.polyfit(t[sel], curve[sel], 1)[0]
    return out


def direct_to_reverberant_ratio(rir: np.ndarray | torch.Tensor, fs: float, window: float = 0.0025,
                                direct: np.ndarray | None = None) -> np.ndarray:
    """DRR in dB: energy within +-`window` s of the direct path over the energy after it.

    direct: direct-path arrival in samples per RIR (default: the largest absolute sample).
    """
    x = _as_numpy(rir)
    flat = x.reshape(-1, x.shape[-1])
    peaks = np.argmax(np.abs(flat), axis=-1) if direct is None else np.broadcast_to(np.asarray(direct), x.shape[:-1]).reshape(-1)
    half = int(round(window * fs))
    n = np.arange(flat.shape[-1])[None, :]
    near = np.abs(n - np.round(peaks)[:, None]) <= half
    late = n > np.round(peaks)[:, None] + half
    energy = flat**2
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10((energy * near).sum(-1) / (energy * late).sum(-1))).reshape(x.shape[:-1])
