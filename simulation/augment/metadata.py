"""Metadata of a clip under augmentation: events, frame labels, caption, duration.

A clip's metadata is a dict shaped like a roomtone scenes row without its audio
(`events`: onset/offset s, azimuth/elevation deg, speed deg/s, azimuth_step and step_phase deg
(a source stepping along a stored RIR grid's ring, see `PlannedEvent`), level_db, power_db, track;
`labels`: frame labels on a `hop` s grid; `caption`; `label`: sorted class names;
`duration` s; `room_id`, `rt60`, `room_dims` and, on a mixture, `room_ids`). Every
function returns a new dict and touches only the keys present, so an event-library row
(no events or labels) passes through with its duration; mixing needs events, so
`one_event` gives such a row its one event first. Inputs are never modified; unchanged
event and label dicts may be shared with the input.
Angles follow DCASE: azimuth counter-clockwise from +x in [-180, 180) deg.
"""

from __future__ import annotations

import math
import re
from operator import itemgetter
from typing import Any

from ..scenes.labels import describe, frame_labels, sentence
from ..scenes.plan import PlannedEvent, ScenePlan, stepped_azimuth
from .spatial import azimuth_sign, caption_maps, pattern_angles, rotate_caption

__all__ = ["MIN_EVENT_S", "ONE_EVENT_KEYS", "clip_events", "describe_events", "forget_ambience", "forget_powers",
           "merge_meta", "one_event", "room_ids", "rotate_meta", "scale_levels", "source_ids", "speed_meta",
           "time_shift_meta"]

Meta = dict[str, Any]
MIX_TEMPLATES = ("{a} and {b}", "{a}, mixed with {b}", "{a}, along with {b}")
# the room words of `simulation.scenes.caption`, which end every scene caption
_ROOM_WORDS = r"in an? (?:small|medium-sized|large) (?:anechoic space|dry room|moderately reverberant room|" \
              r"very reverberant room)"
_ENDING = re.compile(rf"({_ROOM_WORDS})$")
_ANY_ROOM = re.compile(_ROOM_WORDS)
_REVERB = re.compile(r"(?:dry|moderately reverberant|very reverberant) room$")   # of one room phrase
# the event fields `one_event` gives a clip; a mono clip has no direction, distance or ambience (snr_db)
ONE_EVENT_KEYS = ("event_id", "class_name", "ontology_id", "track", "onset", "offset", "level_db", "power_db")
# what is left of an event cut shorter than this is dropped: onsets stored as float32 and then
# shifted leave slivers of a few ulps (an event on [4.0, 4.0000002] s) that no one hears
MIN_EVENT_S = 1e-3


def clip_events(events: list[dict], duration: float) -> list[dict]:
    """Events cut to [0, duration] s; a moving event cut at its start has its onset azimuth moved on.
    A source stepping on a grid ring starts at the grid point it sits on then, its phase keeping
    the later jumps where they were. A cut event's power and SNR (mean squares over its own span)
    are unknown for what is left of it; what is left shorter than `MIN_EVENT_S` is dropped."""
    out = []
    for ev in events:
        onset, offset = max(0.0, ev["onset"]), min(duration, ev["offset"])
        if offset - onset < MIN_EVENT_S:
            continue
        if (onset, offset) != (ev["onset"], ev["offset"]):
            ev = {**ev, **{key: None for key in ("power_db", "snr_db") if key in ev}}
        if onset != ev["onset"] and ev.get("speed"):
            ev = {**ev, **_moved_on(ev, ev["speed"] * (onset - ev["onset"]))}
        out.append({**ev, "onset": onset, "offset": offset})
    return out


def _moved_on(ev: dict, arc: float) -> dict:
    """The azimuth fields of a moving event after its arc has run `arc` deg."""
    step, phase = ev.get("azimuth_step") or 0.0, ev.get("step_phase") or 0.0
    moved = {"azimuth": stepped_azimuth(ev["azimuth"], arc, step, phase)}
    if step > 0:
        glide = arc + phase
        moved["step_phase"] = glide - step * round(glide / step)
    return moved


def _event(e: dict) -> PlannedEvent:
    return PlannedEvent(e["event_id"], e["class_index"], e["class_name"], e["track"], e["onset"], e["offset"],
                        e.get("level_db", 0.0), e["azimuth"], e["elevation"], e["distance"], e.get("speed", 0.0),
                        azimuth_step=e.get("azimuth_step") or 0.0, step_phase=e.get("step_phase") or 0.0)


def _by_onset(events: list[dict]) -> list[dict]:
    return sorted(events, key=itemgetter("onset", "track"))


def _plan(events: list[dict], duration: float, hop: float) -> ScenePlan:
    return ScenePlan(seed=0, duration=duration, tracks=1, polyphony=1, hop=hop, center=(0.0, 0.0, 0.0),
                     snr_db=None, noise_seed=0, events=tuple(map(_event, _by_onset(events))))


def describe_events(events: list[dict], text: str) -> str:
    """A scene caption for `events` (the scenes stage's wording) keeping the room words `text` ends
    with; `text` unchanged when it holds none or several rooms (a mixture's caption)."""
    room = _room_words(text)
    if room is None:
        return text
    body = describe(map(_event, _by_onset(events)))
    return sentence(body, room)


def _room_words(text: str) -> str | None:
    """The room words of a caption `describe_events` can rewrite (a scene's, ending with its one
    room); None for any other caption."""
    rooms = _ANY_ROOM.findall(text)
    return rooms[0] if len(rooms) == 1 and _ENDING.search(text) else None


def _reverb_reworded(text: str, rt60: float) -> str:
    """A caption whose room words say how reverberant an `rt60` (s) room is (the scenes'
    thresholds): every room phrase, as a mixture's caption names its parents' rooms and its rt60
    is known only when they share one; an anechoic space, or a caption without room words, is
    left as it is."""
    word = "dry" if rt60 < 0.3 else "moderately reverberant" if rt60 < 0.8 else "very reverberant"
    return _ANY_ROOM.sub(lambda room: _REVERB.sub(word + " room", room[0]), text)


def _recaption(meta: Meta, before: list[dict], after: list[dict]) -> Meta:
    """The caption redone from the events left after a cut, when the cut removed an event or
    shortened a moving one (whose end direction the caption names); otherwise it still holds.
    A caption that cannot be redone (a mixture's, an event library's) is dropped then: it would
    name sounds the clip no longer holds."""
    cut = len(after) != len(before) or any((a["onset"], a["offset"]) != (b["onset"], b["offset"])
                                           for a, b in zip(after, before) if b.get("speed"))
    if cut and meta.get("caption"):
        meta["caption"] = describe_events(after, meta["caption"]) if _room_words(meta["caption"]) else None
    return meta


def _finish(meta: Meta, events: list[dict]) -> Meta:
    meta["events"] = events
    if isinstance(meta.get("label"), list):
        meta["label"] = sorted({e["class_name"] for e in events})
    return meta


def _shift_labels(labels: list[dict], frames: int, n_frames: int, track_offset: int = 0) -> list[dict]:
    lo, hi = -frames, n_frames - frames  # the source frames that land inside the clip
    return [dict(l, frame=f + frames, track=l["track"] + track_offset) for l in labels
            if lo <= (f := l["frame"]) < hi]


def _n_frames(duration: float, hop: float) -> int:
    return int(math.ceil(round(duration / hop, 6)))


def _frames_of(samples: int, rate: int, hop: float) -> int:
    frames = samples / (rate * hop)
    if abs(frames - round(frames)) > 1e-9:
        raise ValueError(f"a time offset of {samples} samples is not a whole number of {hop} s label frames")
    return int(round(frames))


def rotate_meta(meta: Meta, pattern: int) -> Meta:
    """Every event and frame label direction (and arc speed) mapped by the rotation pattern."""
    out, sign = dict(meta), azimuth_sign(pattern)

    def turn(item: dict) -> dict:
        az, el = pattern_angles(pattern, item["azimuth"], item["elevation"])
        new = {**item, "azimuth": float(az), "elevation": float(el)}
        for key in ("speed", "step_phase"):  # a mirror turns the arc, and how far it ran, the other way
            if item.get(key) is not None:
                new[key] = sign * item[key]
        return new

    for key in ("events", "labels"):
        if out.get(key) is not None:
            out[key] = [turn(item) for item in out[key]]
    if out.get("caption") and out.get("events") is not None:
        # a scene's caption is redone from the turned events (exact, sector boundaries included);
        # a mixture's, which cannot be redone, has its direction words mapped
        if _room_words(out["caption"]) is not None:
            out["caption"] = describe_events(out["events"], out["caption"])
        else:
            # and is dropped where a source on a sector edge would get the wrong word
            named = _named_azimuths(meta["events"])
            out["caption"] = rotate_caption(out["caption"], pattern) if caption_maps(named, pattern) else None
    return out


def _named_azimuths(events: list[dict]) -> list[float]:
    """The directions a caption names: each placed event's at its onset and, moving, at its offset."""
    out = []
    for e in events:
        if e.get("azimuth") is not None:
            out.append(e["azimuth"])
            if e.get("speed"):
                out.append(_moved_on(e, e["speed"] * (e["offset"] - e["onset"]))["azimuth"])
    return out


def _raised(event: dict, db: float) -> dict:
    out = dict(event)
    for key in ("level_db", "power_db"):
        if out.get(key) is not None:
            out[key] += db
    return out


def scale_levels(meta: Meta, gain: float) -> Meta:
    """Event levels and powers (dB; a power left unknown stays so) raised by a linear gain applied
    to the whole clip."""
    out, db = dict(meta), 20.0 * math.log10(gain)
    if out.get("events") is not None:
        out["events"] = [_raised(e, db) for e in out["events"]]
    return out


def forget_powers(meta: Meta) -> Meta:
    """Event powers (`power_db`) and SNRs over the ambience (`snr_db`) unknown: the step changed each
    event's power, and the ambience's, by amounts it does not record (reverb: each sound's spectrum
    against the room's)."""
    out = dict(meta)
    if out.get("events") is not None:
        out["events"] = [{**e, **{key: None for key in ("power_db", "snr_db") if key in e}} for e in out["events"]]
    return out


def _clip_snr_unknown(meta: Meta) -> Meta:
    """A copy without the clip's ambience SNR (`noise_snr_db`, a scene's): a step moved audio in or
    out of the clip (zeros where the ambience was), mixed in another ambience, or added noise."""
    out = dict(meta)
    if "noise_snr_db" in out:
        out["noise_snr_db"] = None
    return out


def forget_ambience(meta: Meta) -> Meta:
    """Noise added to the whole clip: the ambience changed, so the clip's ambience SNR and each
    event's SNR over it (`snr_db`) are unknown; event powers stand."""
    out = _clip_snr_unknown(meta)
    if out.get("events") is not None:
        out["events"] = [{**e, "snr_db": None} if "snr_db" in e else e for e in out["events"]]
    return out


def time_shift_meta(meta: Meta, samples: int, rate: int, hop: float) -> Meta:
    """Content delayed by `samples` (negative: advanced), clip length kept, events cut at the ends."""
    out = _clip_snr_unknown(meta)
    dt = samples / rate
    moved = [{**e, "onset": e["onset"] + dt, "offset": e["offset"] + dt} for e in out.get("events") or []]
    events = clip_events(moved, out["duration"])
    if "labels" in out:
        out["labels"] = _shift_labels(out["labels"], _frames_of(samples, rate, hop), _n_frames(out["duration"], hop))
    return _finish(_recaption(out, moved, events), events) if "events" in out else out


def speed_meta(meta: Meta, factor: float, hop: float) -> Meta:
    """Content played `factor` times faster, clip length kept: times / factor, arc speeds * factor,
    the RT60 / factor (the caption's reverberance word follows it).

    Frame labels are recomputed from the rescaled events on the same `hop` grid (the
    scenes stage's rule: frames round(onset / hop) .. round(offset / hop), positions at
    frame centres).
    """
    out = _clip_snr_unknown(meta)
    if out.get("rt60") is not None and math.isfinite(out["rt60"]):  # the reverberation plays faster too
        out["rt60"] = out["rt60"] / factor
        if out.get("caption"):
            out["caption"] = _reverb_reworded(out["caption"], out["rt60"])
    elif out.get("caption") and _ANY_ROOM.search(out["caption"]):
        out["caption"] = None   # its rooms (a two-room mixture's) now sound less reverberant, by no recorded rt60
    if "events" not in out:
        return out
    scaled = [{**e, "onset": e["onset"] / factor, "offset": e["offset"] / factor,
               **({"speed": e["speed"] * factor} if "speed" in e else {})} for e in out["events"]]
    events = clip_events(scaled, out["duration"])
    if "labels" in out:
        out["labels"] = [l.to_dict() for l in frame_labels(_plan(events, out["duration"], hop))]
    return _finish(_recaption(out, scaled, events), events)


def room_ids(meta: Meta) -> list[str]:
    """The rooms whose audio a clip holds: its `room_ids` (a mixture's), else [its `room_id`], else none."""
    if meta.get("room_ids") is not None:
        return list(meta["room_ids"])
    return [meta["room_id"]] if meta.get("room_id") else []


def source_ids(meta: Meta) -> list[str]:
    """The rows of the first dataset in an augmentation chain that a clip's audio comes from: its
    `source_ids` (an augmented row's), else its own id. Two copies of one recording, augmented in
    different jobs, share them, so QA splits keep them on one side."""
    return list(meta["source_ids"]) if meta.get("source_ids") else [meta.get("id")]


def one_event(meta: Meta, power_db: float | None = None) -> Meta:
    """An event-library row (one labelled clip, no `events`) in the scenes' form, so a mixture can
    describe both parents: one event on track 0 over the whole clip, named by the row's `label`
    and `ontology_id` (which move into the event), at level 0 dB and power `power_db` (the clip's
    mean square, dB re full scale; None: unknown); `label` becomes the list of class names and
    the caption defaults to the label. The event's id is the recording's (`source_ids`: an earlier
    augment job's copy is still that recording). A row that has `events` is returned as it is."""
    if "events" in meta:
        return meta
    event = dict(zip(ONE_EVENT_KEYS, (source_ids(meta)[0], meta["label"], meta.get("ontology_id"), 0, 0.0,
                                      float(meta["duration"]), 0.0, power_db)))
    out = {k: v for k, v in meta.items() if k != "ontology_id"}
    return {**out, "events": [event], "label": [meta["label"]], "caption": meta.get("caption") or meta["label"]}


def merge_meta(meta: Meta, partner: Meta, offset: int, rate: int, hop: float, gain_a: float, gain_b: float,
               template: int) -> Meta:
    """The mixture's metadata: both parents' events and labels, the partner's shifted by
    `offset` samples and its tracks renumbered after the first clip's, levels raised by each
    parent's gain, captions joined with one of `MIX_TEMPLATES`. A parent without events (an
    event-library row) counts as its one event (`one_event`; its power unknown here).

    `room_ids` lists the first clip's rooms, then the partner's (a room twice when both
    parents come from it). `room_id` stays the first clip's, as provenance only; when the
    rooms differ, no single room describes the mixture, so `rt60` and `room_dims` become None;
    either is None too where the parents state different values (a sped-up parent's rt60).
    `license` and `source_file`, where present, name both parents' ("A; B" when they differ).
    An event cut at the clip's end loses its power and SNR (see `clip_events`).
    """
    # each clip's ambience now holds the other's: event SNRs over it are unknown
    a, b = (forget_ambience(scale_levels(one_event(m), g)) for m, g in ((meta, gain_a), (partner, gain_b)))
    tracks = [e["track"] for e in a["events"]] + [l["track"] for l in a.get("labels") or []]
    first = max(tracks) + 1 if tracks else 0
    dt = offset / rate
    moved = [{**e, "onset": e["onset"] + dt, "offset": e["offset"] + dt, "track": e["track"] + first}
             for e in b["events"]]
    out = dict(a)  # its clip SNR already unknown (forget_ambience)
    rooms = room_ids(a) + room_ids(b)
    if rooms:
        out["room_ids"] = rooms
    for key in ("rt60", "room_dims"):  # a sped-up parent decays faster than its room: only its rt60 differs
        if key in out and (len(set(rooms)) > 1 or a.get(key) != b.get(key)):
            out[key] = None
    for key in ("license", "source_file"):  # provenance: a mixture owes both parents' terms
        if out.get(key) is not None and b.get(key) not in (None, out[key]):
            out[key] = f"{out[key]}; {b[key]}"
    kept = clip_events(moved, a["duration"])
    events = a["events"] + kept
    if "labels" in out:
        # both lists are in (frame, track) order and every partner track comes after the first
        # clip's, so a stable sort on the frame alone gives (frame, track) order
        out["labels"] = sorted(a["labels"] + _shift_labels(b.get("labels") or [], _frames_of(offset, rate, hop),
                                                           _n_frames(a["duration"], hop), first),
                               key=itemgetter("frame"))
    if a.get("caption") is not None and b.get("caption") is not None:
        heard = _recaption({"caption": b["caption"], "duration": a["duration"]}, moved, kept)["caption"]
        out["caption"] = MIX_TEMPLATES[template].format(a=a["caption"], b=heard) if heard else None
    return _finish(out, sorted(events, key=itemgetter("onset", "track")))
