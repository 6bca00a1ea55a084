"""DCASE2023 segment and DCASE2024 frame scores: oracle, hand-computed cases, bad input.

Expected numbers are worked out from the definitions in simulation/seld/metrics.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulation.seld import SeldLabels, dcase2023_scores, dcase2024_scores, decode_multi_accdoa, multi_accdoa_target


def clip(*runs: tuple, n_frames: int = 10) -> SeldLabels:
    """Events from runs (first frame, last frame, class, track, azimuth, elevation[, distance])."""
    return SeldLabels.from_events([(f, *run[2:]) for run in runs for f in range(run[0], run[1] + 1)],
                                  n_frames=n_frames)


def scores23(ref: SeldLabels, pred: SeldLabels, **kw: float) -> tuple[float, ...]:
    s = dcase2023_scores(ref, pred, n_classes=3, **kw)
    return s.er, s.f, s.le, s.lr, s.seld


def test_oracle_scores_perfectly() -> None:
    ref = clip((0, 19, 0, 0, 10.0, 0.0, 2.0), (5, 14, 1, 0, -100.0, 30.0, 3.0), (5, 8, 1, 1, 170.0, -80.0, 1.0),
               (3, 3, 2, 4, 50.0, 89.0, 0.5), n_frames=25)
    s23, s24 = dcase2023_scores(ref, ref, 3), dcase2024_scores(ref, ref, 3)
    assert (s23.er, s23.f, s23.le, s23.lr, s23.seld) == (0.0, 1.0, 0.0, 1.0, 0.0)
    assert (s24.f, s24.doa_error, s24.rel_dist_error, s24.seld, s24.er, s24.lr) == (1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    decoded = decode_multi_accdoa(multi_accdoa_target(ref, 3, with_distance=True))
    assert dcase2023_scores(ref, decoded, 3).f == 1.0
    assert dcase2024_scores(ref, decoded, 3).seld == pytest.approx(0.0, abs=1e-12)


def test_small_error_inside_threshold() -> None:
    # one TP track, 10 deg off: LE 10, SELD = (10 / 180) / 4
    assert scores23(clip((0, 9, 0, 0, 0.0, 0.0)), clip((0, 9, 0, 0, 10.0, 0.0))) == pytest.approx(
        (0.0, 1.0, 10.0, 1.0, 10 / 720))


def test_rotation_by_30_deg_loses_f20_not_detection() -> None:
    ref, pred = clip((0, 9, 0, 0, 0.0, 0.0)), clip((0, 9, 0, 0, 30.0, 0.0))
    # spatial FP: one insertion (ER 1), F 0, but the track is still localized (LR 1)
    assert scores23(ref, pred) == pytest.approx((1.0, 0.0, 30.0, 1.0, (1 + 1 + 30 / 180) / 4))
    assert scores23(ref, pred, doa_threshold=40.0) == pytest.approx((0.0, 1.0, 30.0, 1.0, 30 / 720))


def test_missing_event_raises_er() -> None:
    ref = clip((0, 9, 0, 0, 0.0, 0.0), (0, 9, 1, 0, 90.0, 0.0))
    # class 1 is a deletion: ER 1/2; F (1 + 0)/2; LE (0 + 180)/2; LR (1 + 0)/2
    assert scores23(ref, clip((0, 9, 0, 0, 0.0, 0.0))) == pytest.approx((0.5, 0.5, 90.0, 0.5, 0.5))


def test_shifted_class_lowers_f() -> None:
    # FN in class 0 plus FP in class 1 is one substitution: ER 1; both classes F 0, LE 180, LR 0
    assert scores23(clip((0, 9, 0, 0, 0.0, 0.0)), clip((0, 9, 1, 0, 0.0, 0.0))) == pytest.approx((1, 0, 180, 0, 1))


def test_segment_averaging() -> None:
    ref = clip((0, 19, 0, 0, 0.0, 0.0), n_frames=20)
    # segment 0: 10 deg then 40 deg, mean 25 > 20 -> spatial FP; segment 1 exact -> TP
    pred = clip((0, 4, 0, 0, 10.0, 0.0), (5, 9, 0, 0, 40.0, 0.0), (10, 19, 0, 0, 0.0, 0.0), n_frames=20)
    assert scores23(ref, pred) == pytest.approx((0.5, 0.5, 12.5, 1.0, (0.5 + 0.5 + 12.5 / 180) / 4))
    # half a segment still detects the whole segment
    assert scores23(ref, clip((0, 4, 0, 0, 0.0, 0.0), (15, 15, 0, 0, 0.0, 0.0), n_frames=20)) == (0, 1, 0, 1, 0)


def test_overlapping_sources_hungarian() -> None:
    ref = clip((0, 9, 0, 0, 0.0, 0.0), (0, 9, 0, 1, 90.0, 0.0))
    # the single prediction pairs with the 90 deg source (2 deg off), the other is a miss:
    # ER 1/2, F 1 / (1 + 0.5), LE 2, LR 1/2
    assert scores23(ref, clip((0, 9, 0, 0, 88.0, 0.0))) == pytest.approx(
        (0.5, 2 / 3, 2.0, 0.5, (0.5 + 1 / 3 + 2 / 180 + 0.5) / 4))


def test_micro_average_pools_counts() -> None:
    ref = clip((0, 9, 0, 0, 0.0, 0.0), (0, 9, 1, 0, 90.0, 0.0), (0, 9, 2, 0, 0.0, 0.0))
    pred = clip((0, 9, 0, 0, 0.0, 0.0), (0, 9, 1, 0, 90.0, 0.0))
    s = dcase2023_scores(ref, pred, 3, average="micro")
    # TP 2, FN 1: F 2 / 2.5; LE 0 over 2 pairs; LR 2/3; ER 1/3
    assert (s.er, s.f, s.le, s.lr) == pytest.approx((1 / 3, 0.8, 0.0, 2 / 3))
    assert np.isnan(s.f_per_class).all()
    np.testing.assert_allclose(dcase2023_scores(ref, pred, 3).f_per_class, [1, 1, 0])


def test_clips_accumulate_counts() -> None:
    a, b = clip((0, 9, 0, 0, 0.0, 0.0)), clip((0, 9, 1, 0, 0.0, 0.0))
    s = dcase2023_scores([a, b], [a, clip()], 3)
    assert (s.er, s.f, s.lr) == pytest.approx((0.5, 0.5, 0.5))
    assert np.isnan(s.f_per_class[2])  # class 2 never occurs: left out of the average


def test_dcase2024_hand_computed() -> None:
    ref = clip((0, 3, 0, 0, 0.0, 0.0, 2.0))
    pred = clip((0, 1, 0, 0, 10.0, 0.0, 2.5),  # TP: 10 deg, relative distance error 0.25
                (2, 2, 0, 0, 30.0, 0.0, 2.0),  # angle over 20 deg: spatial FP
                (3, 3, 0, 0, 0.0, 0.0, 5.0),  # relative distance error 1.5 > 1: spatial FP
                (4, 4, 0, 0, 0.0, 0.0, 2.0))  # no reference: FP
    s = dcase2024_scores(ref, pred, 3)
    f = 2 / (2 + 2 + 0.5 * 1)
    assert (s.f, s.doa_error, s.rel_dist_error, s.er, s.lr) == pytest.approx((f, 12.5, 0.5, 0.75, 1.0))
    assert s.seld == pytest.approx(((1 - f) + 12.5 / 180 + 0.5) / 3)
    assert dcase2024_scores(ref, pred, 3, rel_dist_threshold=2.0).f == pytest.approx(3 / (3 + 1 + 0.5))
    # frame level: half the frames missed is half the references missed
    half = dcase2024_scores(ref, clip((0, 1, 0, 0, 0.0, 0.0, 2.0)), 3)
    assert (half.er, half.f, half.lr) == pytest.approx((0.5, 2 / 3, 0.5))
    silent = dcase2024_scores(ref, clip(), 3)  # no detections: nothing to localize
    assert (silent.er, silent.f, silent.lr, silent.seld) == (1.0, 0.0, 0.0, 1.0)
    assert np.isnan(silent.doa_error) and np.isnan(silent.rel_dist_error)


def test_bad_input() -> None:
    ref = clip((0, 9, 0, 0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"class_index\[0\] = 3 .* in \[0, 2\]"):
        dcase2023_scores(ref, clip((0, 0, 3, 0, 0.0, 0.0)), 3)
    with pytest.raises(ValueError, match="same number of clips; got 2 and 1"):
        dcase2023_scores([ref, ref], [ref], 3)
    with pytest.raises(ValueError, match=r"reference\[0\] has no distance"):
        dcase2024_scores(ref, ref, 3)
    with pytest.raises(ValueError, match=r"reference\[0\] distance must be > 0 m"):
        dcase2024_scores(clip((0, 0, 0, 0, 0.0, 0.0, 0.0)), clip((0, 0, 0, 0, 0.0, 0.0, 1.0)), 3)
    with pytest.raises(ValueError, match="average must be 'macro' or 'micro'"):
        dcase2023_scores(ref, ref, 3, average="weighted")  # type: ignore[arg-type]
