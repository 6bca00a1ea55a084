"""DCASE SELD scores: 2023 segment-based and 2024 frame-based, location-aware.

Both follow the challenge evaluation code (seld-dcase2023/2024
``SELD_evaluation_metrics.py``, after Mesaros et al. 2019 and Politis et al.
2020): within each class, reference and predicted directions are paired by the
Hungarian algorithm on great-circle angle, and counts are summed over all
clips before the scores are formed.

* 2023 (segments of 10 label frames = 1 s): a paired reference track is a true
  positive when its angle error averaged over the segment's shared frames is
  <= doa_threshold (20 deg), else a spatial false positive. Extra or missing
  tracks count as FP / FN. ER = (S + D + I) / N_ref with S, D, I from the
  per-segment FP and FN totals; F = TP / (TP + FP_spatial + (FP + FN) / 2);
  LE (class-dependent, deg) = mean angle of paired tracks; LR = paired /
  (paired + FN); SELD = mean(ER, 1 - F, LE / 180, 1 - LR).
* 2024 (every label frame): a pair is a true positive when its angle error is
  <= doa_threshold and its relative distance error |d_pred - d_ref| / d_ref
  <= rel_dist_threshold (1.0). DOA error and relative distance error average
  over all pairs; SELD = mean(1 - F, DOAE / 180, RDE).

Macro averages are over classes; a class absent from both reference and
prediction of every clip is left out (the challenge code scores it F = 0,
which only makes sense on a full dataset where every class occurs). Where the
official code adds two failed 2024 thresholds as two false positives, a pair
here counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .labels import SeldLabels

__all__ = ["SEGMENT_FRAMES", "SegmentScores", "FrameScores", "dcase2023_scores", "dcase2024_scores"]

SEGMENT_FRAMES = 10  # label frames per 1 s segment (2023)
Clips = SeldLabels | Sequence[SeldLabels]


@dataclass(frozen=True)
class SegmentScores:
    """DCASE2023 scores; per-class arrays hold NaN for classes left out of the average."""

    er: float
    f: float
    le: float
    lr: float
    seld: float
    f_per_class: np.ndarray
    le_per_class: np.ndarray
    lr_per_class: np.ndarray


@dataclass(frozen=True)
class FrameScores:
    """DCASE2024 scores (f, doa_error deg, rel_dist_error, seld) plus frame-level ER and LR."""

    f: float
    doa_error: float
    rel_dist_error: float
    seld: float
    er: float
    lr: float
    f_per_class: np.ndarray
    doa_error_per_class: np.ndarray
    rel_dist_error_per_class: np.ndarray


class _Counts:
    """Per-class evaluation counts, accumulated over clips, then pooled per the averaging mode."""

    def __init__(self, n_classes: int, average: str) -> None:
        if average not in ("macro", "micro"):
            raise ValueError(f"average must be 'macro' or 'micro'; got {average!r}")
        self.average = average
        self.tp, self.fp, self.fp_spatial, self.fn = (np.zeros(n_classes) for _ in range(4))
        self.n_ref, self.paired, self.paired_fn = (np.zeros(n_classes) for _ in range(3))
        self.angle_sum, self.rel_dist_sum = np.zeros(n_classes), np.zeros(n_classes)
        self.errors = 0  # S + D + I

    def close_unit(self, loc_fp: int, loc_fn: int) -> None:
        """S + D + I of one segment or frame is max(FP, FN) over its classes."""
        self.errors += max(loc_fp, loc_fn)

    @property
    def active(self) -> np.ndarray:
        return (self.n_ref > 0) | (self.tp + self.fp + self.fp_spatial > 0)

    def pool(self, values: np.ndarray) -> np.ndarray:
        """Values of the active classes (macro) or their sum as a length-1 array (micro)."""
        picked = values[self.active]
        return picked if self.average == "macro" else np.atleast_1d(picked.sum())

    def per_class(self, values: np.ndarray) -> np.ndarray:
        """Pooled values back on the class axis, NaN where left out (all NaN for micro)."""
        out = np.full(len(self.tp), np.nan)
        if self.average == "macro":
            out[self.active] = values
        return out

    def detection(self) -> tuple[float, np.ndarray, np.ndarray]:
        """ER, then pooled F and LR."""
        n_ref = self.n_ref.sum()
        er = float(self.errors / n_ref) if n_ref else (np.inf if self.errors else 0.0)
        tp, fp_s, fp, fn = self.pool(self.tp), self.pool(self.fp_spatial), self.pool(self.fp), self.pool(self.fn)
        paired = self.pool(self.paired)
        f = _ratio(tp, tp + fp_s + 0.5 * (fp + fn), np.nan)
        return er, f, _ratio(paired, paired + self.pool(self.paired_fn), 0.0)


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), empty, dtype=np.float64), where=den > 0)


def _mean(x: np.ndarray) -> float:
    """Mean over the non-NaN values; NaN when there are none."""
    x = x[~np.isnan(x)]
    return float(np.mean(x)) if len(x) else float("nan")


def _clip_pairs(reference: Clips, prediction: Clips, n_classes: int,
                distance: bool) -> list[tuple[SeldLabels, SeldLabels]]:
    refs = [reference] if isinstance(reference, SeldLabels) else list(reference)
    preds = [prediction] if isinstance(prediction, SeldLabels) else list(prediction)
    if len(refs) != len(preds):
        raise ValueError("reference and prediction must hold the same number of clips; "
                         f"got {len(refs)} and {len(preds)}")
    for role, clips in (("reference", refs), ("prediction", preds)):
        for i, clip in enumerate(clips):
            if not isinstance(clip, SeldLabels):
                raise ValueError(f"{role}[{i}] must be SeldLabels; got {type(clip).__name__}")
            clip.check_classes(n_classes)
            if distance and len(clip) and clip.distance is None:
                raise ValueError(f"{role}[{i}] has no distance; DCASE2024 scores need distances")
    for i, ref in enumerate(refs):
        if distance and len(ref) and ref.distance.min() <= 0:
            raise ValueError(f"reference[{i}] distance must be > 0 m for relative errors; got {ref.distance.min()}")
    return list(zip(refs, preds))


def _groups(labels: SeldLabels, unit: int) -> dict[tuple[int, int], dict[int, list[int]]]:
    """{(frame // unit, class): {frame: event indices}}."""
    out: dict[tuple[int, int], dict[int, list[int]]] = {}
    for i, (frame, cls) in enumerate(zip(labels.frame.tolist(), labels.class_index.tolist())):
        out.setdefault((frame // unit, cls), {}).setdefault(frame, []).append(i)
    return out


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angles in degrees between unit vectors a (m, 3) and b (n, 3).

    atan2(|a x b|, a . b) keeps full precision near 0 deg, where arccos loses ~1e-6 deg.
    """
    cross = np.linalg.norm(np.cross(a[:, None, :], b[None, :, :]), axis=-1)
    return np.degrees(np.arctan2(cross, a @ b.T))


def dcase2023_scores(reference: Clips, prediction: Clips, n_classes: int, *, doa_threshold: float = 20.0,
                     segment_frames: int = SEGMENT_FRAMES,
                     average: Literal["macro", "micro"] = "macro") -> SegmentScores:
    """DCASE2023 ER20, F20, LE_CD (deg), LR_CD and SELD score over one clip or paired lists of clips."""
    counts = _Counts(n_classes, average)
    for ref, pred in _clip_pairs(reference, prediction, n_classes, distance=False):
        _update_segments(counts, ref, pred, n_classes, doa_threshold, segment_frames)
    er, f, lr = counts.detection()
    le = _ratio(counts.pool(counts.angle_sum), counts.pool(counts.paired), 180.0)  # 180 deg when nothing paired
    f_m, le_m, lr_m = _mean(f), _mean(le), _mean(lr)
    return SegmentScores(er=er, f=f_m, le=le_m, lr=lr_m, seld=float(np.mean([er, 1 - f_m, le_m / 180, 1 - lr_m])),
                         f_per_class=counts.per_class(f), le_per_class=counts.per_class(le),
                         lr_per_class=counts.per_class(lr))
def _update_segments(c: _Counts, ref: SeldLabels, pred: SeldLabels, n_classes: int, doa_threshold: float,
                     segment_frames: int) -> None:
    ref_groups, pred_groups = _groups(ref, segment_frames), _groups(pred, segment_frames)
    ref_xyz, pred_xyz = ref.unit_vectors(), pred.unit_vectors()
    n_segments = -(-max(ref.n_frames, pred.n_frames) // segment_frames)
    for segment in range(n_segments):
        loc_fp = loc_fn = 0
        for k in range(n_classes):
            r, p = ref_groups.get((segment, k)), pred_groups.get((segment, k))
            n_r = max(map(len, r.values())) if r else 0  # tracks = most simultaneous events
            n_p = max(map(len, p.values())) if p else 0
            c.n_ref[k] += n_r
            if r and p:
                track_angles: dict[int, list[float]] = {}
                for frame in r.keys() & p.keys():
                    cost = _angles(ref_xyz[r[frame]], pred_xyz[p[frame]])
                    for row, col in zip(*linear_sum_assignment(cost)):
                        track_angles.setdefault(int(row), []).append(float(cost[row, col]))
                if not track_angles:  # no shared frame: the official code counts n_p (not n_r) misses
                    c.fn[k] += n_p
                    c.paired_fn[k] += n_p
                    loc_fn += n_p
                    continue
                for angles in track_angles.values():
                    mean_angle = float(np.mean(angles))
                    c.angle_sum[k] += mean_angle
                    c.paired[k] += 1
                    if mean_angle <= doa_threshold:
                        c.tp[k] += 1
                    else:
                        c.fp_spatial[k] += 1
                        loc_fp += 1
                c.fp[k] += max(0, n_p - n_r)
                c.fn[k] += max(0, n_r - n_p)
                c.paired_fn[k] += max(0, n_r - n_p)
                loc_fp, loc_fn = loc_fp + max(0, n_p - n_r), loc_fn + max(0, n_r - n_p)
            elif r:
                c.fn[k] += n_r
                c.paired_fn[k] += n_r
                loc_fn += n_r
            elif p:
                c.fp[k] += n_p
                loc_fp += n_p
        c.close_unit(loc_fp, loc_fn)


def dcase2024_scores(reference: Clips, prediction: Clips, n_classes: int, *, doa_threshold: float = 20.0,
                     rel_dist_threshold: float = 1.0,
                     average: Literal["macro", "micro"] = "macro") -> FrameScores:
    """DCASE2024 frame-level F (angle and relative distance thresholds), DOA error (deg), relative distance error."""
    counts = _Counts(n_classes, average)
    for ref, pred in _clip_pairs(reference, prediction, n_classes, distance=True):
        _update_frames(counts, ref, pred, n_classes, doa_threshold, rel_dist_threshold)
    er, f, lr = counts.detection()
    paired = counts.pool(counts.paired)
    doae = _ratio(counts.pool(counts.angle_sum), paired, np.nan)  # NaN: no pair to measure
    rde = _ratio(counts.pool(counts.rel_dist_sum), paired, np.nan)
    seld = np.array([_mean(np.array(terms)) for terms in zip(1 - f, doae / 180, rde)])
    return FrameScores(f=_mean(f), doa_error=_mean(doae), rel_dist_error=_mean(rde), seld=_mean(seld), er=er,
                       lr=_mean(lr), f_per_class=counts.per_class(f), doa_error_per_class=counts.per_class(doae),
                       rel_dist_error_per_class=counts.per_class(rde))


def _update_frames(c: _Counts, ref: SeldLabels, pred: SeldLabels, n_classes: int, doa_threshold: float,
                   rel_dist_threshold: float) -> None:
    ref_groups, pred_groups = _groups(ref, 1), _groups(pred, 1)
    ref_xyz, pred_xyz = ref.unit_vectors(), pred.unit_vectors()
    for frame in sorted({f for f, _ in ref_groups} | {f for f, _ in pred_groups}):
        loc_fp = loc_fn = 0
        for k in range(n_classes):
            r = ref_groups.get((frame, k), {}).get(frame, [])
            p = pred_groups.get((frame, k), {}).get(frame, [])
            c.n_ref[k] += len(r)
            missed, extra = max(0, len(r) - len(p)), max(0, len(p) - len(r))
            if r and p:
                cost = _angles(ref_xyz[r], pred_xyz[p])
                rows, cols = linear_sum_assignment(cost)
                angle = cost[rows, cols]
                d_ref = ref.distance[r][rows]
                rel = np.abs(pred.distance[p][cols] - d_ref) / d_ref
                wrong = int(np.sum((angle > doa_threshold) | (rel > rel_dist_threshold)))
                c.angle_sum[k] += angle.sum()
                c.rel_dist_sum[k] += rel.sum()
                c.paired[k] += len(rows)
                c.tp[k] += len(rows) - wrong
                c.fp_spatial[k] += wrong
                loc_fp += wrong
            c.fp[k] += extra
            c.fn[k] += missed
            c.paired_fn[k] += missed
            loc_fp, loc_fn = loc_fp + extra, loc_fn + missed
        c.close_unit(loc_fp, loc_fn)
