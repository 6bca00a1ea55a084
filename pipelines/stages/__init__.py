"""One module per kind of stage: its typed config, its Ray job and the checks it makes before any work."""

from __future__ import annotations

from typing import Any

from catalog.errors import RoomtoneError

EVENT_MAKERS = ("EventsConfig", "SyntheticEventsConfig", "AugmentConfig")  # stages whose rows are audio clips ...
CLIP_MAKERS = (*EVENT_MAKERS, "ScenesConfig")                               # ... and scenes, clips too


def check_input(field: str, ref: str | None, made: dict[str, Any], catalog, *, makers: tuple[str, ...],
                columns: tuple[str, ...], what: str) -> None:
    """The dataset a stage reads as `field` is `what`, found before anything runs: made by a stage
    of one of the config types `makers` when the same spec makes it, else holding `columns`."""
    if not ref:
        return
    if ref in made:
        maker = type(made[ref]).__name__
        if maker not in makers:
            raise RoomtoneError(f"{field} {ref!r} must be {what}, but this spec makes it with its "
                                f"{maker.removesuffix('Config').lower()} stage", f"name {what} as {field}")
        return
    snap = catalog.show(ref)
    if missing := [c for c in columns if c not in snap.features]:
        raise RoomtoneError(f"{field} {snap.ref} is not {what}: it has no {', '.join(missing)} column",
                            f"name {what} as {field}")


def check_clips(field: str, ref: str | None, made: dict[str, Any], catalog) -> None:
    """`check_input` for a stage that reads audio clips: events, scenes or mixtures."""
    check_input(field, ref, made, catalog, makers=CLIP_MAKERS, columns=("audio",),
                what="a dataset of audio clips (events, scenes or mixtures)")
