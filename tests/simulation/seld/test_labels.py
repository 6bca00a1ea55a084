"""Label representation, polar/Cartesian conversion and multi-ACCDOA/ADPIT targets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.seld import (
    Event,
    SeldLabels,
    adpit_target,
    decode_multi_accdoa,
    multi_accdoa_target,
    polar_to_unit,
    unit_to_polar,
)

AZIMUTH = st.floats(-180.0, 180.0, exclude_max=True)
ELEVATION = st.floats(-89.0, 89.0)


def scene() -> SeldLabels:
    """Two classes; class 1 has two overlapping sources in frames 0-1 and three in frame 3."""
    return SeldLabels.from_events([
        (0, 1, 0, 10.0, 20.0, 2.0), (0, 1, 1, -30.0, 0.0, 1.0), (0, 0, 0, 90.0, 0.0, 3.0),
        (1, 1, 0, 12.0, 20.0, 2.1), (1, 1, 1, -32.0, 5.0, 1.1),
        (3, 1, 0, 0.0, 0.0, 1.5), (3, 1, 1, 120.0, -45.0, 2.5), (3, 1, 2, -150.0, 60.0, 3.5),
    ], n_frames=5)


@settings(max_examples=200, deadline=None)
@given(AZIMUTH, ELEVATION)
def test_polar_unit_round_trip(azimuth: float, elevation: float) -> None:
    xyz = polar_to_unit(azimuth, elevation)
    assert np.linalg.norm(xyz) == pytest.approx(1.0, abs=1e-12)
    azi, ele = unit_to_polar(xyz)
    assert ele == pytest.approx(elevation, abs=1e-9)
    assert -180.0 <= azi < 180.0
    assert (azi - azimuth + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-10.0, 10.0), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 1e-3))
def test_unit_polar_round_trip_any_vector(v: list[float]) -> None:
    """Poles included: any direction survives Cartesian -> polar -> Cartesian."""
    azi, ele = unit_to_polar(v)
    assert -180.0 <= azi < 180.0 and -90.0 <= ele <= 90.0
    np.testing.assert_allclose(polar_to_unit(azi, ele), np.asarray(v) / np.linalg.norm(v), atol=1e-12)


def test_dcase_axes() -> None:
    """+90 azimuth is left (+y), +90 elevation is up (+z); -180 is behind."""
    np.testing.assert_allclose(polar_to_unit([0, 90, -180, 0], [0, 0, 0, 90]),
                               [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15)
    assert unit_to_polar([-1.0, 0.0, 0.0])[0] == -180.0


def test_events_sorted_and_equal() -> None:
    labels = scene()
    assert labels.events()[:3] == [Event(0, 0, 0, 90.0, 0.0, 3.0), Event(0, 1, 0, 10.0, 20.0, 2.0),
                                   Event(0, 1, 1, -30.0, 0.0, 1.0)]
    assert labels == SeldLabels.from_events(reversed(labels.events()), n_frames=5)
    assert labels != SeldLabels.from_events(labels.events(), n_frames=6)
    assert SeldLabels.from_events([(4, 0, 0, 0, 0)]).n_frames == 5


def test_multi_accdoa_layout_and_round_trip() -> None:
    labels = scene()
    target = multi_accdoa_target(labels, n_classes=2, with_distance=True)
    assert target.shape == (5, 3, 4, 2)
    np.testing.assert_allclose(target[0, 1, :, 1], [*polar_to_unit(-30.0, 0.0), 1.0])
    assert not target[2].any() and not target[0, 1:, :, 0].any()
    decoded = decode_multi_accdoa(target)
    assert decoded.n_frames == 5
    for got, want in zip(decoded.events(), labels.events(), strict=True):
        assert got[:3] == want[:3]
        np.testing.assert_allclose(got[3:], want[3:], atol=1e-9)
    assert decode_multi_accdoa(multi_accdoa_target(labels, 2)).distance is None


def test_decode_threshold_and_fourth_source() -> None:
    crowded = SeldLabels.from_events([(0, 0, t, 10.0 * t, 0.0) for t in range(4)])
    target = multi_accdoa_target(crowded, n_classes=1)
    assert [e.track for e in decode_multi_accdoa(target).events()] == [0, 1, 2]
    target[0, 1] *= 0.5  # norm 0.5 is not above the threshold
    assert [e.track for e in decode_multi_accdoa(target).events()] == [0, 2]
    assert len(decode_multi_accdoa(target, threshold=0.4)) == 3


def test_adpit_slots() -> None:
    target = adpit_target(scene(), n_classes=2, with_distance=True)
    assert target.shape == (5, 6, 5, 2)
    activity = target[:, :, 0, :]
    np.testing.assert_array_equal(activity[0, :, 0], [1, 0, 0, 0, 0, 0])  # one source: A0
    np.testing.assert_array_equal(activity[0, :, 1], [0, 1, 1, 0, 0, 0])  # two: B0, B1
    np.testing.assert_array_equal(activity[3, :, 1], [0, 0, 0, 1, 1, 1])  # three: C0, C1, C2
    np.testing.assert_allclose(target[3, 4, 1:, 1], [*polar_to_unit(120.0, -45.0), 2.5])
    assert adpit_target(scene(), n_classes=2).shape == (5, 6, 4, 2)


@pytest.mark.parametrize(("event", "field"), [
    ((-1, 0, 0, 0.0, 0.0), "frame"),
    ((0, -2, 0, 0.0, 0.0), "class_index"),
    ((0, 0, -1, 0.0, 0.0), "track"),
    ((0, 0, 0, 180.0, 0.0), "azimuth"),
    ((0, 0, 0, -180.5, 0.0), "azimuth"),
    ((0, 0, 0, 0.0, 90.5), "elevation"),
    ((0, 0, 0, 0.0, float("nan")), "elevation"),
    ((0, 0, 0, 0.0, 0.0, -1.0), "distance"),
])
def test_bad_event_names_field(event: tuple, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}\[0\] = .* out of range: {field} must be"):
        SeldLabels.from_events([event])


def test_bad_shapes_and_classes() -> None:
    with pytest.raises(ValueError, match="n_frames must be"):
        SeldLabels.from_events([(3, 0, 0, 0.0, 0.0)], n_frames=2)
    with pytest.raises(ValueError, match="distance must be given for every event or for none"):
        SeldLabels.from_events([(0, 0, 0, 0.0, 0.0, 1.0), (1, 0, 0, 0.0, 0.0)])
    with pytest.raises(ValueError, match="frame must hold integers"):
        SeldLabels(np.array([0.5]), np.array([0]), np.array([0]), np.array([0.0]), np.array([0.0]))
    with pytest.raises(ValueError, match=r"class_index\[0\] = 2 .* in \[0, 1\]"):
        multi_accdoa_target(SeldLabels.from_events([(0, 2, 0, 0.0, 0.0)]), n_classes=2)
    with pytest.raises(ValueError, match="with_distance=True needs labels with distance"):
        adpit_target(SeldLabels.from_events([(0, 0, 0, 0.0, 0.0)]), n_classes=1, with_distance=True)
    with pytest.raises(ValueError, match=r"output must have shape \(frames, 3, 3 or 4, classes\)"):
        decode_multi_accdoa(np.zeros((2, 6, 4, 1)))
