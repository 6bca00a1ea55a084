"""Hybrid tail against the full image-source RIR, determinism and bands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulation import Room, custom, decay_time, direct_to_reverberant_ratio, foa, simulate, tetra_mic

FS = 8000  # the statistics below do not depend on the rate; 8 kHz keeps the full ISM cheap


@pytest.mark.parametrize("dims,rt60", [((5.0, 4.0, 3.0), 0.3), ((9.0, 7.0, 3.5), 0.8), ((16.0, 12.0, 5.0), 1.5)])
def test_hybrid_matches_full_image_source_statistics(dims: tuple[float, ...], rt60: float, device: str) -> None:
    room = Room.from_rt60(dims, rt60)
    array = custom([[dims[0] * 0.6, dims[1] * 0.55, 1.5], [dims[0] * 0.3, dims[1] * 0.3, 1.2]])
    # Both RIRs are cut at the same length, so the EDC truncation bias cancels in the comparison.
    kwargs = dict(fs=FS, nsample=int(1.2 * rt60 * FS), dtype=torch.float64, device=device)
    full = simulate(room, [[1.2, 1.4, 1.6]], array, mode="ism", **kwargs)[0, 0].cpu()
    hybrid = simulate(room, [[1.2, 1.4, 1.6]], array, mode="hybrid", **kwargs)[0, 0].cpu()
    for method in ("t30", "edt"):
        ref, got = decay_time(full, FS, method), decay_time(hybrid, FS, method)
        assert np.all(np.abs(got / ref - 1) < 0.10), (method, ref, got)
    drr_ref, drr_got = direct_to_reverberant_ratio(full, FS), direct_to_reverberant_ratio(hybrid, FS)
    assert np.all(np.abs(drr_got - drr_ref) < 1.0), (drr_ref, drr_got)


def test_hybrid_is_seeded_and_independent_of_batch_and_chunking() -> None:
    rooms = [Room.from_rt60((6.0, 5.0, 3.0), 0.5, seed=7), Room.from_rt60((4.0, 4.0, 3.0), 0.4, seed=3)]
    arrays = [tetra_mic((3.0, 2.5, 1.5)), tetra_mic((2.0, 2.2, 1.4))]
    sources = [[[1.0, 1.0, 1.0], [5.0, 4.0, 2.0]], [[1.0, 3.0, 1.5], [3.0, 1.0, 2.0]]]
    kwargs = dict(fs=16000, nsample=4000, mode="hybrid")
    both = simulate(rooms, sources, arrays, **kwargs)
    alone = simulate(rooms[1], sources[1], arrays[1], **kwargs, chunk_size=97)
    assert torch.equal(both[1], alone[0])
    assert torch.equal(both, simulate(rooms, sources, arrays, **kwargs, chunk_size=1 << 20))
    reseeded = simulate(Room.from_dict({**rooms[1].to_dict(), "seed": 4}), sources[1], arrays[1], **kwargs)
    assert not torch.equal(reseeded[0], alone[0])
    assert torch.isfinite(both).all()


@pytest.mark.parametrize("mode", ["ism", "hybrid"])
def test_a_rooms_sources_give_the_same_rirs_grouped_or_one_at_a_time(mode: str, monkeypatch) -> None:
    """Sources are enumerated and fitted in memory-bounded groups (all at once on a GPU); the
    grouping must not show in the output."""
    import simulation.ism
    import simulation.tail

    room = Room(dims=(6.0, 5.0, 3.0), beta=(0.9, 0.8, 0.85, 0.7, 0.6, 0.9), air_absorption=True, seed=5)
    sources = [[1.0, 1.0, 1.0], [5.0, 4.0, 2.0], [2.5, 3.5, 1.2]]
    kwargs = dict(fs=16000, nsample=4000, mode=mode, order=-1 if mode == "hybrid" else 6)
    together = simulate(room, sources, foa((3.0, 2.5, 1.5)), **kwargs)
    monkeypatch.setattr(simulation.ism, "_GROUP_PAIRS", 1)
    monkeypatch.setattr(simulation.tail, "_GROUP_SAMPLES", 1)
    assert torch.equal(simulate(room, sources, foa((3.0, 2.5, 1.5)), **kwargs), together)


def test_uniform_bands_reproduce_broadband() -> None:
    broadband = Room(dims=(5.0, 4.0, 3.0), beta=(0.9, 0.8, 0.85, 0.7, 0.6, 0.9))
    banded = Room(dims=broadband.dims, beta=broadband.beta, band_beta=tuple((b,) * 6 for b in broadband.beta))
    args = ([[1.0, 1.5, 1.2]], custom([[3.0, 2.0, 1.5]]))
    kwargs = dict(fs=16000, nsample=3000, dtype=torch.float64)
    a, b = simulate(broadband, *args, **kwargs), simulate(banded, *args, **kwargs)
    assert (torch.linalg.norm(a - b) / torch.linalg.norm(a)).item() < 1e-6


def test_air_and_band_absorption_darken_the_tail() -> None:
    dims = (6.0, 5.0, 3.0)
    dull = tuple((0.95, 0.9, 0.85, 0.8, 0.7, 0.6) for _ in range(6))  # absorption grows with frequency
    rooms = [Room(dims=dims, beta=(0.9,) * 6, band_beta=dull, seed=1), Room(dims=dims, beta=(0.9,) * 6, air_absorption=True)]
    flat = Room(dims=dims, beta=(0.9,) * 6)
    kwargs = dict(fs=16000, nsample=6000, mode="hybrid")
    src, array = [[1.0, 1.0, 1.0]], custom([[4.0, 3.0, 1.5]])
    reference = simulate(flat, src, array, **kwargs)[0, 0, 0, 2000:]
    ref_spec = torch.fft.rfft(reference).abs() ** 2
    for room in rooms:
        late = torch.fft.rfft(simulate(room, src, array, **kwargs)[0, 0, 0, 2000:]).abs() ** 2
        high = slice(int(0.7 * len(late)), None)  # above ~5.6 kHz
        assert late[high].sum() < 0.8 * ref_spec[high].sum()


def test_hybrid_on_device(device: str) -> None:
    room = Room.from_rt60((6.0, 5.0, 3.0), 0.5)
    kwargs = dict(fs=16000, nsample=4000, mode="hybrid", dtype=torch.float64)
    out = simulate(room, [[1.0, 1.0, 1.0]], tetra_mic((3.0, 2.5, 1.5)), device=device, **kwargs)
    ref = simulate(room, [[1.0, 1.0, 1.0]], tetra_mic((3.0, 2.5, 1.5)), **kwargs)
    assert out.device.type == device
    assert torch.allclose(out.cpu(), ref, rtol=1e-6, atol=1e-9)
