"""Rendering agrees with labels: activity, DOA, distance, SNR, and no clicks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulation import Room, foa, tetra_mic
from simulation.scenes import (LibraryItem, PlanConfig, PlannedEvent, RirBank, ScenePlan, convolve_event,
                               convolve_events, diffuse_noise, event_signal, frame_labels, plan_scene, render_scene,
                               room_region, scene_rirs)

FS = 16000
ANECHOIC = Room(dims=(8.0, 6.0, 4.0), beta=(0.0,) * 6)
CENTER = (4.0, 3.0, 1.6)
LIBRARY = [LibraryItem("a", 0, "dog", 0.8), LibraryItem("b", 1, "bell", 1.5), LibraryItem("c", 2, "door", 1.1)]


def _noise_signals(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {item.id: rng.standard_normal(int(item.duration * FS)) for item in LIBRARY}


def _single(event: PlannedEvent, duration: float = 4.0, snr: float | None = None) -> ScenePlan:
    return ScenePlan(0, duration, 1, 1, 0.1, CENTER, snr, 5, (event,))


def _render(plan: ScenePlan, signals: dict[str, np.ndarray], array=None):
    array = array or foa(CENTER)
    rirs = scene_rirs(plan, ANECHOIC, array, FS, rir_duration=0.05, mode="ism")
    return render_scene(plan, signals, rirs, FS, array, c=ANECHOIC.c)


def _doa(block: np.ndarray) -> tuple[float, float]:
    """Intensity-vector DOA (deg) of FOA W, Y, Z, X samples: sum of W * [Y, Z, X]."""
    w, y, z, x = block
    iy, iz, ix = (w * y).sum(), (w * z).sum(), (w * x).sum()
    return math.degrees(math.atan2(iy, ix)), math.degrees(math.atan2(iz, math.hypot(ix, iy)))


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def test_label_activity_matches_the_energy_envelope() -> None:
    config = PlanConfig(duration=6.0, tracks=1, polyphony=1, events_per_minute=60.0, min_gap=0.5, snr_db=None,
                        moving_fraction=0.5)
    plan = plan_scene(4, LIBRARY, CENTER, room_region(ANECHOIC), config)
    out = _render(plan, _noise_signals(), tetra_mic(CENTER))
    frames = out.audio.reshape(4, -1, FS // 10)
    energy = (frames.astype(np.float64) ** 2).mean(axis=(0, 2))
    labelled = np.zeros(len(energy), dtype=bool)
    labelled[[r.frame for r in frame_labels(plan)]] = True
    active = energy > 1e-3 * energy.max()
    assert len(plan.events) >= 3
    change = np.diff(labelled.astype(int)) != 0  # between frames k and k + 1
    near_edge = np.concatenate([change, [False]]) | np.concatenate([[False], change])
    mismatch = active != labelled
    assert not (mismatch & ~near_edge).any()
    assert active[labelled].mean() > 0.9


@pytest.mark.parametrize("az,el,dist", [(30.0, 10.0, 1.5), (-120.0, -25.0, 2.0), (170.0, 40.0, 1.2)])
def test_static_foa_doa_and_distance_match_labels(az: float, el: float, dist: float) -> None:
    event = PlannedEvent("b", 1, "bell", 0, 0.5, 2.0, -3.0, az, el, dist)
    plan = _single(event, duration=3.0)
    out = _render(plan, _noise_signals())
    labels = frame_labels(plan)
    assert len(labels) == 15 and all(r.class_index == 1 and r.track == 0 for r in labels)
    est_az, est_el = _doa(out.audio[:, int(0.5 * FS):int(2.0 * FS)].astype(np.float64))
    assert _angle_gap(est_az, labels[0].azimuth) < 5.0 and abs(est_el - labels[0].elevation) < 5.0
    assert labels[0].azimuth == pytest.approx(az) and labels[0].elevation == pytest.approx(el)
    np.testing.assert_allclose([r.distance for r in labels], dist, rtol=1e-12)
    assert np.isfinite(out.audio).all() and np.abs(out.audio).max() == pytest.approx(0.5, rel=1e-6)


def test_moving_foa_doa_follows_the_arc_frame_by_frame() -> None:
    event = PlannedEvent("b", 1, "bell", 0, 0.3, 3.3, 0.0, 60.0, 15.0, 1.8, speed=-40.0)
    plan = _single(event)
    signal = np.random.default_rng(1).standard_normal(3 * FS)
    out = _render(plan, {"b": signal})
    labels = frame_labels(plan)
    assert len(labels) == 30
    for k, row in enumerate(labels):  # the arc: constant distance and elevation, azimuth at frame centres
        assert row.frame == 3 + k
        assert row.azimuth == pytest.approx((60.0 - 40.0 * (k + 0.5) * 0.1 + 180) % 360 - 180)
        assert row.elevation == pytest.approx(15.0) and row.distance == pytest.approx(1.8)
        pos = np.asarray(CENTER) + 1.8 * np.array([math.cos(math.radians(15)) * math.cos(math.radians(row.azimuth)),
                                                    math.cos(math.radians(15)) * math.sin(math.radians(row.azimuth)),
                                                    math.sin(math.radians(15))])
        assert np.linalg.norm(pos - CENTER) == pytest.approx(row.distance)
        start = row.frame * FS // 10
        est_az, est_el = _doa(out.audio[:, start:start + FS // 10].astype(np.float64))
        assert _angle_gap(est_az, row.azimuth) < 5.0 and abs(est_el - row.elevation) < 5.0


def test_time_variant_convolution_reproduces_a_fixed_rir() -> None:
    rng = np.random.default_rng(2)
    x, rir = rng.standard_normal(5000), rng.standard_normal((3, 300))
    frames = np.repeat(rir[None], 5000 // 1600 + 2, axis=0)
    np.testing.assert_allclose(convolve_event(x, RirBank(frames), np.arange(len(frames)), 1600),
                               np.stack([np.convolve(x, h) for h in rir]), atol=1e-10)
    with pytest.raises(ValueError, match="at each of >= 5 stamps"):
        convolve_event(x, RirBank(frames[:2]), np.arange(2), 1600)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_block_convolution_equals_direct_convolution(dtype, tol) -> None:
    """Signals of one to many blocks, with spectra cached on first use: the same as np.convolve,
    in the RIRs' precision, for every RIR of the bank and whichever event used it first."""
    rng = np.random.default_rng(5)
    rirs = (rng.standard_normal((3, 4, 700)) * np.exp(-np.arange(700) / 150.0)).astype(dtype)
    bank = RirBank(rirs)
    assert bank.block < 5000
    for n, point in [(5000, 2), (1, 0), (bank.block, 1), (5000, 0), (37, 2)]:
        x = rng.standard_normal(n)
        wet = convolve_event(x, bank, point)
        assert wet.dtype == dtype and wet.shape == (4, n + 699)
        np.testing.assert_allclose(wet, np.stack([np.convolve(x, h) for h in rirs[point].astype(float)]), atol=tol)
    xs = [rng.standard_normal(n) for n in (5000, 300, 2 * bank.block + 5)]
    for window in (1, 3, 32):  # events transformed together, a few blocks at a time, with uncached spectra too
        wets = convolve_events([(x, bank, 1, 0) for x in xs] + [(xs[0], RirBank(rirs, keep=False), 2, 0)], window)
        for x, wet, point in zip(xs + xs[:1], wets, (1, 1, 1, 2)):
            np.testing.assert_allclose(wet, np.stack([np.convolve(x, h) for h in rirs[point].astype(float)]), atol=tol)
    with pytest.raises(ValueError, match="one of the 3 RIRs"):
        convolve_event(np.ones(10), bank, 3)
    with pytest.raises(ValueError, match=r"finite \(P, M, L\)"):
        RirBank(np.full((1, 4, 10), np.nan))


def _second_difference_peak(y: np.ndarray, omega: float) -> float:
    """Largest |y[n+1] - 2 y[n] + y[n-1]| relative to what a sine of |y|'s peak can produce."""
    return float(np.abs(np.diff(y, 2, axis=-1)).max() / (omega**2 * np.abs(y).max()))


def test_moving_source_has_no_clicks() -> None:
    f0 = 300.0
    omega = 2 * math.pi * f0 / FS
    n = 2 * FS
    ramp = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.05 * FS))
    tone = np.sin(omega * np.arange(n)) * ramp
    event = PlannedEvent("b", 1, "bell", 0, 0.5, 2.5, 0.0, 0.0, 0.0, 1.5, speed=40.0)
    plan = _single(event, duration=3.0)
    rirs = scene_rirs(plan, ANECHOIC, foa(CENTER), FS, rir_duration=0.05, mode="ism")
    smooth = convolve_event(event_signal(tone, event, FS), RirBank(rirs[0]), np.arange(len(rirs[0])), FS // 10)
    assert _second_difference_peak(smooth, omega) < 1.5
    hop = FS // 10  # the detector fires on hard switching between the same RIRs
    hard = np.concatenate([np.stack([np.convolve(tone, h) for h in rirs[0][f]])[:, f * hop:(f + 1) * hop]
                           for f in range(n // hop)], axis=-1)
    assert _second_difference_peak(hard, omega) > 3.0


@pytest.mark.parametrize("array", [foa(CENTER), tetra_mic(CENTER)], ids=["foa", "mic"])
@pytest.mark.parametrize("snr", [6.0, 20.0])
def test_ambience_snr_is_exact(array, snr: float) -> None:
    config = PlanConfig(duration=4.0, events_per_minute=45.0)
    plan = dataclasses.replace(plan_scene(9, LIBRARY, CENTER, room_region(ANECHOIC), config), snr_db=snr)
    signals = _noise_signals()
    noisy = _render(plan, signals, array)
    clean = _render(dataclasses.replace(plan, snr_db=None), signals, array)
    events = clean.audio.astype(np.float64) / clean.gain
    noise = noisy.audio.astype(np.float64) / noisy.gain - events
    measured = 10 * np.log10((events**2).mean() / (noise**2).mean())
    assert abs(measured - snr) < 0.5 and noisy.snr_db == snr
    assert np.isfinite(noisy.audio).all() and np.abs(noisy.audio).max() <= 0.5 + 1e-6


def test_diffuse_foa_ambience_has_sn3d_energies_and_no_correlation() -> None:
    noise = diffuse_noise(foa(), 4 * FS, FS, np.random.default_rng(0), color="white")
    power = (noise**2).mean(axis=1)
    np.testing.assert_allclose(power / power[0], [1.0, 1 / 3, 1 / 3, 1 / 3], rtol=0.1)
    corr = np.corrcoef(noise)
    assert np.abs(corr[~np.eye(4, dtype=bool)]).max() < 0.05
    mic = diffuse_noise(tetra_mic(), 4 * FS, FS, np.random.default_rng(0), color="pink")
    assert np.corrcoef(mic)[0, 1] > 0.3  # pink ambience is coherent at low frequency on a 4.2 cm array


@pytest.mark.parametrize("make", [foa, tetra_mic], ids=["foa", "mic"])
def test_an_ambience_bank_is_shared_by_placements_and_keeps_the_snr_exact(make) -> None:
    from simulation.scenes import ambience_bank

    bank = ambience_bank(make(CENTER), FS, 12.0, seed=5)
    assert bank.audio.shape == (4, 12 * FS) and bank.audio.dtype == np.float32
    assert ambience_bank(make((1.0, 2.0, 1.5)), FS, 12.0, seed=5) is bank  # same geometry elsewhere: same bank
    assert not np.array_equal(ambience_bank(make(CENTER), FS, 12.0, seed=6).audio, bank.audio)
    fresh = diffuse_noise(make(CENTER), 12 * FS, FS, np.random.default_rng(5))
    np.testing.assert_allclose((bank.audio**2).mean(axis=1), (fresh**2).mean(axis=1), rtol=1e-5)  # the same field
    (first, _), (again, _) = (bank.stretch(4 * FS, np.random.default_rng(1)) for _ in range(2))
    assert np.array_equal(first, again) and first.shape == (4, 4 * FS)
    with pytest.raises(ValueError, match="make it longer"):
        bank.stretch(13 * FS, np.random.default_rng(1))
    # the stretch's mean square from the stored block energies: any offset and length, blocks or not
    for seed, n in [(1, 4 * FS), (2, 4096), (3, 100), (4, 12 * FS)]:
        clip, ms = bank.stretch(n, np.random.default_rng(seed))
        assert ms == pytest.approx(float(np.mean(clip.astype(np.float64) ** 2)), rel=1e-7)  # a block off: 1e-3

    config = PlanConfig(duration=4.0, events_per_minute=45.0)
    plan = dataclasses.replace(plan_scene(9, LIBRARY, CENTER, room_region(ANECHOIC), config), snr_db=10.0)
    signals, array = _noise_signals(), make(CENTER)
    rirs = scene_rirs(plan, ANECHOIC, array, FS, rir_duration=0.05, mode="ism")
    noisy = render_scene(plan, signals, rirs, FS, array, c=ANECHOIC.c, bank=bank)
    clean = render_scene(dataclasses.replace(plan, snr_db=None), signals, rirs, FS, array, c=ANECHOIC.c)
    events = clean.audio.astype(np.float64) / clean.gain
    noise = noisy.audio.astype(np.float64) / noisy.gain - events
    assert abs(10 * np.log10((events**2).mean() / (noise**2).mean()) - 10.0) < 0.5


def test_render_rejects_bad_inputs() -> None:
    event = PlannedEvent("b", 1, "bell", 0, 0.5, 1.0, 0.0, 0.0, 0.0, 1.5)
    plan = _single(event, duration=2.0)
    rir = np.zeros((4, 100))
    with pytest.raises(ValueError, match="signals"):
        render_scene(plan, {"b": np.full(100, np.nan)}, [rir], FS, foa(CENTER))
    with pytest.raises(ValueError, match="rirs"):
        render_scene(plan, {"b": np.ones(100)}, [rir, rir], FS, foa(CENTER))
    with pytest.raises(ValueError, match="peak"):
        render_scene(plan, {"b": np.ones(100)}, [rir], FS, foa(CENTER), peak=2.0)


@pytest.mark.parametrize("per_event", [True, False], ids=["event_snr_db", "level_db"])
def test_each_events_snr_is_what_the_rendered_scene_measures(per_event: bool) -> None:
    """Event i alone and the ambience alone are rendered from the same plan (rendering is linear),
    so the ratio of their mean squares is the scene's: it must equal the recorded SNR to float32
    rounding (0.01 dB), and event i's mean square scaled by the scene's peak gain its recorded
    power. Over the event's own span the stationary ambience's power differs from the clip's only
    by estimation noise, well inside 1.5 dB for spans of 0.8 s or more."""
    room = Room(dims=(8.0, 6.0, 4.0), beta=(0.8,) * 6)
    config = PlanConfig(duration=6.0, events_per_minute=50.0, level_db=None if per_event else (-20.0, 0.0),
                        event_snr_db=(0.0, 20.0) if per_event else None, snr_db=None if per_event else (6.0, 30.0))
    plan = plan_scene(6, LIBRARY, CENTER, room_region(room), config)
    array, signals = foa(CENTER), _noise_signals(3)
    rirs = scene_rirs(plan, room, array, FS, rir_duration=0.1, mode="ism")
    full = render_scene(plan, signals, rirs, FS, array, c=room.c)
    assert len(plan.events) >= 4 and len(full.event_snr_db) == len(plan.events)

    def alone(sub: ScenePlan, sub_rirs: list) -> np.ndarray:
        out = render_scene(sub, signals, sub_rirs, FS, array, c=room.c)
        return out.audio.astype(np.float64) / out.gain

    if per_event:
        noise = alone(dataclasses.replace(plan, events=()), [])
        events = [alone(dataclasses.replace(plan, events=(e,)), [r]) - noise for e, r in zip(plan.events, rirs)]
    else:
        noise = full.audio.astype(np.float64) / full.gain - alone(dataclasses.replace(plan, snr_db=None), rirs)
        events = [alone(dataclasses.replace(plan, events=(e,), snr_db=None), [r]) for e, r in zip(plan.events, rirs)]
    assert len(full.event_power_db) == len(plan.events)
    for event, wet, recorded, level, power_db in zip(plan.events, events, full.event_snr_db, full.event_level_db,
                                                     full.event_power_db):
        span = slice(int(round(event.onset * FS)), int(round(event.offset * FS)))
        power = (wet[:, span] ** 2).mean()
        assert 10 * np.log10(power / (noise**2).mean()) == pytest.approx(recorded, abs=0.01)
        assert 10 * np.log10(power * full.gain**2) == pytest.approx(power_db, abs=0.01)
        assert abs(10 * np.log10(power / (noise[:, span] ** 2).mean()) - recorded) < 1.5
        if per_event:
            assert event.level_db is None and 0.0 <= recorded <= 20.0 + 1e-9
            assert recorded == pytest.approx(event.snr_db, abs=1e-9)
        else:
            assert level == event.level_db
    clip = 10 * np.log10((sum(events) ** 2).mean() / (noise**2).mean())
    assert full.snr_db == pytest.approx(clip, abs=0.01)
