"""One error type that the CLI prints as a single line: what is wrong and what to do."""

from __future__ import annotations


class RoomtoneError(Exception):
    """A user-facing failure: `problem` says what is wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


class NotFoundError(RoomtoneError):
    """A dataset, snapshot or path that does not exist."""


class SchemaMismatchError(RoomtoneError):
    """New shards whose schema differs from the dataset's existing snapshots."""


class StorageError(RoomtoneError):
    """A local or S3 location that cannot be read or written."""
