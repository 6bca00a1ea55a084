"""Frame labels and a templated caption for a planned scene.

Labels follow the DCASE layout on the plan's hop grid (100 ms): one row per
active event per frame. Frame k covers [k hop, (k + 1) hop) and carries the
source position at the frame centre, (k + 0.5) hop, which is also the
average position the audio of a moving source passes through in that frame.
Angles: azimuth counter-clockwise from +x in [-180, 180) deg, elevation up in
[-90, 90] deg, distance in m, all relative to the array centre.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..acoustics import direct_path_labels
from ..rooms import Room
from ..seld import SeldLabels, dcase_rows
from .plan import PlannedEvent, ScenePlan

__all__ = ["FrameLabel", "caption", "direction_words", "frame_labels", "to_dcase_rows", "to_seld_labels"]


@dataclass(frozen=True)
class FrameLabel:
    """One active event in one frame: frame index, class, track, azimuth deg, elevation deg, distance m."""

    frame: int
    class_index: int
    track: int
    azimuth: float
    elevation: float
    distance: float

    def to_dict(self) -> dict[str, Any]:
        # spelled out: dataclasses.asdict deep-copies field by field, 10x slower for a scene's thousands of labels
        return {"frame": self.frame, "class_index": self.class_index, "track": self.track,
                "azimuth": self.azimuth, "elevation": self.elevation, "distance": self.distance}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameLabel:
        return cls(**data)


def _event_frames(event: PlannedEvent, hop: float) -> np.ndarray:
    return np.arange(int(round(event.onset / hop)), int(round(event.offset / hop)))


def frame_labels(plan: ScenePlan) -> list[FrameLabel]:
    """Labels of every active event in every frame, sorted by (frame, track)."""
    rows: list[FrameLabel] = []
    center = np.asarray(plan.center)[None]
    for event in plan.events:
        frames = _event_frames(event, plan.hop)
        points = event.position_at((frames + 0.5) * plan.hop, plan.center).reshape(-1, 3)
        az, el, dist = (v[:, 0] for v in direct_path_labels(points, center))
        rows += [FrameLabel(int(f), event.class_index, event.track, float(a), float(e), float(d))
                 for f, a, e, d in zip(frames, az, el, dist)]
    return sorted(rows, key=lambda r: (r.frame, r.track))


def to_seld_labels(labels: Sequence[FrameLabel], n_frames: int | None = None) -> SeldLabels:
    """The frame labels as `simulation.seld` labels (for CSVs, targets and metrics)."""
    return SeldLabels.from_events([(r.frame, r.class_index, r.track, r.azimuth, r.elevation, r.distance)
                                   for r in labels], n_frames=n_frames)


def to_dcase_rows(labels: Sequence[FrameLabel]) -> list[tuple[int, int, int, int, int, int]]:
    """DCASE 2024 CSV rows: frame, class, track, azimuth (int deg), elevation (int deg), distance (int cm)."""
    return [tuple(row) for row in dcase_rows(to_seld_labels(labels), with_distance=True).tolist()]


def direction_words(azimuth: float, elevation: float) -> str:
    """'in front', 'to the left', 'behind', 'to the right' (90 deg sectors), with 'above' / 'below' past 30 deg."""
    a = (azimuth + 180.0) % 360.0 - 180.0
    side = ("in front" if -45 <= a < 45 else "to the left" if 45 <= a < 135
            else "to the right" if -135 <= a < -45 else "behind")
    if elevation > 30:
        return f"above and {side}" if side != "in front" else "above, in front"
    if elevation < -30:
        return f"below and {side}" if side != "in front" else "below, in front"
    return side


_SIDE_NOUNS = {"in front": "the front", "to the left": "the left", "behind": "the back", "to the right": "the right"}


def _room_words(room: Room, rt60: float | None = None) -> str:
    size = "small" if room.volume < 50 else "medium-sized" if room.volume < 300 else "large"
    if max(room.beta) == 0:
        return f"in a {size} anechoic space"
    rt60 = room.rt60() if rt60 is None else rt60
    reverb = "dry" if rt60 < 0.3 else "moderately reverberant" if rt60 < 0.8 else "very reverberant"
    return f"in a {size} {reverb} room"


# uncountable heads of class names (AudioSet's "Ambient music", "Male speech", "Jazz"): no article
_MASS_NOUNS = {"music", "speech", "noise", "wind", "rain", "water", "applause", "laughter", "thunder", "traffic",
               "static", "hum", "chatter", "babble", "hubbub", "gunfire", "silence", "rumble", "hiss", "steam",
               "distortion", "feedback", "tinnitus", "livestock", "cutlery", "percussion", "locomotion", "equipment",
               "fire", "tape", "velcro", "liquid", "ambience",
               # genres: "Heavy metal", "Country", "Funk carioca"
               "metal", "country", "carioca",
               # AudioSet's genres named without "music"
               "afrobeat", "bluegrass", "blues", "cumbia", "disco", "dub", "dubstep", "electro", "electronica",
               "flamenco", "funk", "garage", "grunge", "jazz", "jungle", "kuduro", "kwaito", "reggae", "rock", "ska",
               "techno"}

# plural heads that do not end in "s"
_PLURAL_NOUNS = {"cattle", "timpani", "people"}

# AudioSet names whose first synonym misreads in a caption ("a walk is heard", "an inside is heard"):
# the words a caption uses instead
_PROSE_NAMES = {"Walk, footsteps": "footsteps", "Canidae, dogs, wolves": "dogs",
                "Bird flight, flapping wings": "flapping wings", "Fill (with liquid)": "filling",
                "A capella": "a cappella singing",
                "Inside, small room": "small-room ambience", "Inside, large room or hall": "large-hall ambience",
                "Inside, public space": "indoor public-space ambience",
                "Outside, urban or manmade": "urban outdoor ambience",
                "Outside, rural or natural": "rural outdoor ambience"}

# first words of AudioSet names that keep their capital inside a sentence: proper nouns and brands
_PROPER = {"Afrobeat", "Carnatic", "Christian", "Christmas", "French", "Hammond", "Mellotron", "Middle", "Rhodes",
           "Velcro"}


def _prose_name(class_name: str) -> str:
    """A class name as prose writes it: the first of AudioSet's synonyms ('Gunshot, gunfire' ->
    'gunshot', 'Keyboard (musical)' -> 'keyboard'; `_PROSE_NAMES` where that misreads), its
    sentence-case capital dropped ('Bass drum' -> 'bass drum'), while proper nouns ('French horn')
    and acronyms ('UK garage') keep theirs."""
    if class_name in _PROSE_NAMES:
        return _PROSE_NAMES[class_name]
    name = class_name.replace("_", " ").strip()
    name = re.split(r"\s*[,(]", name, maxsplit=1)[0] or name
    first = name.split(" ", 1)[0]
    if first in _PROPER or not first[1:].islower():
        return name
    return name[0].lower() + name[1:]


def default_phrase(class_name: str) -> str:
    """'siren' -> 'a siren is heard', 'footsteps' -> 'footsteps are heard', 'clicking' -> 'clicking is heard',
    'Ambient music' -> 'ambient music is heard', 'Bass drum' -> 'a bass drum is heard', 'Music of Africa'
    -> 'music of Africa is heard', 'Drum and bass' -> 'drum and bass is heard' (AudioSet's "X and Y"
    names are genres)."""
    name = _prose_name(class_name)
    core = re.split(r" (?:of|for|on) ", name, maxsplit=1)[0]
    head = core.split()[-1].lower() if core else ""
    if " and " in name or name.endswith("ing") or head in _MASS_NOUNS:
        return f"{name} is heard"
    if head in _PLURAL_NOUNS or name.endswith("s") and not name.endswith(("ss", "us")):
        return f"{name} are heard"
    first = name.split(" ", 1)[0]
    if len(first) > 1 and first.isupper():  # an acronym, said letter by letter: "an MP3"
        vowel = first[0] in "AEFHILMNORSX"
    else:
        vowel = name[:1].lower() in "aeiou" and not name.lower().startswith(("uk", "uni", "use", "usu", "eu", "one"))
    return f"{'an' if vowel else 'a'} {name} is heard"


def _phrase(event: PlannedEvent, phrases: Mapping[str, str]) -> str:
    what = phrases.get(event.class_name) or default_phrase(event.class_name)
    if not event.moving:
        return f"{what} {direction_words(event.azimuth, event.elevation)}"
    start = direction_words(event.azimuth, event.elevation)
    end = direction_words(float(event.azimuth_at(event.offset)), 0.0)
    return f"{what} {start}, moving" + ("" if start.endswith(end) else f" towards {_SIDE_NOUNS[end]}")


def caption(plan: ScenePlan, room: Room, phrases: Mapping[str, str] | None = None, max_events: int = 3,
            rt60: float | None = None) -> str:
    """A one-sentence description, e.g. 'a dog barks to the left while a bell rings behind, in a large ...'.

    phrases: class name -> clause ('dog' -> 'a dog barks'); default default_phrase(class).
    At most `max_events` clauses, in onset order: each class's first event before a second event of
    any class, repeats of the same clause dropped.
    Room words: size from volume (< 50, < 300 m^3), reverberance from `rt60` (s; give the RT60
    the row records, e.g. one measured on the room's RIRs, so caption and metadata agree),
    else the Sabine estimate.
    """
    return sentence(describe(plan.events, phrases, max_events), _room_words(room, rt60))


def sentence(body: str, room_words: str) -> str:
    """The caption from its clauses and its room words ('silence ...' when there are no clauses)."""
    return f"{body}, {room_words}" if body else f"silence {room_words}"


def describe(events: Iterable[PlannedEvent], phrases: Mapping[str, str] | None = None, max_events: int = 3) -> str:
    """The caption's clauses for events in onset order ('' for none): the first event of each class
    comes before any class's second, so a clip of three ambient beds and a cymbal names the cymbal
    (it named three beds). Clauses whose events overlap the first one's follow it after "while",
    later ones after ", then"."""
    events = list(events)
    firsts = sorted({e.class_name: i for i, e in reversed(list(enumerate(events)))}.values())
    picked: dict[int, str] = {}
    for i in firsts + sorted(set(range(len(events))) - set(firsts)):
        if len(picked) == max_events:
            break
        clause = _phrase(events[i], phrases or {})
        if clause not in picked.values():
            picked[i] = clause
    if not picked:
        return ""
    order = sorted(picked)
    clauses = [picked[i] for i in order]
    spans = [(events[i].onset, events[i].offset) for i in order]
    during = [c for c, (onset, _) in zip(clauses[1:], spans[1:]) if onset < spans[0][1]]  # onset order: a prefix
    later = clauses[1 + len(during):]
    return clauses[0] + (f" while {_and(during)}" if during else "") + (f", then {_and(later)}" if later else "")


def _and(clauses: list[str]) -> str:
    """'a, b and c'; with a serial comma where a clause holds one ('heard to the left, moving, and
    clicking ...'), which would otherwise read as moving and clicking."""
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + ("," if any("," in c for c in clauses[:-1]) else "") + f" and {clauses[-1]}"
