"""Open-ended tuples from a language model behind an OpenAI-compatible endpoint, checked
against the facts: an answer that contradicts a class, a count, a direction, a motion or an order
is rejected and counted, never kept.

The check reads the answer and what its question presupposes (a yes/no question only when the
answer says yes), in the common phrasings: orders ("A before/then/precedes B", "A after/follows
B", "After A, B", "A ... later B", "A is heard first", "A is the earliest sound", "First, A", "The
clip begins with A"; "the first A" names an event, claims nothing; "not before", "not the first"
claim nothing), counts in digits or words ("a single", "a pair of", "three", "three Dogs"; not
"barks twice": one event may hold several barks), directions ("the back", "the rear" and "ahead"
too; denied ones, "not on the left"; azimuths and elevations in degrees, distances in metres),
motion ("moves", "static", "clockwise"), times ("starts at 0.5 s", "from 2.0s-3.0s") and the
nearest or farthest ("the closest source", "closer than the Bell") said of each class named (per
comma part and and-segment, or of every class after "both"), sounds said to overlap that never do
(or never to overlap that do), any class of the clip said to be absent ("there is no Bell",
"there isn't a Bell"), and any class the clip lacks unless denied: the dataset's classes and, with
an ontology, its sound sources (not the clip's ancestors and descendants, nor the descriptive
trees). Counts are read by what they count (events, kinds, or the most at once where the phrase
says so); an answer naming no class speaks of its question's one class ("It is on the right"). A
sentence it cannot attribute is kept, not guessed at.

The prompt follows LTU's instruction generation (events with their times, a description,
one JSON object per line with keys "q" and "a") and adds the spatial facts. The API key is
read from the environment variable the config names, sent only in the request header, and
never stored or logged. Standard library HTTP only.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from catalog.errors import RoomtoneError
from pipelines.qa.facts import DISTANCE_MARGIN_M, ORDINALS, TIME_MARGIN_S, EventFact, Facts, octant, side
from pipelines.qa.families import QA, SPATIAL_NOTE, answer
from pipelines.qa.ontology import Ontology, alternatives

SYSTEM = ("You write question-answer pairs about an audio clip for training an audio language model. The user "
          "gives the exact facts of the clip. Write {n} different open-ended questions that need step-by-step "
          "thinking, with step-by-step answers that use only the given facts (which sounds, when, how many, "
          "where, moving or not, the room). Never add sounds, counts, directions or orders that the facts do not "
          "state. Output one JSON object per line with key \"q\" for the question and \"a\" for the answer, and "
          "nothing else.")
NUMBERS = {"one": 1, "a single": 1, "two": 2, "a pair of": 2, "a couple of": 2, "three": 3, "four": 4, "five": 5,
           "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
NUMBER = r"\b(\d+|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
COUNT_RE = re.compile(NUMBER + r"\s+"
                      r"(?:(?:distinct|different|separate|individual|unique|sound|audio|overlapping|simultaneous|"
                      r"moving|static|stationary)\s+)*(?:events?|sounds?|sources?|kinds?|types?|classes)\b", re.I)
# "three Dogs", "two loud Bells": a count of one class (adjectives from this list may stand between)
CLASS_COUNT_GAP = r"\s+(?:(?:distinct|different|separate|individual|loud|quiet|soft|faint|short|long|brief|moving|" \
                  r"static|stationary)\s+)*"
SIMULTANEOUS = r"at once|at the same time|simultaneous\w*|overlap\w*|concurrent\w*"
AT_ONCE_RE = re.compile(r"\b(?:" + SIMULTANEOUS + r"|at a time)", re.I)   # "one at a time" counts the most at once
COUNT_DENIED_RE = re.compile(r"\b(?:no|not|never)\s+(?:(?:more|fewer|less)\s+than\s+)?$", re.I)
AT_MOST_RE = re.compile(r"\b(?:at most|up to|no more than|(?:a )?maximum of)\s+$", re.I)
MOVING_RE = re.compile(r"\bmov(?:es?|ing)\b", re.I)
STATIC_RE = re.compile(r"\b(?:static|stationary|still)\b", re.I)
# "the back", "the rear" and "ahead" are behind and front ("comes back" and "back and forth" are no direction)
DIRECTION_WORDS = {"back": "behind", "rear": "behind", "ahead": "front"}
# "right after", "right from the start", "only the Bell is left": no direction
DIRECTION_RE = re.compile(r"\b((?<!\bis )(?<!\bare )left(?!\s+over\b)|"
                          r"right(?!\s+(?:after|before|away|as|at|when|then|now|from)\b)|front|behind|above|"
                          r"(?<=the )back|(?<=the )rear|ahead|"
                          r"below)\b", re.I)
CLAUSE_RE = re.compile(r"(?<!\d)\.(?!\d)|[;!?\n]")   # "1.5 m" is no sentence end
PART_RE = re.compile(r"[,:]")
SEGMENT_RE = re.compile(r"\b(?:and|but|while|whereas)\b", re.I)
EVERY_RE = re.compile(r"\bboth\b|\b(?:all|each) of them\b|\ball (?:of )?(?:the )?(?:sounds|events|sources)\b|"
                      r"\b(?:every|each) (?:sound|event|source)\b", re.I)
# ordering words between two class mentions: "a <word> b" says a starts before (or after) b
RELATIONS = {"before": "before", "precedes": "before", "precede": "before", "preceding": "before",
             "followed by": "before", "then": "before", "earlier than": "before", "prior to": "before",
             "later": "before", "afterwards": "before", "afterward": "before", "subsequently": "before",
             "after": "after", "follows": "after", "follow": "after", "following": "after", "preceded by": "after",
             "later than": "after"}
RELATION_RE = re.compile(r"\b(" + "|".join(sorted(RELATIONS, key=len, reverse=True)) + r")\b", re.I)
OBJECT_GAP_RE = re.compile(r"\s+(?:[\w'-]+\s+){0,2}")   # "before the Dog": at most two words to the object
OPENS_RE = re.compile(r"\b(?:begins|starts|opens)\s+with\s+(?:the\s+|an?\s+)?", re.I)
ENDS_RE = re.compile(r"\b(first|last|earliest|latest)\b", re.I)   # "A is heard first", "B comes last"
ENDS = {"earliest": "first", "latest": "last"}
REPEATS_RE = re.compile(r"\b(?:twice|times|again|repeatedly)\b", re.I)   # "first ..." then lists occurrences
# a present class denied: "there is no Bell", "without a Bell", "there isn't a Bell", "it does not contain any
# Bell", "we cannot hear the Bell"; "the Bell is absent", "... cannot be heard" ("not only the Dog", "not heard
# until the Dog" and "the Dog, not the Bell, comes first" deny nothing)
_NOT_WORD = r"(?:(?:hear|heard|contain|contains|include|includes|feature|features|detect|notice|find|have|has|" \
            r"there|is|are|seem|seems|appear|appears|to|be)\s+)"   # "does not overlap the Bell" denies nothing
DENIED_BEFORE_RE = re.compile(r"(?:\bno|\bwithout|(?:\bnot|n't)\s+(?:" + _NOT_WORD + r"{0,2}?(?:a|an|any)|"
                              + _NOT_WORD + r"{1,2}?the))\s+(?:other\s+)?$", re.I)
CONTRASTED_RE = re.compile(r"\bnot\s+(?:the\s+|an?\s+)?$", re.I)   # "the Dog, not the Bell, ...": no claim of the Bell
WHEN_BEFORE_RE = re.compile(r"\b(?:while|when|whenever|until|before|after|once|as)\s+(?:the\s+|an?\s+)?$", re.I)
SPEAKS_OF_TIME = r"\s+(?:until|before|after|while|when|once|at\s+first|yet|then|again|together|alongside|with|" \
                 + SIMULTANEOUS + r")\b"   # "not heard at the same time as the Bell": no absence
NOT_TIME_RE = re.compile(r"(?!" + SPEAKS_OF_TIME + r")", re.I)   # "we do not hear the Bell until ...": no denial
DENIED_AFTER_RE = re.compile(r"(?:\s+(?:is|are|was|were)\s+(?:absent|missing|silent|not\s+(?:present|heard|audible|"
                             r"there|in\s+the\s+(?:clip|recording|audio)))|\s+(?:cannot|can't|can\s+not)\s+be\s+"
                             r"heard)\b(?!" + SPEAKS_OF_TIME + ")", re.I)   # "not heard until ..." speaks of time
TOGETHER_RE = re.compile(r"\b(?:" + SIMULTANEOUS + r"|together)\b", re.I)   # an overlap claimed
SEVERAL_RE = re.compile(r"\b(?:both|two|three|several|multiple|many|all|some)\b", re.I)   # ... of sounds unnamed
# a motion claimed of a class: "the Dog moves", "is static"; "moves clockwise" (seen from above: azimuth falling)
MOTION_RE = re.compile(r"\b(?:(mov(?:es|ing))|(static|stationary|motionless))\b", re.I)
TURN_RE = re.compile(r"\b(counter-?clockwise|anti-?clockwise|clockwise)\b", re.I)
# a claim negated: "do not overlap", "never at the same time", "isn't on the left" (up to three words between)
NEGATED_RE = re.compile(r"(?:\b(?:not|never|no\s+longer)|n't)\s+(?:\w+\s+){0,3}$", re.I)
# "azimuth 80 degrees", "at -100°" (not a speed: "30 degrees per second"); "1.5 m", "2 metres away" (not a room's
# size: "a 5 m wide room", "60 cubic metres")
DEGREES_RE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*(?:°|degrees?\b|deg\b)(?!\s*(?:per\b|/|a\s+second))", re.I)
ANGLE_KIND_RE = re.compile(r"\b(azimuth|elevation)\b", re.I)
VERTICAL_RE = re.compile(r"\s+(above|below|up|down)\b", re.I)
METRES_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:m|metres?|meters?)\b(?!\s*(?:\^|[²³]|wide|long|high|tall|"
                       r"deep|by|x\b|×|per\b|/|closer|nearer|farther|further|more|less|than|apart|"
                       r"behind\s+the|in\s+front\s+of\s+the))", re.I)
CUBIC_RE = re.compile(r"\b(?:cubic|square)\s*$", re.I)
# a time said of a class: "starts at 0.5 s", "from 0.5s-1.5s", "until 3 s" (not "lasts 1 s", "0.5 s later")
TIME_RE = re.compile(r"\b(?:at|from|until|till|to|around|about|approximately|roughly)\s+(?:t\s*=\s*)?"
                     r"(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b|(?<=\d)(?:\s*s)?\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)\s*"
                     r"(?:s|sec|secs|seconds?)\b", re.I)
ROOM_TIME_RE = re.compile(r"\b(?:rt60|reverb\w*|decay\w*|echo\w*)\b", re.I)
# the nearest or farthest source, or one nearer or farther than another
NEAREST_RE = re.compile(r"\b(closest|nearest|farthest|furthest)\b", re.I)
NEARER_RE = re.compile(r"\b(closer|nearer|farther|further)\b(?:\s+[\w']+){0,4}?\s+than\b", re.I)
ORDINAL_BEFORE_RE = re.compile(r"\b(" + "|".join(ORDINALS) + r")\s+$", re.I)   # "the second Dog": one event
ARTICLE_RE = re.compile(r"\b(?:the|a|at|its|their)\s+$", re.I)   # "the first Dog", "at last": no claim
# "the first sound", "the last one to be heard": a claim about the class named before it (or, with
# none before, the one after: "The first sound is the Bell")
ENDS_NOUN_RE = re.compile(r"\s+(?:(?:sound|event|source|noise|one|thing)s?|to)\b(?![_-])", re.I)  # not noise_burst
# AudioSet trees that name how a sound sounds or reaches the array (Noise, Echo, Ding, Rumble), not a source:
# an answer may use their words about any sound
DESCRIPTIVE_TREES = ("Source-ambiguous sounds", "Channel, environment and background")


class LmConfig(BaseModel):
    """Where the model is; the key comes from the environment variable ``api_key_env``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_url: str = Field(..., pattern=r"^https?://", description="e.g. http://127.0.0.1:8000 (or .../v1)")
    model: str = Field(..., min_length=1)
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    questions: int = Field(5, ge=1, le=20, description="pairs asked per clip")
    max_clips: int | None = Field(None, ge=1, le=10_000_000,
                                  description="ask about at most this many clips (default: all)")
    timeout_s: float = Field(60.0, gt=0, le=600)
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight (the driver waits on I/O)")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _headers(cfg: LmConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if cfg.api_key_env:
        headers["Authorization"] = "Bearer " + os.environ[cfg.api_key_env]
    return headers


def preflight(cfg: LmConfig) -> None:
    """Fail before the job when the key's variable is unset or the endpoint does not take requests.
    An empty request is refused by a live chat endpoint with 400 or 422; any other refusal (a
    key refused, a wrong path, a server error) would fail every real request too."""
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        raise RoomtoneError(f"lm.api_key_env names {cfg.api_key_env}, which is not set in the environment",
                            f"export {cfg.api_key_env}=<key>, or unset lm.api_key_env for a server without keys")
    request = urllib.request.Request(cfg.url, data=b"{}", headers=_headers(cfg), method="POST")
    try:
        urllib.request.urlopen(request, timeout=min(cfg.timeout_s, 10.0)).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 422):
            return  # it answered and read the request: reachable
        key = f"the key was refused: check the key in {cfg.api_key_env or 'lm.api_key_env (unset: no key sent)'}"
        fix = {401: key, 403: key,
               404: "no chat endpoint at that path: lm.base_url should be the server root or end in /v1 "
                    "(an OpenAI-compatible server answering /v1/chat/completions)"}.get(
            exc.code, "check the server's log, or leave lm unset for template answers only")
        raise RoomtoneError(f"the language-model endpoint {cfg.url} refused a request: HTTP {exc.code} "
                            f"{exc.reason}", fix) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RoomtoneError(f"the language-model endpoint {cfg.url} is unreachable: {reason}",
                            "start the server or fix lm.base_url (an OpenAI-compatible server answering "
                            "/v1/chat/completions), or leave lm unset for template answers only") from None


def facts_prompt(f: Facts) -> str:
    """LTU's 'Sound Events: ...; Description: ...' message with the spatial and room facts added."""
    events = []
    for e in f.events:
        where = ""
        if e.azimuth is not None:
            words = ", ".join(octant(e.azimuth, e.elevation)) or "straight ahead"
            where = f", {words}, {e.distance:.1f} m" + (
                f", moving {'counter-clockwise' if e.speed > 0 else 'clockwise'}" if e.moving else ", static")
        events.append(f"{e.name}: [{e.onset:.1f}s-{e.offset:.1f}s{where}]")
    parts = [f"Sound Events: {'; '.join(events) if events else ', '.join(f.classes)}"]
    if f.events:
        parts.append(f"Counts: {len(f.events)} events, {len(f.classes)} kinds, at most {f.max_polyphony} at once")
    if f.rt60 is not None:
        parts.append(f"Room: RT60 {f.rt60:.2f} s" + (f", volume {f.volume:.0f} m^3" if f.volume else ""))
    if f.caption:
        parts.append(f"Description: {f.caption}")
    return "; ".join(parts)


def parse(text: str) -> list[tuple[str, str]]:
    """The {"q": ..., "a": ...} objects of a reply (LTU's parsing); malformed ones are skipped."""
    pairs = []
    for blob in re.findall(r"\{[^{}]*\}", text.replace("\n", " ")):
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("q"), str) and isinstance(obj.get("a"), str):
            pairs.append((obj["q"].strip(), obj["a"].strip()))
    return pairs


@lru_cache(maxsize=4)
def _source_names(ontology: Ontology) -> frozenset[str]:
    """The lower-cased names of sound sources: usable classes outside DESCRIPTIVE_TREES."""
    roots = [oid for oid, e in ontology.entries.items() if e["name"] in DESCRIPTIVE_TREES]
    descriptive = set(roots).union(*(ontology.descendants(r) for r in roots))
    return frozenset(n for n, oid in ontology.names.items() if ontology.usable(oid) and oid not in descriptive)


def _alternation(names) -> str:
    """The names as one regex alternation, longest first (harmonic_tone also as 'harmonic tone')."""
    return "|".join(re.escape(n).replace("_", "[_ ]") for n in sorted({n for n in names if n}, key=len, reverse=True))


def _words_re(names) -> re.Pattern | None:
    """Any of the names (plural 's' too), case-insensitive; None for no names."""
    alternatives = _alternation(names)
    return re.compile(r"\b(" + alternatives + r")s?\b", re.I) if alternatives else None


@lru_cache(maxsize=256)
def _class_count_re(classes: tuple[str, ...]) -> re.Pattern | None:
    """A number, then a class name: group 1 the number, group 2 the class as written."""
    alternatives = _alternation(classes)
    return re.compile(NUMBER + CLASS_COUNT_GAP + r"(" + alternatives + r")s?\b", re.I) if alternatives else None


def _foreign_class(text: str, f: Facts, vocabulary: list[str], ontology: Ontology | None) -> str | None:
    """A class the text names that the clip lacks, unless it says so ("no Cat"): from the vocabulary
    and, with an ontology, any sound-source class in it; the clip's classes, their ancestors and
    descendants (a Dog's Bark, an Animal) are allowed."""
    allowed, foreign = {c.lower() for c in f.classes}, {v.lower() for v in vocabulary}
    if ontology is not None:
        related = ontology.related(ontology.resolve(f.classes, f.ontology_ids))
        allowed |= {n.lower() for i in related for n in alternatives(ontology.name(i))}
        foreign |= _source_names(ontology)
    known, unknown = _words_re(allowed), _words_re(foreign - allowed)
    if unknown is None:
        return None
    masked = known.sub(" ", text) if known else text   # "Church bell" is not a Bell
    for m in unknown.finditer(masked):
        if not _is_denied(masked, m.start(), m.end()):
            return m[1]   # "there is no Cat" is true of a clip without one
    return None


def _is_denied(text: str, start: int, end: int) -> bool:
    """Whether the name at text[start:end] is said to be absent ("while the Bell is silent" speaks of time)."""
    return bool((DENIED_BEFORE_RE.search(text, 0, start) and NOT_TIME_RE.match(text, end))
                or (DENIED_AFTER_RE.match(text, end) and not WHEN_BEFORE_RE.search(text, 0, start)))


def _wrong_count(text: str, f: Facts) -> tuple[str, str] | None:
    """A count no fact gives: events or kinds; the most at once where the clause says so; moving
    or static sources where it speaks of motion ("two moving sources": only those). "The Dog is
    one sound event" describes the Dog and counts nothing."""
    known = _words_re(f.classes)
    for clause in CLAUSE_RE.split(text):
        for m in COUNT_RE.finditer(clause):
            if known and re.search(known.pattern + r"\s+(?:is|was)\s+(?:only\s+|just\s+)?$", clause[:m.start()], re.I):
                continue
            if COUNT_DENIED_RE.search(clause, 0, m.start()):   # "no two sounds overlap", "never more than three"
                continue
            n = int(m[1]) if m[1].isdigit() else NUMBERS[m[1].lower()]
            moving = sum(e.moving for e in f.events)
            part = next(p for p in _spans(PART_RE, clause, 0, len(clause)) if p[0] <= m.start() < p[1])
            noun = m[0].split()[-1].lower()
            if MOVING_RE.search(m[0]):
                allowed = {moving}
            elif STATIC_RE.search(m[0]):
                allowed = {len(f.events) - moving}
            elif AT_ONCE_RE.search(clause, *part) and f.max_polyphony:   # "at most three sounds overlap at once"
                allowed = {f.max_polyphony} if AT_MOST_RE.search(clause, part[0], m.start()) \
                    else set(range(1, f.max_polyphony + 1))
            else:   # events and sources count events, kinds and classes count classes, "sounds" either
                allowed = {len(f.events)} if noun.startswith(("event", "source")) else \
                    {len(f.classes)} if noun.startswith(("kind", "type", "class")) else {len(f.events), len(f.classes)}
                if MOVING_RE.search(clause) or STATIC_RE.search(clause):
                    allowed |= {moving, len(f.events) - moving}
            if n not in allowed:
                return "count", f"says {m[0]!r}; the clip has {len(f.events)} events of {len(f.classes)} kinds"
        bad = _wrong_class_count(clause, f)
        if bad:
            return bad
    return None


def _wrong_class_count(clause: str, f: Facts) -> tuple[str, str] | None:
    """ "Three Dogs" where the clip has another number of Dog events; fewer is allowed where the
    clause speaks of moments or motion ("two Dogs bark at once"), and "one Dog" always (one of them)."""
    counted = _class_count_re(f.classes)
    for m in counted.finditer(clause) if counted else ():
        n = int(m[1]) if m[1].isdigit() else NUMBERS[m[1].lower()]
        name = next(c for c in f.classes if c.lower().replace("_", " ") == m[2].lower().replace("_", " "))
        have = len(f.by_class(name))
        qualified = AT_ONCE_RE.search(clause) or MOVING_RE.search(clause) or STATIC_RE.search(clause)
        if n != have and n != 1 and not (qualified and n < have):
            return "count", f"says {m[0]!r}; the clip has {have} {name} event{'s' * (have != 1)}"
    return None


def _direction_words(events: list[EventFact], certain: bool = False) -> set[str]:
    """Every direction word true of some moment of these events (sector boundaries widened by the
    margin, and by half a step for a source stepping on a grid, so a word is refused only when it
    is clearly wrong); with ``certain``, the words true of every moment however the margin falls
    (what "the Dog is not on the left" may not deny)."""
    seen = []
    for e in events:
        if e.azimuth is None:
            continue
        for a, el in _moments(e):
            seen.append(set(octant(a, el)) | {w for w in ("left", "right", "front", "behind") if w in (side(a) or "")})
    if not seen:
        return set()
    return set.intersection(*seen) if certain else set.union(*seen)


def _path(e: EventFact) -> np.ndarray:
    """Azimuths (deg) along the event's arc, onset to offset."""
    return e.azimuth + np.linspace(0.0, e.speed * (e.offset - e.onset), 16)


def _moments(e: EventFact) -> list[tuple[float, float]]:
    """(azimuth, elevation) over the event's path, each widened both ways by the margin."""
    margin = 6.0 + e.azimuth_step / 2
    return [(a + da, e.elevation + de) for a in _path(e) for da in (-margin, margin) for de in (-6.0, 6.0)]



Mention = tuple[int, int, str, int]   # start, end, class, ordinal (k: its k-th event, as the prompt names it; 0: all)
Subject = tuple[str, int]   # (class, ordinal): what a claim is about


def _find(clause: str, f: Facts) -> list[Mention]:
    """The clip's classes named in the clause, in order (a longer name wins: 'Church bell' over 'Bell');
    "the second Dog" of a recurring class is its second event, as the prompt names them."""
    key = {c.lower().replace("_", " "): c for c in f.classes}
    known = _words_re(f.classes)
    out = []
    for m in known.finditer(clause) if known else ():
        name = key[m[1].lower().replace("_", " ")]
        word = ORDINAL_BEFORE_RE.search(clause, 0, m.start())
        k = ORDINALS.index(word[1].lower()) + 1 if word else 0
        out.append((m.start(), m.end(), name, k if any(e.ordinal == k for e in f.by_class(name)) else 0))
    return out


def _events(f: Facts, subject: Subject) -> list[EventFact]:
    name, k = subject
    return [e for e in f.by_class(name) if not k or e.ordinal == k]


def _placed(f: Facts, subject: Subject) -> list[EventFact]:
    """The subject's events that have a direction."""
    return [e for e in _events(f, subject) if e.azimuth is not None]


def _said(subject: Subject) -> str:
    return f"{ORDINALS[subject[1] - 1]} {subject[0]}" if subject[1] else subject[0]


def _spans(pattern: re.Pattern, text: str, start: int, end: int) -> list[tuple[int, int]]:
    cuts = [start] + [m.start() for m in pattern.finditer(text, start, end)] + [end]
    return list(zip(cuts, cuts[1:]))


def _owners(clause: str, found: list[Mention], at: int, classes: tuple[str, ...]) -> set[Subject]:
    """The classes a direction word at ``at`` speaks of: every class of its comma-part when that
    says "both", "all of them", "every sound" (every class of the clause, or of the clip when the
    clause names none: "Both sounds come from the left" of a clip of two); else the nearest mention
    in its and-segment (before it, else after); when its comma-part names classes only in other
    segments, the nearest mention before it in the clause; else the only class of its comma-part
    or clause; else none (not attributable)."""
    part = next(p for p in _spans(PART_RE, clause, 0, len(clause)) if p[0] <= at < p[1])
    in_part = [m for m in found if part[0] <= m[0] < part[1]]
    every = EVERY_RE.search(clause, *part)
    if every:
        named = {(c, k) for _, _, c, k in in_part or found}
        return named or (set() if every[0].lower() == "both" and len(classes) != 2 else {(c, 0) for c in classes})
    seg = next(s for s in _spans(SEGMENT_RE, clause, *part) if s[0] <= at < s[1])
    here = [m for m in in_part if seg[0] <= m[0] < seg[1]]
    if here:
        before = [m for m in here if m[1] <= at]
        return {(before[-1] if before else here[0])[2:]}
    if in_part:  # its part names classes, in other segments only: the word goes with what came before it
        earlier = [m for m in found if m[1] <= at]   # "a siren is heard behind, moving towards the left
        return {earlier[-1][2:]} if earlier else set()   # while clicking ...": the siren moves, not the clicking
    for names in ({m[2:] for m in in_part}, {m[2:] for m in found}):
        if len(names) == 1:
            return names
    return set()


def _wrong_direction(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """A direction word that is false of the class it is said of ("left of the Bell" is relative: skipped),
    a denied one that is true of it throughout ("the Dog is not on the left"), or an azimuth, elevation
    or distance in numbers that no moment of it has."""
    for d in DIRECTION_RE.finditer(clause):
        rest = re.match(r"\s+of\s+(?:the\s+)?", clause[d.end():])
        if rest and any(m[0] == d.end() + rest.end() for m in found):
            continue
        negated = NEGATED_RE.search(clause, 0, d.start())
        for subject in sorted(_owners(clause, found, d.start(), f.classes)):
            word = DIRECTION_WORDS.get(d[1].lower(), d[1].lower())
            if negated:
                if word in _direction_words(_events(f, subject), certain=True):
                    return "direction", f"says {_said(subject)} is not {word}; it is"
                continue
            allowed = _direction_words(_events(f, subject))
            if allowed and word not in allowed:
                return "direction", f"puts {_said(subject)} {word}; it is {', '.join(sorted(allowed))}"
    return None


def _wrong_position(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """An azimuth or elevation in degrees (the angle named nearest before it; azimuth when none is)
    or a distance in metres that is off every moment of its class by more than the margin (10
    degrees and half a grid step; 0.3 m or 15 %)."""
    for m in DEGREES_RE.finditer(clause):
        kind = [k[1].lower() for k in ANGLE_KIND_RE.finditer(clause, 0, m.start())]
        value = float(m[1])
        vertical = VERTICAL_RE.match(clause, m.end())   # "10 degrees above (the horizontal)": an elevation
        if vertical:
            kind, value = ["elevation"], -abs(value) if vertical[1].lower() in ("below", "down") else abs(value)
        for subject in sorted(_owners(clause, found, m.start(), f.classes)):
            events = _placed(f, subject)
            if not events:
                continue
            if kind and kind[-1] == "elevation":
                if all(abs(e.elevation - value) > 10.0 for e in events):
                    return "direction", f"puts {_said(subject)} at elevation {m[0]}; it is at " + ", ".join(
                        f"{e.elevation:.0f}" for e in events)
            elif all(abs((a - value + 180.0) % 360.0 - 180.0) > 10.0 + e.azimuth_step / 2
                     for e in events for a in _path(e)):
                return "direction", f"puts {_said(subject)} at azimuth {m[0]}; it is at " + ", ".join(
                    f"{e.azimuth:.0f}" for e in events)
    for m in METRES_RE.finditer(clause):
        if CUBIC_RE.search(clause, 0, m.start()):
            continue
        value = float(m[1])
        for subject in sorted(_owners(clause, found, m.start(), f.classes)):
            events = [e for e in _events(f, subject) if e.distance is not None]
            if events and all(abs(e.distance - value) > max(0.3, 0.15 * e.distance) for e in events):
                return "direction", f"puts {_said(subject)} {m[0]} away; it is at " + ", ".join(
                    f"{e.distance:.1f} m" for e in events)
    return None


def _wrong_order(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """An order the onsets contradict (by more than TIME_MARGIN_S): "A before/then/precedes B",
    "A after/follows B", "After A, B", "A ... first" and "A ... last"."""
    onsets = {m[2:]: [e.onset for e in _events(f, m[2:])] for m in found}
    found = [m for m in found if not CONTRASTED_RE.search(clause, 0, m[0])]
    for r in RELATION_RE.finditer(clause):
        if NEGATED_RE.search(clause, 0, r.start()):   # "the Bell does not ring before the Dog": no order claimed
            continue
        word, later = r[1].lower(), [m for m in found if m[0] >= r.end()]
        if not later or (word != "then" and not OBJECT_GAP_RE.fullmatch(clause, r.end(), later[0][0])):
            continue
        earlier = [m for m in found if m[1] <= r.start()]
        fronted = word in ("before", "after") and not earlier and len(later) > 1   # "After the Dog, the Bell ..."
        a, b = (later[1][2:], later[0][2:]) if fronted else (earlier[-1][2:] if earlier else None, later[0][2:])
        if a is None or a == b:
            continue
        before = RELATIONS[word] == "before"
        ok = (min(onsets[a]) < max(onsets[b]) + TIME_MARGIN_S if before
              else max(onsets[a]) > min(onsets[b]) - TIME_MARGIN_S)
        if not ok:
            return "order", (f"says {_said(a)} {RELATIONS[word]} {_said(b)}; onsets {min(onsets[a]):.1f} s and "
                             f"{min(onsets[b]):.1f} s")
    first, last = min(e.onset for e in f.events), max(e.onset for e in f.events)
    for m in ENDS_RE.finditer(clause):
        if NEGATED_RE.search(clause, 0, m.start()) or REPEATS_RE.search(clause, 0, m.start()):
            continue   # "the Bell is not the first sound"; "the Dog is heard twice, first at 0.5 s"
        earlier, later = [x for x in found if x[1] <= m.start()], [x for x in found if x[0] >= m.end()]
        article = ARTICLE_RE.search(clause, 0, m.start())
        gap = re.match(r"\s*", clause[m.end():]).end()
        if any(x[0] == m.end() + gap for x in found):   # "the first noise burst": an ordinal naming a class
            name = None
        elif article is None:   # "The Bell is heard first"; sentence-initial "First, the Bell rings"
            opening = not clause[:m.start()].strip()
            name = earlier[-1][2:] if earlier else later[0][2:] if opening and later else None
        elif article[0].lower().startswith("the") and ENDS_NOUN_RE.match(clause, m.end()):
            name = (earlier[-1] if earlier else later[0] if later else (0, 0, None, 0))[2:]
            name = name if name[0] else None
        else:
            name = None
        end = ENDS.get(m[1].lower(), m[1].lower())
        if not name:
            continue
        if end == "first" and min(onsets[name]) > first + TIME_MARGIN_S:
            return "order", (f"says {_said(name)} is first; it starts at {min(onsets[name]):.1f} s, the first at "
                             f"{first:.1f} s")
        if end == "last" and max(onsets[name]) < last - TIME_MARGIN_S:
            return "order", (f"says {_said(name)} is last; it starts at {max(onsets[name]):.1f} s, the last at "
                             f"{last:.1f} s")
    for m in OPENS_RE.finditer(clause):   # "The clip begins with the Bell"
        name = next((x[2:] for x in found if x[0] == m.end()), None)
        if name and min(onsets[name]) > first + TIME_MARGIN_S:
            return "order", f"says the clip opens with {_said(name)}; it starts at {min(onsets[name]):.1f} s"
    return None


def _denied(clause: str, found: list[Mention]) -> tuple[str, str] | None:
    """A class of the clip said to be absent ("there is no Bell", "the Bell cannot be heard")."""
    for start, end, name, _ in found:
        if _is_denied(clause, start, end):
            return "class", f"says {name} is absent; the clip has it"
    return None


def _wrong_overlap(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """Two classes said to sound together ("overlap", "at the same time") whose events never do, or
    said never to ("do not overlap") whose events overlap by more than TIME_MARGIN_S."""
    subjects = sorted({m[2:] for m in found})
    together = TOGETHER_RE.search(clause)
    if not together:
        return None
    negated = NEGATED_RE.search(clause, 0, together.start()) or re.search(r"\bno\b", clause[:together.start()], re.I)
    if not subjects and not negated and SEVERAL_RE.search(clause, 0, together.start()) and f.max_polyphony == 1:
        return "order", "says sounds overlap; never more than one is heard at once"   # "both sounds ... at once"
    if len(subjects) != 2:
        return None
    a, b = (_events(f, s) for s in subjects)
    overlap = max(min(x.offset, y.offset) - max(x.onset, y.onset) for x in a for y in b)
    names = f"{_said(subjects[0])} and {_said(subjects[1])}"
    if negated:
        return ("order", f"says {names} never sound together; they overlap for {overlap:.1f} s")\
            if overlap > TIME_MARGIN_S else None
    return None if overlap > 0 else ("order", f"says {names} sound together; their events never overlap")


TIME_TOLERANCE_S = 0.15   # the prompt gives times to 0.1 s


def _wrong_time(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """A time said of a class ("the Bell starts at 0.5 s", "is heard from 2.0s-3.0s") that is none of
    its events' onsets or offsets; times of the room ("an RT60 of 0.5 s") are not the class's."""
    if ROOM_TIME_RE.search(clause):
        return None
    for m in TIME_RE.finditer(clause):
        value = float(m[1] or m[2])
        for subject in sorted(_owners(clause, found, m.start(), f.classes)):
            times = [t for e in _events(f, subject) for t in (e.onset, e.offset)]
            if times and all(abs(t - value) > TIME_TOLERANCE_S for t in times):
                return "order", f"puts {_said(subject)} at {value:g} s; it starts or ends at " + ", ".join(
                    f"{t:.1f}" for t in sorted(times)) + " s"
    return None


def _wrong_nearest(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """"A is the closest/farthest (source)" that another class beats by the margin, or "A is
    closer/farther than B" that their distances contradict."""
    dist = {m[2:]: [e.distance for e in _events(f, m[2:]) if e.distance is not None] for m in found}
    every = [e.distance for e in f.events if e.distance is not None]
    for m in NEAREST_RE.finditer(clause):
        if NEGATED_RE.search(clause, 0, m.start()):
            continue
        earlier, later = [x for x in found if x[1] <= m.start()], [x for x in found if x[0] >= m.end()]
        subject = (earlier[-1] if earlier else later[0] if later else None)
        if subject is None or not dist[subject[2:]] or not every:
            continue
        near = m[1].lower() in ("closest", "nearest")
        mine = min(dist[subject[2:]]) if near else max(dist[subject[2:]])
        best = min(every) if near else max(every)
        if abs(mine - best) > DISTANCE_MARGIN_M:
            return "direction", f"says {_said(subject[2:])} is the {m[1].lower()}; it is at {mine:.1f} m, the " \
                                f"{m[1].lower()} source at {best:.1f} m"
    for m in NEARER_RE.finditer(clause):
        if NEGATED_RE.search(clause, 0, m.start()):
            continue
        earlier, later = [x for x in found if x[1] <= m.start()], [x for x in found if x[0] >= m.end()]
        if not earlier or not later or earlier[-1][2:] == later[0][2:]:
            continue
        a, b = dist[earlier[-1][2:]], dist[later[0][2:]]
        if not a or not b:
            continue
        near = m[1].lower() in ("closer", "nearer")
        if (min(a) >= max(b) + DISTANCE_MARGIN_M) if near else (max(a) <= min(b) - DISTANCE_MARGIN_M):
            return "direction", f"says {_said(earlier[-1][2:])} is {m[1].lower()} than {_said(later[0][2:])}; " \
                                f"{min(a):.1f} m against {min(b):.1f} m"
    return None


def _wrong_motion(clause: str, found: list[Mention], f: Facts) -> tuple[str, str] | None:
    """A class said to move that never does, to stay still that always moves (either denied: the
    other), or to turn the way none of its moving events turns."""
    for m in MOTION_RE.finditer(clause):
        moving = bool(m[1]) != bool(NEGATED_RE.search(clause, 0, m.start()))
        for subject in sorted(_owners(clause, found, m.start(), f.classes)):
            events = _placed(f, subject)
            if events and (not any(e.moving for e in events) if moving else all(e.moving for e in events)):
                return "direction", f"says {_said(subject)} {'moves' if moving else 'stays still'}; it does not"
    for m in TURN_RE.finditer(clause):
        counter = not m[1].lower().startswith("clockwise")
        for subject in sorted(_owners(clause, found, m.start(), f.classes)):
            events = _placed(f, subject)
            if events and not any(e.moving and (e.speed > 0) == counter for e in events):
                return "direction", f"says {_said(subject)} moves {m[1].lower()}; it does not"
    return None


def contradiction(text: str, f: Facts, vocabulary: list[str],
                  ontology: Ontology | None = None) -> tuple[str, str] | None:
    """(kind, detail) of the first fact the text contradicts, or None. Kinds: class, count,
    direction, order. vocabulary: the dataset's classes; with an ontology its sound-source names
    count as classes too. Each check keeps a sentence it cannot attribute rather than guess."""
    name = _foreign_class(text, f, vocabulary, ontology)
    if name:
        return "class", f"mentions {name!r}, which is not in the clip"
    if not f.events:  # counts, directions and order are facts of the events
        return None
    bad = _wrong_count(text, f)
    for clause in CLAUSE_RE.split(text):
        if bad:
            break
        found = _find(clause, f)
        spatial = (_wrong_direction, _wrong_position, _wrong_motion, _wrong_nearest) if f.spatial else ()
        bad = (_denied(clause, found) or next(filter(None, (check(clause, found, f) for check in spatial)), None)
               or _wrong_time(clause, found, f)
               or _wrong_order(clause, found, f) or _wrong_overlap(clause, found, f))
    return bad


POLAR_RE = re.compile(r"\s*(?:is|are|was|were|does|do|did|can|could|has|have|will|would)\b", re.I)   # yes/no question
VERDICT_RE = re.compile(r"\b(yes|no)\b", re.I)


def contradicted_pair(question: str, answer_text: str, f: Facts, vocabulary: list[str],
                      ontology: Ontology | None = None) -> tuple[str, str] | None:
    """What the answer contradicts, or else the question: a question presupposes what it asks about
    ("Why does the Cat bark after the Dog?" of a clip without one: a true answer to it still teaches
    the falsehood), and "yes" asserts a yes/no question's claim; a yes/no question answered any other
    way ("No", "The Dog comes first, so no") claims nothing: its verdict is its first word, or its last
    yes or no ("... so the answer is yes"). An answer naming no class speaks of the question's one
    class ("Where is the Dog?" "It is on the right"). Same arguments as `contradiction`."""
    named = _find(question, f)
    if len({m[2] for m in named}) == 1 and not _find(answer_text, f):
        answer_text = re.sub(r"\b[Ii]t\b", "the " + named[0][2], answer_text)
    bad = contradiction(answer_text, f, vocabulary, ontology)
    if bad:
        return bad
    if POLAR_RE.match(question):
        verdicts = VERDICT_RE.findall(answer_text)
        verdict = verdicts[0] if VERDICT_RE.match(answer_text.strip()) else verdicts[-1] if verdicts else ""
        if verdict.lower() != "yes":
            return None
    bad = contradiction(question, f, vocabulary, ontology)
    return (bad[0], "the question " + bad[1]) if bad else None


def chat(cfg: LmConfig, f: Facts) -> str:
    body = {"model": cfg.model, "temperature": 0, "max_tokens": 1024,
            "messages": [{"role": "system", "content": SYSTEM.format(n=cfg.questions)},
                         {"role": "user", "content": facts_prompt(f)}]}
    request = urllib.request.Request(cfg.url, data=json.dumps(body).encode(), headers=_headers(cfg), method="POST")
    with urllib.request.urlopen(request, timeout=cfg.timeout_s) as reply:
        return json.loads(reply.read())["choices"][0]["message"]["content"]


def ask_all(cfg: LmConfig, facts: list[Facts], vocabulary: list[str],
            ontology: Ontology | None = None) -> tuple[dict[str, list[QA]], dict]:
    """Kept tuples per audio id, and the summary (asked, kept, rejected by kind, examples, failed
    requests and the first failure); vocabulary and ontology as for `contradiction`. Raises when
    every request fails: a run would otherwise publish without the answers it was asked for."""
    chosen = sorted(facts, key=lambda f: f.audio_id)[:cfg.max_clips]
    with ThreadPoolExecutor(cfg.concurrency) as pool:
        replies = list(pool.map(lambda f: _reply(cfg, f), chosen))
    errors = [err for _, err in replies if err]
    if chosen and len(errors) == len(chosen):
        raise RoomtoneError(f"every request to the language model {cfg.url} failed ({len(errors)} clips); "
                            f"the first: {errors[0]}", "check lm.model and the server's log, or leave lm unset "
                                                       "for template answers only")
    kept: dict[str, list[QA]] = {}
    reasons: Counter = Counter()
    examples, unparsed, asked = [], 0, 0
    for f, (reply, err) in zip(chosen, replies):
        if err:
            continue
        pairs = parse(reply)
        unparsed += not pairs
        for q, a in pairs:
            asked += 1
            bad = contradicted_pair(q, a, f, vocabulary, ontology)
            if bad:
                reasons[bad[0]] += 1
                if len(examples) < 5:
                    examples.append({"audio_id": f.audio_id, "question": q, "answer": a, "reason": bad[1]})
                continue
            question = q + SPATIAL_NOTE if f.spatial else q   # the answer may say where: state the frame
            kept.setdefault(f.audio_id, []).append(
                QA("open", "open-ended question", "open", question, a, answer("text", a), "OPEN", generator="lm"))
    summary = {"endpoint": cfg.url, "model": cfg.model, "clips": len(chosen), "failed_requests": len(errors),
               "first_failure": errors[0] if errors else None,
               "unparsed_replies": unparsed, "answers": asked, "kept": sum(map(len, kept.values())),
               "rejected": sum(reasons.values()), "rejected_by_kind": dict(sorted(reasons.items())),
               "rejected_examples": examples}
    return kept, summary


def _reply(cfg: LmConfig, f: Facts) -> tuple[str | None, str | None]:
    """One clip's (reply, None), or (None, why it failed): a failed request is counted, and fatal
    only when every one fails (the pre-flight caught a dead endpoint)."""
    try:
        return chat(cfg, f), None
    except urllib.error.HTTPError as exc:
        return None, f"{f.audio_id}: HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return None, f"{f.audio_id}: {type(exc).__name__}: {exc}"
