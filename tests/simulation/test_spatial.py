"""FOA encoding, DOA labels, array geometry and moving sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simulation import (Room, circular, custom, direct_path_labels, direction, foa, linear, simulate, tetra_mic,
                        trajectory_rirs)

ANECHOIC = Room(dims=(8.0, 6.0, 4.0), beta=(0.0,) * 6)


@pytest.mark.parametrize("source", [[6.5, 4.7, 3.1], [1.0, 5.0, 1.2], [2.0, 1.0, 2.0], [7.5, 0.5, 0.4]])
def test_foa_direct_path_gains_and_intensity_doa(source: list[float], device: str) -> None:
    center = np.array([4.0, 3.0, 1.8])
    rir = simulate(ANECHOIC, [source], foa(center), fs=24000, nsample=1200, order=0, dtype=torch.float64,
                   device=device)[0, 0].cpu()
    az, el, _ = (v[0, 0] for v in direct_path_labels(np.array([source]), center[None]))
    a, e = math.radians(az), math.radians(el)
    sn3d = [1.0, math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)]  # W, Y, Z, X
    peak = int(torch.argmax(rir[0].abs()))
    ratios = (rir[:, peak] / rir[0, peak]).numpy()
    np.testing.assert_allclose(ratios, sn3d, atol=1e-3)
    w, y, z, x = rir.numpy()
    intensity = np.array([(w * x).sum(), (w * y).sum(), (w * z).sum()])
    est_az = math.degrees(math.atan2(intensity[1], intensity[0]))
    est_el = math.degrees(math.atan2(intensity[2], math.hypot(intensity[0], intensity[1])))
    assert abs((est_az - az + 180) % 360 - 180) < 1.0 and abs(est_el - el) < 1.0


def test_labels_follow_dcase_convention() -> None:
    center = np.array([[2.0, 2.0, 1.0]])
    src = np.array([[3.0, 2.0, 1.0], [2.0, 3.0, 1.0], [1.0, 2.0, 1.0], [2.0, 2.0, 3.0], [3.0, 1.0, 1.0 - math.sqrt(2)]])
    az, el, dist = direct_path_labels(src, center)
    np.testing.assert_allclose(az[:, 0], [0.0, 90.0, -180.0, 0.0, -45.0], atol=1e-9)
    np.testing.assert_allclose(el[:, 0], [0.0, 0.0, 0.0, 90.0, -45.0], atol=1e-9)
    np.testing.assert_allclose(dist[:, 0], [1.0, 1.0, 1.0, 2.0, 2.0], atol=1e-9)


def test_inter_mic_delays_match_geometry() -> None:
    array = tetra_mic((4.0, 3.0, 2.0))
    src = np.array([1.5, 2.0, 1.2])
    fs = 48000
    rir = simulate(ANECHOIC, [src], array, fs=fs, nsample=2000, order=0, dtype=torch.float64)[0, 0].numpy()
    dist = np.linalg.norm(np.asarray(array.positions) - src, axis=1)
    spec = np.fft.rfft(rir, n=8192)
    for i in range(1, 4):  # cross-spectrum phase slope gives the relative delay
        cross = spec[i] * np.conj(spec[0])
        band = slice(50, 1500)
        freqs = np.fft.rfftfreq(8192)[band]
        slope = np.polyfit(freqs, np.unwrap(np.angle(cross[band])), 1)[0]
        assert -slope / (2 * np.pi) == pytest.approx((dist[i] - dist[0]) / ANECHOIC.c * fs, abs=1e-3)


def test_array_geometry() -> None:
    tetra = tetra_mic()
    np.testing.assert_allclose(np.linalg.norm(tetra.positions, axis=1), 0.042)
    np.testing.assert_allclose(tetra.positions[0], 0.042 * np.array(direction(45, 35)))
    ring = circular(6, 0.05, center=(1.0, 1.0, 1.0))
    np.testing.assert_allclose(ring.center, (1.0, 1.0, 1.0), atol=1e-12)
    line = linear(4, 0.1)
    assert np.allclose(np.diff(np.asarray(line.positions)[:, 0]), 0.1)
    moved = tetra.moved_to((2.0, 2.0, 2.0))
    assert np.allclose(moved.center, (2.0, 2.0, 2.0)) and type(moved).from_dict(moved.to_dict()) == moved
    assert len(foa()) == 4  # coincident, but each capsule has its own directivity


def test_directional_capsule_gain() -> None:
    src = [[6.0, 3.0, 2.0]]  # straight along +x from the capsules
    front = custom([[2.0, 3.0, 2.0]], "cardioid", [[1.0, 0.0, 0.0]])
    back = custom([[2.0, 3.0, 2.0]], "cardioid", [[-1.0, 0.0, 0.0]])
    side = custom([[2.0, 3.0, 2.0]], "figure8", [[0.0, 1.0, 0.0]])
    outs = [simulate(ANECHOIC, src, a, fs=16000, nsample=600, order=0, dtype=torch.float64).abs().max() for a in (front, back, side)]
    assert outs[0] > 0 and outs[1] < 1e-12 * outs[0] and outs[2] < 1e-12 * outs[0]


def test_trajectory_frames() -> None:
    room = Room.from_rt60((6.0, 5.0, 3.0), 0.4)
    path = [[1.0, 1.0, 1.5], [5.0, 1.0, 1.5]]
    times, rirs = trajectory_rirs(room, path, tetra_mic((3.0, 3.0, 1.5)), times=[0.0, 1.0], fs=16000, nsample=800,
                                  order=1)
    assert times.shape == (11,) and rirs.shape == (11, 4, 800)
    np.testing.assert_allclose(times, np.arange(11) * 0.1, atol=1e-12)
    single = simulate(room, [[3.0, 1.0, 1.5]], tetra_mic((3.0, 3.0, 1.5)), fs=16000, nsample=800, order=1)[0, 0]
    assert torch.allclose(rirs[5], single, atol=1e-7)
