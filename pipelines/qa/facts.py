"""Facts of one clip, read from its row metadata only (no audio): what every answer is built from.

Conventions (stated in every QA record): azimuth in degrees counter-clockwise from +x, the
array's front, so +90 is left and -90 right, in [-180, 180); elevation in degrees up from the
horizontal plane; distance in metres from the array centre; times in seconds from the clip
start. A moving source follows an arc at constant distance and elevation, its azimuth changing
at ``speed`` deg/s (positive = counter-clockwise seen from above), as in ``simulation.scenes``.

Coarse words are only given where they are unambiguous: a source within ``MARGIN_DEG`` of a
sector boundary gets no sector word, and comparisons (nearest, loudest, order) need a clear
winner. Sectors match the scene captions (``simulation.scenes.direction_words``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from simulation.augment import room_ids
from simulation.scenes import direction_words, stepped_azimuth

CONVENTION = ("azimuth: degrees counter-clockwise from +x (the array's front), +90 = left, -90 = right, "
              "in [-180, 180); elevation: degrees up from the horizontal plane; distance: metres from the "
              "array centre; times: seconds from the clip start; speed: degrees of azimuth per second, positive = "
              "counter-clockwise seen from above; levels: dB")
MARGIN_DEG = 5.0          # no coarse direction word this close to a sector boundary
DISTANCE_MARGIN_M = 0.25   # nearest / farthest need this much lead
LEVEL_MARGIN_DB = 3.0      # loudest needs this much lead
TIME_MARGIN_S = 0.1        # "which came first" needs onsets this far apart (one label frame, the labels' hop)
SIDES = ("in front", "to the left", "behind", "to the right")
SIDE_CENTRES = {"in front": 0.0, "to the left": 90.0, "behind": 180.0, "to the right": -90.0}
ROOM_SIZES = ("small", "medium-sized", "large")          # < 50, < 300, >= 300 m^3 (as the captions)
REVERB_WORDS = ("dry", "moderately reverberant", "very reverberant")  # < 0.3, < 0.8, >= 0.8 s


def wrap(azimuth: float) -> float:
    return (azimuth + 180.0) % 360.0 - 180.0


def side(azimuth: float) -> str | None:
    """The 90-degree sector word, or None within MARGIN_DEG of a sector boundary."""
    a = wrap(azimuth)
    if min(abs(wrap(a - b)) for b in (45.0, 135.0, -45.0, -135.0)) < MARGIN_DEG:
        return None
    return direction_words(a, 0.0)


def vertical(elevation: float) -> str | None:
    """'above' or 'below' the array's horizontal plane (SpatialSoundQA's sign rule), None within
    MARGIN_DEG of it."""
    if abs(elevation) < MARGIN_DEG:
        return None
    return "above" if elevation > 0 else "below"


def octant(azimuth: float, elevation: float) -> list[str]:
    """SpatialSoundQA-style words by sign: left/right, front/behind, above/below; a word is
    left out when the source lies within MARGIN_DEG of that axis' boundary."""
    a = wrap(azimuth)
    words = []
    if MARGIN_DEG <= abs(a) <= 180.0 - MARGIN_DEG:
        words.append("left" if a > 0 else "right")
    if abs(abs(a) - 90.0) >= MARGIN_DEG:
        words.append("front" if abs(a) < 90.0 else "behind")
    if vertical(elevation):
        words.append(vertical(elevation))
    return words


def distance_bin(distance: float) -> int:
    """SpatialSoundQA's 0.5 m bins: round(2 d)."""
    return int(round(2.0 * distance))


def room_size(volume: float) -> str:
    return ROOM_SIZES[0] if volume < 50 else ROOM_SIZES[1] if volume < 300 else ROOM_SIZES[2]


def reverb_word(rt60: float) -> str:
    return REVERB_WORDS[0] if rt60 < 0.3 else REVERB_WORDS[1] if rt60 < 0.8 else REVERB_WORDS[2]


@dataclass(frozen=True)
class EventFact:
    """One event as the row's metadata describes it (azimuth at onset for a moving source)."""

    class_name: str
    ontology_id: str | None
    event_id: str
    onset: float
    offset: float
    azimuth: float | None = None
    elevation: float | None = None
    distance: float | None = None
    speed: float = 0.0
    level_db: float | None = None
    snr_db: float | None = None
    power_db: float | None = None   # None: unknown (cut at the clip's end, or reverberated)
    ref: str = ""   # how questions name it: "Dog", or "second Dog" when the class recurs ("chirp tone": no "_")
    ordinal: int = 0   # 0: its class is heard once; k: the k-th of its class by onset (the ordinal in ref)
    nameable: bool = True   # False: another of its class starts within TIME_MARGIN_S; no ordinal tells them apart
    azimuth_step: float = 0.0   # deg: > 0 steps along a stored RIR grid's ring (simulation.scenes.PlannedEvent)
    step_phase: float = 0.0

    @property
    def name(self) -> str:
        return self.ref or spoken(self.class_name)

    @property
    def moving(self) -> bool:
        return self.speed != 0.0

    @property
    def end_azimuth(self) -> float:
        """Azimuth at the offset, along the arc (the plan's trajectory, on the grid if stepped)."""
        return stepped_azimuth(self.azimuth, self.speed * (self.offset - self.onset), self.azimuth_step,
                               self.step_phase)

@dataclass(frozen=True)
class Facts:
    """Everything the question families read. ``classes``: sorted distinct class names."""

    audio_id: str
    duration: float | None
    classes: tuple[str, ...]
    ontology_ids: dict[str, str | None]
    events: tuple[EventFact, ...] = ()
    spatial: bool = False
    max_polyphony: int | None = None
    rt60: float | None = None
    volume: float | None = None
    room_id: str | None = None
    caption: str | None = None
    clips: frozenset[str] = field(default_factory=frozenset)   # source recordings (event ids, parents)
    room_ids: tuple[str, ...] = ()   # each parent's rooms in parent order (a mixture's `room_ids`), else (room_id,)
    parents: tuple[str, ...] = ()
    rooms_recorded: bool = False     # the row has `room_ids` (rows made before they were recorded do not)

    @property
    def rooms(self) -> frozenset[str]:
        """Every room whose audio the clip holds."""
        return frozenset(self.room_ids)

    @property
    def mixture(self) -> bool:
        """Whether the clip holds more than one source clip's audio: two parents, or a room listed per
        parent of a mixture that was augmented again."""
        return len(self.parents) > 1 or len(self.room_ids) > 1

    def by_class(self, name: str) -> list[EventFact]:
        return [e for e in self.events if e.class_name == name]


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def spoken(class_name: str) -> str:
    """A class name as a sentence says it: "chirp_tone" (a label in snake case, as ESC-50's
    "door_wood_knock") -> "chirp tone". Label answers keep the class name itself."""
    return class_name.replace("_", " ")


def _named(events: list[EventFact]) -> tuple[EventFact, ...]:
    """Events (by onset) with names: the class, with an ordinal when it recurs; two of a class that
    start less than TIME_MARGIN_S apart cannot be told apart by an ordinal and are not nameable."""
    by_class: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        by_class.setdefault(e.class_name, []).append(i)
    out = list(events)
    for name, idx in by_class.items():
        tied = {k for i, j in zip(idx, idx[1:]) if events[j].onset - events[i].onset < TIME_MARGIN_S for k in (i, j)}
        for k, i in enumerate(idx):
            word = ORDINALS[k] if k < len(ORDINALS) else f"{k + 1}th"
            said = spoken(name)
            out[i] = replace(events[i], ref=said if len(idx) == 1 else f"{word} {said}", nameable=i not in tied,
                             ordinal=0 if len(idx) == 1 else k + 1)
    return tuple(out)


def _polyphony(events: tuple[EventFact, ...]) -> int | None:
    """Most events sounding at once, from the event spans (the rule "what else is heard while X"
    uses, so the two never disagree; frame labels round spans shorter than a frame away)."""
    if not events:
        return None
    times = sorted([(e.onset, 1) for e in events] + [(e.offset, -1) for e in events], key=lambda t: (t[0], t[1]))
    return int(max(np.cumsum([d for _, d in times])))


def _heard_speed(e: dict, azimuths: dict[tuple[int, int], float]) -> float:
    """The event's arc speed, or 0 when it never leaves its first point: a source planned to move on
    a stored RIR grid steps between grid points, and one that is short or slow never reaches the
    next. Its step fields say so exactly; rows made before them, by frame labels (two or more)
    that never change azimuth."""
    speed = float(e.get("speed") or 0.0)
    step = e.get("azimuth_step") or 0.0
    if speed and step > 0:
        end = stepped_azimuth(0.0, speed * (e["offset"] - e["onset"]), step, e.get("step_phase") or 0.0)
        return speed if end != 0.0 else 0.0
    if not speed or not azimuths:
        return speed
    heard = [azimuths[key] for f in range(round(e["onset"] / TIME_MARGIN_S), round(e["offset"] / TIME_MARGIN_S))
             if (key := (e["track"], f)) in azimuths]
    return 0.0 if len(heard) > 1 and len(set(heard)) == 1 else speed


def _finite(value: float | None) -> float | None:
    """None for a value that is unknown: missing, or NaN (an RT60 whose decay fit failed)."""
    return value if value is not None and np.isfinite(value) else None


def extract_facts(row: dict) -> Facts:
    """Facts from a scenes, mixtures or event-library row (columns as their stages write them)."""
    spatial = row.get("format") in ("foa", "mic") and (row.get("num_channels") or 0) > 1
    # frame labels: tracks never overlap, so (track, frame) finds an event's azimuth in a frame;
    # read only where a source is planned to move
    moving = spatial and any(e.get("speed") for e in row.get("events") or [])
    azimuths = {(l["track"], l["frame"]): round(l["azimuth"], 3) for l in row.get("labels") or []} if moving else {}
    events = _named(sorted((EventFact(
        e["class_name"], e.get("ontology_id"), e.get("event_id") or "", float(e["onset"]), float(e["offset"]),
        e.get("azimuth") if spatial else None, e.get("elevation") if spatial else None,
        e.get("distance") if spatial else None, _heard_speed(e, azimuths) if spatial else 0.0,
        e.get("level_db"), e.get("snr_db"), e.get("power_db"), azimuth_step=e.get("azimuth_step") or 0.0,
        step_phase=e.get("step_phase") or 0.0)
        for e in row.get("events") or []),
        key=lambda e: (e.onset, e.offset, e.class_name)))
    label = row.get("label")
    names = set(label if isinstance(label, list) else [label] if label else []) | {e.class_name for e in events}
    ontology = {e.class_name: e.ontology_id for e in events if e.ontology_id}
    if isinstance(label, str) and row.get("ontology_id"):
        ontology[label] = row["ontology_id"]
    dims = row.get("room_dims")
    # recordings: the events', and the rows an augment chain started from (`source_ids`; older
    # augmented rows name only their job's parents); an event-library row is its own recording
    clips = {e.event_id for e in events if e.event_id} | set(row.get("source_ids") or row.get("parent_ids") or [])
    if not row.get("events") and not row.get("source_ids"):
        clips.add(row["id"])
    return Facts(row["id"], row.get("duration"), tuple(sorted(names)),
                 {n: ontology.get(n) for n in sorted(names)}, events, spatial,
                 _polyphony(events) if row.get("events") is not None else None,
                 _finite(row.get("rt60")), float(np.prod(dims)) if dims else None, row.get("room_id"), row.get("caption"),
                 frozenset(clips), tuple(room_ids(row)), tuple(row.get("parent_ids") or ()),
                 row.get("room_ids") is not None)
