"""RIR metrics on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulation import decay_time, direct_to_reverberant_ratio, energy_decay_curve


def _exponential(rt60: float, fs: int, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return np.random.default_rng(seed).standard_normal(len(t)) * 10 ** (-3 * t / rt60)


@pytest.mark.parametrize("rt60", [0.3, 1.0])
def test_decay_times_of_an_exponential(rt60: float) -> None:
    rir = _exponential(rt60, 16000, 1.5 * rt60)
    for method in ("t20", "t30", "edt"):
        assert decay_time(rir, 16000, method) == pytest.approx(rt60, rel=0.05)
    assert np.isnan(decay_time(np.zeros(100), 16000, "t30"))


def test_edc_shape_and_torch_input() -> None:
    rir = torch.from_numpy(np.stack([_exponential(0.5, 8000, 0.6, s) for s in range(3)])).reshape(3, 1, -1)
    edc = energy_decay_curve(rir)
    assert edc.shape == (3, 1, 4800) and np.allclose(edc[..., 0], 0.0)
    assert (np.diff(edc, axis=-1) <= 1e-9).all()
    assert decay_time(rir, 8000).shape == (3, 1)


def test_drr() -> None:
    rir = np.zeros(1000)
    rir[100] = 1.0
    rir[300:400] = 0.1  # reverberant energy 100 * 0.01 = 1 -> 0 dB
    assert direct_to_reverberant_ratio(rir, 8000) == pytest.approx(0.0, abs=1e-9)
    rir[300:400] = 0.01
    assert direct_to_reverberant_ratio(rir, 8000) == pytest.approx(20.0, abs=1e-9)
    with pytest.raises(ValueError, match="method must be one of"):
        decay_time(rir, 8000, "t10")
