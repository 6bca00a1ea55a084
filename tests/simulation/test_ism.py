"""Image-source engine against geometry and against rir-generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simulation import Room, custom, image_source_rir
from simulation._kernel import windowed_sinc

rir_generator = pytest.importorskip("rir_generator")

C = 343.0
T_FOR_C = (C - 331.4) / 0.6  # temperature giving c = 343 m/s


def _direct_template(dist: np.ndarray, fs: float, n: int, taps: int) -> np.ndarray:
    """Analytic direct path: 1 / (4 pi d) times the kernel centred on d / c * fs."""
    tau = dist / C * fs
    t = np.arange(n)[None, :] - tau[:, None]
    kernel = np.where(np.abs(t) < taps / 2, windowed_sinc(t, taps), 0.0)
    return kernel / (4 * np.pi * dist[:, None])


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_direct_path_delay_and_amplitude(dtype: torch.dtype, tol: float, device: str) -> None:
    room = Room(dims=(7.0, 5.0, 3.0), beta=(0.0,) * 6, temperature=T_FOR_C)
    mics = np.array([[4.2, 3.3, 1.6], [4.25, 3.1, 1.7], [1.0, 1.0, 1.0]])
    src = np.array([1.3, 2.1, 1.4])
    fs, n = 16000, 800
    out = image_source_rir(room, src, custom(mics), fs=fs, nsample=n, order=0, dtype=dtype,
                           device=device)[0].double().cpu().numpy()
    dist = np.linalg.norm(mics - src, axis=1)
    expected = _direct_template(dist, fs, n, 128)
    assert np.abs(out - expected).max() / np.abs(expected).max() < tol
    # Delays estimated from the signal alone (least-squares fit of a * k(n - tau), refined on finer grids).
    for m in range(len(mics)):
        tau, step = float(np.argmax(np.abs(out[m]))), 0.5
        while step > 1e-5:
            grid = tau + step * np.linspace(-1, 1, 41)
            t = np.arange(n)[None, :] - grid[:, None]
            kernels = np.where(np.abs(t) < 64, windowed_sinc(t, 128), 0.0)
            tau, step = grid[np.argmax((kernels @ out[m]) ** 2 / (kernels**2).sum(axis=1))], step / 10
        true_tau = dist[m] / C * fs
        assert abs(tau - true_tau) < 1e-3
        peak = 1 / (4 * np.pi * dist[m]) * windowed_sinc(np.round(true_tau) - true_tau, 128)
        assert out[m, int(np.round(true_tau))] == pytest.approx(peak, rel=tol)


MIC_TYPES = {1.0: "omnidirectional", 0.75: "subcardioid", 0.5: "cardioid", 0.25: "hypercardioid", 0.0: "bidirectional"}
CASES = [(seed, order, fs) for seed, (order, fs) in enumerate(
    [(o, f) for o in (0, 1, 3, 6, -1) for f in (16000, 24000, 48000)] + [(2, 8000), (4, 8000), (-1, 8000), (5, 16000), (10, 16000), (-1, 24000)]
)]


@pytest.mark.parametrize("seed,order,fs", CASES)
def test_matches_rir_generator(seed: int, order: int, fs: int, device: str) -> None:
    rng = np.random.default_rng(seed)
    dims = rng.uniform(2.5, 8.0, 3)
    beta = rng.uniform(0.2, 0.95, 6)
    src = rng.uniform(0.3, dims - 0.3)
    mics = rng.uniform(0.3, dims - 0.3, (int(rng.integers(1, 4)), 3))
    pattern = float(rng.choice(list(MIC_TYPES)))
    az, el = rng.uniform(-np.pi, np.pi), rng.uniform(-1.2, 1.2)
    look = [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
    n = int(0.06 * fs) if order == -1 else int(0.12 * fs)
    ref = rir_generator.generate(c=C, fs=fs, r=mics, s=src, L=dims, beta=beta, nsample=n, order=order,
                                 mtype=getattr(rir_generator.mtype, MIC_TYPES[pattern]), orientation=[az, el],
                                 hp_filter=False).T
    room = Room(dims=tuple(dims), beta=tuple(beta), temperature=T_FOR_C)
    array = custom(mics, pattern, [look] * len(mics))
    for dtype, tol in ((torch.float64, 1e-6), (torch.float32, 1e-4)):
        out = image_source_rir(room, src, array, fs=fs, nsample=n, order=order, dtype=dtype, device=device)[0]
        assert out.dtype == dtype and out.shape == (len(mics), n) and out.device.type == device
        err = np.linalg.norm(out.double().cpu().numpy() - ref) / np.linalg.norm(ref)
        assert err <= tol, (dtype, err)


def test_chunking_is_bit_identical() -> None:
    room = Room(dims=(5.0, 4.0, 3.0), beta=(0.9, 0.8, 0.85, 0.7, 0.6, 0.9))
    array = custom([[1.0, 1.0, 1.2], [3.0, 2.5, 1.5]])
    runs = [image_source_rir(room, [[2.0, 3.0, 1.0], [4.0, 1.0, 2.0]], array, fs=16000, nsample=2000, chunk_size=c)
            for c in (64, 1000, 1 << 20)]
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    assert torch.isfinite(runs[0]).all()
