"""Dataset names and ``name@snapshot`` references, validated before they touch storage."""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.errors import RoomtoneError

# Also a valid SQL identifier, so every dataset can be queried as a view of the same name.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise RoomtoneError(
            f"dataset name {name!r} is invalid",
            "use 1-63 lowercase letters, digits and underscores, starting with a letter, e.g. 'demo_tones'")
    return name


@dataclass(frozen=True)
class DatasetRef:
    """``name`` (the current snapshot), ``name@<snapshot id>`` or ``name@v<N>`` (version N: the
    snapshot's sequence number)."""

    name: str
    snapshot: str | None = None

    @classmethod
    def parse(cls, text: "str | DatasetRef") -> "DatasetRef":
        if isinstance(text, DatasetRef):
            return text
        name, sep, snap = str(text).strip().partition("@")
        validate_name(name)
        if sep and not re.fullmatch(r"\d+|v\d+|latest", snap):
            raise RoomtoneError(f"snapshot {snap!r} in {text!r} is invalid",
                                "use name@<snapshot id>, name@v<N> or name@latest")
        return cls(name, None if snap in ("", "latest") else snap)

    def __str__(self) -> str:
        return f"{self.name}@{self.snapshot}" if self.snapshot else self.name

