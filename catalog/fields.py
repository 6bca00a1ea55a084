"""Typed config fields every stage shares, so one bound lives in one place."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from catalog.errors import RoomtoneError
from catalog.names import DatasetRef, validate_name


def _as_field(check):
    """A pydantic check from a name check: the RoomtoneError's text becomes the field's message."""
    def run(value: str) -> str:
        try:
            return str(check(value))
        except RoomtoneError as exc:
            raise ValueError(str(exc)) from None
    return run


# A dataset a stage writes, and one it reads (NAME, NAME@vN or NAME@SNAPSHOT).
DatasetName = Annotated[str, AfterValidator(_as_field(validate_name))]
DatasetRefText = Annotated[str, AfterValidator(_as_field(DatasetRef.parse))]
# torch.manual_seed and numpy take seeds below 2**32 everywhere a stage passes one on.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
# Shards between 100 kB and 10 GB: smaller ones swamp the catalog, larger ones a worker.
ShardBytes = Annotated[int, Field(ge=100_000, le=10**10)]

__all__ = ["DatasetName", "DatasetRefText", "Seed", "ShardBytes"]
