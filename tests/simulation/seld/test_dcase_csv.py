"""DCASE metadata CSV: exact text, round trips in both formats, class names and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.seld import ClassMap, SeldLabels, format_dcase_csv, parse_dcase_csv, read_dcase_csv, write_dcase_csv

LABELS = SeldLabels.from_events([
    (12, 3, 1, -40.4, 10.5, 1.234),
    (0, 0, 0, 179.6, -20.0, 2.0),  # rounds to 180, written as -180
    (12, 3, 0, 90.0, 0.4, 0.5),
    (1, 11, 2, -180.0, 90.0, 3.999),
])
EXPECTED_2023 = "0,0,0,-180,-20\n1,11,2,-180,90\n12,3,0,90,0\n12,3,1,-40,10\n"
EXPECTED_2024 = "0,0,0,-180,-20,200\n1,11,2,-180,90,400\n12,3,0,90,0,50\n12,3,1,-40,10,123\n"


def test_exact_text() -> None:
    assert format_dcase_csv(LABELS, with_distance=False) == EXPECTED_2023
    assert format_dcase_csv(LABELS) == EXPECTED_2024
    assert format_dcase_csv(SeldLabels.from_events([])) == ""


@pytest.mark.parametrize(("with_distance", "expected"), [(False, EXPECTED_2023), (True, EXPECTED_2024)])
def test_file_round_trip(tmp_path: Path, with_distance: bool, expected: str) -> None:
    path = tmp_path / "fold4_room1_mix001.csv"
    write_dcase_csv(LABELS, path, with_distance=with_distance)
    assert path.read_bytes() == expected.encode("ascii")
    back = read_dcase_csv(path, n_frames=LABELS.n_frames)
    rounded = SeldLabels(LABELS.frame, LABELS.class_index, LABELS.track, [-180, -180, 90, -40], [-20, 90, 0, 10],
                         [2.0, 4.0, 0.5, 1.23] if with_distance else None)
    assert back == rounded
    assert format_dcase_csv(back) == expected


EVENT = st.tuples(st.integers(0, 600), st.integers(0, 12), st.integers(0, 5), st.integers(-180, 179),
                  st.integers(-90, 90), st.integers(1, 2000))


@settings(max_examples=50, deadline=None)
@given(st.lists(EVENT, max_size=20), st.booleans())
def test_integer_labels_round_trip_exactly(events: list[tuple], with_distance: bool) -> None:
    labels = SeldLabels.from_events([(*e[:5], e[5] / 100) if with_distance else e[:5] for e in events])
    assert parse_dcase_csv(format_dcase_csv(labels), n_frames=labels.n_frames) == labels


def test_parse_tolerates_blank_lines_and_spaces() -> None:
    labels = parse_dcase_csv("3, 1, 0, 20, -5\n\n4,1,0,21,-5\n")
    assert [tuple(e) for e in labels.events()] == [(3, 1, 0, 20.0, -5.0, None), (4, 1, 0, 21.0, -5.0, None)]


@pytest.mark.parametrize(("text", "message"), [
    ("0,1,0,20\n", r"<text> line 1: expected 5 or 6 comma-separated fields .* got 4"),
    ("0,1,0,20,5\n1,1,0,20,5,100\n", "line 2: expected 5 comma-separated fields"),
    ("0,1,0,20.5,5\n", "line 1: azimuth must be an integer; got '20.5'"),
    ("-1,1,0,20,5\n", r"<text>: frame\[0\] = -1 is out of range"),
    ("0,1,0,180,5\n", r"azimuth\[0\] = 180.0 is out of range: azimuth must be in \[-180, 180\) degrees"),
    ("0,1,0,20,91\n", r"elevation\[0\] = 91.0 is out of range"),
])
def test_parse_rejects_bad_rows(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_dcase_csv(text)


def test_distance_needed_for_2024_format() -> None:
    with pytest.raises(ValueError, match=r"with_distance=True \(2024 format\) needs labels with distance"):
        format_dcase_csv(parse_dcase_csv("0,1,0,20,5\n"), with_distance=True)


def test_class_map() -> None:
    classes = ClassMap(("femaleSpeech", "maleSpeech", "clapping"))
    assert len(classes) == 3 and classes.index("clapping") == 2 and classes.name(1) == "maleSpeech"
    assert classes.indices(["clapping", "femaleSpeech"]) == [2, 0]
    with pytest.raises(ValueError, match=r"unknown class names \['bark', 'siren'\]; known classes are"):
        classes.indices(["siren", "clapping", "bark"])
    with pytest.raises(ValueError, match=r"unknown class names \['Clapping'\]"):
        classes.index("Clapping")
    with pytest.raises(ValueError, match=r"class index must be an integer in \[0, 2\]; got 3"):
        classes.name(3)
    with pytest.raises(ValueError, match=r"names must be unique; repeated: \['a'\]"):
        ClassMap(("a", "b", "a"))
    with pytest.raises(ValueError, match="names must be a non-empty sequence"):
        ClassMap(())
    assert np.array_equal(classes.indices([]), [])
