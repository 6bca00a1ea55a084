"""Backends behind `simulate`: pyroomacoustics agreement, registry, gpuRIR guidance, devices."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from simulation import Room, create_backend, custom, image_source_rir, list_backends, register_backend, simulate, tetra_mic

pytest.importorskip("pyroomacoustics")


@pytest.mark.parametrize("seed,fs,fdl,order", [(0, 16000, 129, 6), (1, 24000, 193, 10), (2, 24000, 193, 3), (3, 16000, 129, 15)])
def test_matches_pyroomacoustics(seed: int, fs: int, fdl: int, order: int) -> None:
    rng = np.random.default_rng(seed)
    dims = rng.uniform(3.0, 8.0, 3)
    room = Room(dims=tuple(dims), beta=tuple(rng.uniform(0.5, 0.95, 6)))
    src = rng.uniform(0.5, dims - 0.5, (2, 3))
    array = tetra_mic(rng.uniform(0.5, dims - 0.5))
    kwargs = dict(fs=fs, nsample=int(0.15 * fs), order=order, dtype=torch.float64)
    ours = simulate(room, src, array, **kwargs)
    theirs = simulate(room, src, array, backend="pyroomacoustics", frac_delay_length=fdl, **kwargs)
    assert ours.shape == theirs.shape == (1, 2, 4, kwargs["nsample"])
    err = (torch.linalg.norm(ours - theirs) / torch.linalg.norm(ours)).item()
    assert err <= 5e-3, err


def test_pyroomacoustics_rejects_what_it_cannot_model() -> None:
    room = Room(dims=(5.0, 4.0, 3.0), beta=(0.8,) * 6, air_absorption=True)
    with pytest.raises(ValueError, match="broadband rooms and omni capsules"):
        simulate(room, [[1.0, 1.0, 1.0]], custom([[3.0, 2.0, 1.0]]), fs=16000, nsample=100, order=1,
                 backend="pyroomacoustics")
    with pytest.raises(ValueError, match="mode must be 'ism'"):
        simulate(Room(dims=(5.0, 4.0, 3.0), beta=(0.8,) * 6), [[1.0, 1.0, 1.0]], custom([[3.0, 2.0, 1.0]]),
                 fs=16000, nsample=2000, mode="hybrid", backend="pyroomacoustics")


@pytest.mark.skipif(importlib.util.find_spec("gpuRIR") is not None, reason="gpuRIR installed")
def test_gpurir_missing_says_how_to_install() -> None:
    with pytest.raises(ImportError, match="github.com/DavidDiazGuerra/gpuRIR"):
        simulate(Room(dims=(5.0, 4.0, 3.0), beta=(0.8,) * 6), [[1.0, 1.0, 1.0]], custom([[3.0, 2.0, 1.0]]),
                 fs=16000, nsample=100, backend="gpurir")


def test_registry() -> None:
    assert {"torch", "pyroomacoustics", "gpurir"} <= set(list_backends())
    with pytest.raises(ValueError, match="already registered"):
        register_backend("torch")(object)
    with pytest.raises(ValueError, match="chunk_size must be"):
        create_backend("torch", chunk_size=0)
    assert create_backend("torch", chunk_size=None).chunk_size > 0  # None options fall back to defaults


def test_image_source_on_device(device: str) -> None:
    room = Room(dims=(5.0, 4.0, 3.0), beta=(0.9, 0.8, 0.85, 0.7, 0.6, 0.9))
    args = (room, [[1.0, 1.5, 1.2]], tetra_mic((3.0, 2.0, 1.5)))
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        out = image_source_rir(*args, fs=16000, nsample=2000, dtype=dtype, device=device)
        ref = image_source_rir(*args, fs=16000, nsample=2000, dtype=torch.float64)
        assert out.device.type == device and out.dtype == dtype
        assert (torch.linalg.norm(out.cpu().double() - ref) / torch.linalg.norm(ref)).item() < tol
