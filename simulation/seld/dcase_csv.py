"""DCASE SELD metadata CSV: the exact text the challenge tools read and write.

No header; one row per active event per 100 ms label frame, rows in frame
order. Columns: ``frame,class,source,azimuth,elevation`` (2022/2023) or
``frame,class,source,azimuth,elevation,distance`` (2024). Every field is an
integer: azimuth and elevation in degrees (rounded half to even, azimuth then
wrapped into [-180, 180)), distance in centimetres (read back as metres).
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Iterable

import numpy as np

from .labels import Event, SeldLabels

__all__ = ["ClassMap", "dcase_rows", "format_dcase_csv", "parse_dcase_csv", "write_dcase_csv", "read_dcase_csv"]

_COLUMNS = ("frame", "class", "source", "azimuth", "elevation", "distance")


@dataclass(frozen=True)
class ClassMap:
    """Ordered class names; a name's position is its 0-based DCASE class index."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names or any(not isinstance(n, str) or not n for n in names):
            raise ValueError(f"names must be a non-empty sequence of non-empty strings; got {self.names!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"names must be unique; repeated: {repeated}")
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.indices([name])[0]

    def indices(self, names: Iterable[str]) -> list[int]:
        """Class indices of names; ValueError listing every unknown name."""
        names = list(names)
        unknown = sorted({n for n in names if n not in self.names}, key=str)
        if unknown:
            raise ValueError(f"unknown class names {unknown}; known classes are {list(self.names)}")
        return [self.names.index(n) for n in names]

    def name(self, index: int) -> str:
        if not (isinstance(index, (int, np.integer)) and 0 <= index < len(self.names)):
            raise ValueError(f"class index must be an integer in [0, {len(self.names) - 1}]; got {index!r}")
        return self.names[index]


def dcase_rows(labels: SeldLabels, with_distance: bool) -> np.ndarray:
    """(events, 5 or 6) int64 rows as they appear in the file: integer degrees, azimuth
    wrapped into [-180, 180), distance in integer cm."""
    azimuth = np.round(labels.azimuth).astype(np.int64)
    azimuth = np.where(azimuth >= 180, azimuth - 360, azimuth)
    cols = [labels.frame, labels.class_index, labels.track, azimuth, np.round(labels.elevation).astype(np.int64)]
    if with_distance:
        if labels.distance is None:
            raise ValueError("with_distance=True (2024 format) needs labels with distance")
        cols.append(np.round(labels.distance * 100.0).astype(np.int64))
    return np.stack(cols, axis=1) if len(labels) else np.zeros((0, len(cols)), dtype=np.int64)


def format_dcase_csv(labels: SeldLabels, *, with_distance: bool | None = None) -> str:
    """CSV text of labels; with_distance picks the 2024 format (default: if labels have distance)."""
    with_distance = labels.distance is not None if with_distance is None else with_distance
    return "".join(",".join(map(str, row)) + "\n" for row in dcase_rows(labels, with_distance).tolist())


def parse_dcase_csv(text: str, *, n_frames: int | None = None, source: str = "<text>") -> SeldLabels:
    """Labels from CSV text of 5 (2022/2023) or 6 (2024) integer columns; blank lines are skipped.

    source only names the input in error messages.
    """
    events: list[Event] = []
    width = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) not in (5, 6) or (width is not None and len(fields) != width):
            expected = f"{width}" if width is not None else "5 or 6"
            raise ValueError(f"{source} line {number}: expected {expected} comma-separated fields "
                             f"({', '.join(_COLUMNS)}); got {len(fields)}: {line!r}")
        width = len(fields)
        values: list[float | int] = []
        for name, field in zip(_COLUMNS, fields):
            try:
                values.append(int(field))
            except ValueError:
                raise ValueError(f"{source} line {number}: {name} must be an integer; got {field!r}") from None
        if width == 6:
            values[5] = values[5] / 100.0
        events.append(Event(*values))
    try:
        return SeldLabels.from_events(events, n_frames=n_frames)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def write_dcase_csv(labels: SeldLabels, path: str | PathLike, *, with_distance: bool | None = None) -> None:
    with open(path, "w", encoding="ascii", newline="") as f:
        f.write(format_dcase_csv(labels, with_distance=with_distance))


def read_dcase_csv(path: str | PathLike, *, n_frames: int | None = None) -> SeldLabels:
    with open(path, encoding="ascii") as f:
        return parse_dcase_csv(f.read(), n_frames=n_frames, source=str(path))
