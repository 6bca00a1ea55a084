"""Rooms, serialisation and rejection of bad input before any compute."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch

import simulation.ism
from simulation import Room, custom, linear, simulate, tetra_mic

ROOM = Room(dims=(5.0, 4.0, 3.0), beta=(0.8,) * 6)
ARRAY = tetra_mic((2.5, 2.0, 1.5))
SRC = [[1.0, 1.0, 1.0]]


def test_from_rt60_inverts_sabine_and_eyring() -> None:
    for method in ("sabine", "eyring"):
        room = Room.from_rt60((6.0, 5.0, 3.0), 0.5, method=method)
        assert room.rt60(method) == pytest.approx(0.5, rel=1e-12)
    assert Room.from_rt60((6.0, 5.0, 3.0), 0.5, temperature=30.0).c == pytest.approx(349.4)


def test_unreachable_rt60() -> None:
    with pytest.raises(ValueError, match=r"rt60=0.050 s is unreachable.*valid range is \[0\.\d+, inf\)"):
        Room.from_rt60((10.0, 10.0, 5.0), 0.05)
    with pytest.raises(ValueError, match="rt60 must be"):
        Room.from_rt60((10.0, 10.0, 5.0), -1.0, method="eyring")


def test_room_round_trip_and_absorption() -> None:
    room = Room(dims=(5.0, 4.0, 3.0), beta=(0.9, 0.8, 0.7, 0.6, 0.5, 0.4), band_beta=((0.5,) * 6,) * 6,
                air_absorption=True, seed=5)
    assert Room.from_dict(room.to_dict()) == room
    assert room.absorption[0] == pytest.approx(1 - 0.81)
    assert Room.from_absorption(room.dims, 0.19).beta[0] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="unknown fields"):
        Room.from_dict({**room.to_dict(), "colour": "red"})


@pytest.mark.parametrize("kwargs,field", [
    (dict(dims=(0.0, 4.0, 3.0), beta=(0.5,) * 6), "Room.dims"),
    (dict(dims=(5.0, -4.0, 3.0), beta=(0.5,) * 6), "Room.dims"),
    (dict(dims=(5.0, 4.0, 3.0), beta=(0.5,) * 5 + (1.2,)), r"Room.beta must lie in \[0, 1\]"),
    (dict(dims=(5.0, 4.0, 3.0), beta=(0.5,) * 5 + (-0.1,)), r"Room.beta must lie in \[0, 1\]"),
    (dict(dims=(5.0, 4.0, 3.0), beta=(0.5,) * 6, band_beta=((1.5,) * 6,) * 6), r"Room.band_beta\[x0\]"),
    (dict(dims=(5.0, 4.0, 3.0), beta=(0.5,) * 6, temperature=100.0), "Room.temperature"),
])
def test_bad_rooms(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Room(**kwargs)
    if "beta" in field:
        with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
            Room.from_absorption((5.0, 4.0, 3.0), 1.5)


@pytest.mark.parametrize("sources,array,kwargs,message", [
    ([[6.0, 1.0, 1.0]], ARRAY, {}, r"sources\[0\] = .* outside the room or on a wall: valid ranges"),
    ([[0.0, 1.0, 1.0]], ARRAY, {}, r"outside the room or on a wall"),
    (SRC, tetra_mic((4.99, 2.0, 1.5)), {}, r"arrays\[0\].positions\[0\].*outside the room"),
    ([[2.5, 2.0, 1.5]], custom([[2.5, 2.0, 1.5]]), {}, "coincides with array capsule 0"),
    (SRC, ARRAY, dict(fs=0), r"fs must be a sample rate in \[1000, 384000\] Hz"),
    (SRC, ARRAY, dict(fs=float("nan")), "fs must be"),
    (SRC, ARRAY, dict(nsample=0), r"nsample must be an integer in \[1, "),
    (SRC, ARRAY, dict(nsample=10.5), "nsample must be an integer"),
    (SRC, ARRAY, dict(nsample=None, duration=-1.0), r"duration must be a time in \(0, inf\) s"),
    (SRC, ARRAY, dict(order=-2), r"order must be an integer in \[-1, inf\)"),
    (SRC, ARRAY, dict(taps=7), r"taps must be an even integer"),
    (SRC, ARRAY, dict(mode="hybrid", transition=0.001), r"transition must be a time in \["),
    (SRC, ARRAY, dict(mode="fast"), "mode must be 'ism' or 'hybrid'"),
    (SRC, ARRAY, dict(backend="matlab"), "backend must be one of"),
    (SRC, ARRAY, dict(device="tpu"), "device must be"),
    (np.zeros((2, 1, 3)) + 1.0, ARRAY, {}, "sources has batch size 2; it must be 1 or"),
])
def test_bad_scenes_fail_before_compute(sources, array, kwargs: dict, message: str) -> None:
    options = dict(fs=16000, nsample=100)
    options.update(kwargs)
    rooms = [ROOM, ROOM, ROOM] if "batch size" in message else ROOM
    with mock.patch.object(simulation.ism, "_accumulate", side_effect=AssertionError("computed")):
        with pytest.raises(ValueError, match=message):
            simulate(rooms, sources, array, **options)


def test_coincident_capsules() -> None:
    with pytest.raises(ValueError, match=r"MicArray.positions: capsules 0 and 1 are coincident"):
        custom([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"MicArray.patterns must be 1 values in \[0, 1\]"):
        custom([[1.0, 1.0, 1.0]], 1.5)
    with pytest.raises(ValueError, match="pattern must be one of"):
        custom([[1.0, 1.0, 1.0]], "shotgun")


@pytest.mark.parametrize("coords", [[[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]], [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])
def test_custom_coordinates_of_another_shape_are_refused_not_reshaped(coords) -> None:
    with pytest.raises(ValueError, match=r"finite \(M, 3\) array"):
        custom(coords)
    assert custom([1.0, 2.0, 3.0]).positions == ((1.0, 2.0, 3.0),)  # one capsule as one 3-vector


def test_linear_array_along_no_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="axis to be a finite, non-zero 3-vector"):
        linear(4, 0.05, axis=(0.0, 0.0, 0.0))


def test_cuda_request_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="device='cuda' requested"):
        simulate(ROOM, SRC, ARRAY, fs=16000, nsample=100, device="cuda")


def test_output_never_nan_near_walls() -> None:
    room = Room(dims=(3.0, 3.0, 3.0), beta=(1.0,) * 6)
    out = simulate(room, [[0.001, 0.001, 0.001]], custom([[2.999, 2.999, 2.999], [0.004, 0.001, 0.001]]),
                   fs=16000, nsample=500)
    assert torch.isfinite(out).all() and out.abs().max() > 0
    assert math.isfinite(float(out.abs().max()))
