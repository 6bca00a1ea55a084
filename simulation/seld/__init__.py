"""DCASE SELD labels, metadata CSV, multi-ACCDOA/ADPIT targets and metrics (numpy only).

Angles in degrees (azimuth counter-clockwise from +x in [-180, 180), elevation
up in [-90, 90]), distances in metres, 100 ms label frames.
"""

from .dcase_csv import ClassMap, dcase_rows, format_dcase_csv, parse_dcase_csv, read_dcase_csv, write_dcase_csv
from .labels import (
    LABEL_HOP_S,
    Event,
    SeldLabels,
    adpit_target,
    decode_multi_accdoa,
    multi_accdoa_target,
    polar_to_unit,
    unit_to_polar,
)
from .metrics import SEGMENT_FRAMES, FrameScores, SegmentScores, dcase2023_scores, dcase2024_scores

__all__ = [
    "LABEL_HOP_S",
    "SEGMENT_FRAMES",
    "ClassMap",
    "Event",
    "FrameScores",
    "SegmentScores",
    "SeldLabels",
    "adpit_target",
    "dcase2023_scores",
    "dcase2024_scores",
    "dcase_rows",
    "decode_multi_accdoa",
    "format_dcase_csv",
    "multi_accdoa_target",
    "parse_dcase_csv",
    "polar_to_unit",
    "read_dcase_csv",
    "unit_to_polar",
    "write_dcase_csv",
]
