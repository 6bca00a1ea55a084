"""Train and test QA splits that share no source recording and no room.

A row's rooms are every room whose audio it holds (`Facts.rooms`: both parents' rooms for a
mixture, from its `room_ids`), so a mixture holding a held-out room's audio counts as that
room. The input's own test split seeds the test side (scenes already hold out the RIR set's
test rooms); an input without one holds out rooms (or, for rooms-less event libraries and their
mixtures, source recordings) drawn from (seed, room or recording id): a row goes to test when
any of them is held out. The train side keeps its rows; a test row that shares a room or a
recording with any train row is dropped and reported, so no event recording (event id, parent
clip) or room is ever on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulation.seeding import item_rng


@dataclass(frozen=True)
class Clip:
    """What the split needs of one input row."""

    id: str
    split: str                     # the input's split
    rooms: frozenset[str]          # every room whose audio the row holds
    clips: frozenset[str]          # source recordings: event ids, parent ids, or the row itself


def _held_out(seed: int, key: str, fraction: float) -> bool:
    return item_rng(seed, key, "qa-split").random() < fraction


def assign_splits(rows: list[Clip], test_fraction: float, seed: int) -> tuple[dict[str, list[Clip]], dict[str, str]]:
    """``({"train": [...], "test": [...]}, {dropped id: reason})``."""
    has_test = any(r.split != "train" for r in rows)

    def seeded_test(r: Clip) -> bool:
        if has_test:
            return r.split != "train"
        keys = r.rooms or r.clips or frozenset([r.id])
        return test_fraction > 0 and any(_held_out(seed, k, test_fraction) for k in sorted(keys))

    train = [r for r in rows if not seeded_test(r)]
    train_rooms = {k for r in train for k in r.rooms}
    train_clips = {k for r in train for k in r.clips}
    test, dropped = [], {}
    for r in rows:
        if not seeded_test(r):
            continue
        shared_room = sorted(r.rooms & train_rooms)
        shared_clip = sorted(r.clips & train_clips)
        if shared_room:
            dropped[r.id] = f"room {shared_room[0]} is also in the train split"
        elif shared_clip:
            dropped[r.id] = f"recording {shared_clip[0]} is also in the train split"
        else:
            test.append(r)
    out = {"train": train, "test": test}
    return {k: v for k, v in out.items() if v}, dropped
