"""Question families: closed-ended tuples from exact facts, in several forms and phrasings.

Forms: ``exact`` (the value), ``bin`` (a coarse class), ``choice`` (multiple choice, the
answer's letter and text) and ``yesno``. Yes/no questions are always made in pairs about the
same subject, one true and one false (the false one a hard negative), so every family is
balanced at exactly 50 %. ``open`` tuples are open-ended answers written from templates.
The fact families offer all four forms; description and caption are free text and give only
the exact form (a bin, an option list or a yes/no of a sentence would test its wording, not
what is heard).
Each family draws from its own generator seeded by (seed, audio id, family) (``random.Random``:
scalar draws cost a tenth of numpy's here, and no global state is touched).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import combinations
from operator import attrgetter
from random import Random
from typing import Callable

from pipelines.qa.facts import (DISTANCE_MARGIN_M, LEVEL_MARGIN_DB, REVERB_WORDS, ROOM_SIZES, SIDE_CENTRES, SIDES,
                                TIME_MARGIN_S, EventFact, Facts, distance_bin, octant, reverb_word, room_size,
                                side, spoken, vertical, wrap)
from pipelines.qa.ontology import Ontology
from simulation.seeding import item_seed

FAMILIES = ("classification", "description", "temporal", "counting", "direction", "distance", "motion", "room",
            "loudest", "caption", "open")
LETTERS = "ABCDEFGH"
HARD_BOOST = 4.0   # an absent ontology sibling of a heard class is this many times likelier a negative


@dataclass
class QA:
    """One question-answer tuple. ``answer``: the typed answer for automatic scoring."""

    family: str
    task: str
    form: str
    question: str
    output: str
    answer: dict
    question_type: str
    subjects: list[str] = field(default_factory=list)   # the events (or classes) asked about
    generator: str = "template"

    @property
    def closed(self) -> bool:
        return self.form != "open"


@dataclass(frozen=True)
class Context:
    """What a worker shares across rows: the seed, the dataset's class map, the ontology."""

    seed: int = 0
    class_map: tuple[str, ...] = ()
    ontology: Ontology | None = None
    max_subjects: int = 2          # events a family asks about per clip
    families: tuple[str, ...] = FAMILIES
    # the dataset's spread (low, high; high None: unknown) of events per clip and of distance bins:
    # multiple-choice options stay inside it, so the largest option is the answer as often as the data says
    event_counts: tuple[int, int | None] = (0, None)
    distance_bins: tuple[int, int | None] = (1, None)
    skip_tasks: frozenset[str] = frozenset()   # tasks not asked (see COARSE)
    # how likely each class is drawn as the present / the absent class asked about (see `yes_no_weights`);
    # unlisted: 1
    present_weights: tuple[tuple[str, float], ...] = ()
    absent_weights: tuple[tuple[str, float], ...] = ()
    event_count_clips: tuple[tuple[int, int], ...] = ()   # (events per clip, clips): the dataset's histogram
    # the dataset's share of each answer of a fact a question's words could give away (COARSE and SUBJECT_WORDS
    # facts: fact -> ((word, share), ...)); the commonest answers are asked less (see `_kept`)
    shares: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()


def answer(kind: str, text: str, *, values=(), unit: str = "", labels=(), choices=(), choice_index: int = -1,
           boolean: bool | None = None) -> dict:
    return {"kind": kind, "text": text, "values": [float(v) for v in values], "unit": unit,
            "labels": list(labels), "choices": list(choices), "choice_index": choice_index, "boolean": boolean}


RARE_SHARE = 0.05


def _shares(ctx: Context, fact: str) -> dict[str, float]:
    return _share_table(ctx.shares).get(fact, {})


@lru_cache(maxsize=16)
def _share_table(shares: tuple) -> dict[str, dict[str, float]]:
    return {fact: dict(words) for fact, words in shares}


def _kept(rng: Random, ctx: Context, fact: str, word: str) -> bool:
    """Whether a question whose answer is `word` is asked: each word of the fact is asked in
    proportion to the dataset's rarest, so each is the answer equally often. A class's first onset
    is early, so 80 % of 10 s scenes' part answers were "the beginning" (all of 60 s scenes'); a
    dataset of 20 % moving sources answered "Is X moving?" "no" 80 % of the time."""
    shares = _shares(ctx, fact)
    if word not in shares:
        return True
    common = [v for v in shares.values() if v >= RARE_SHARE]   # a word this rare is asked always, not balanced to
    weight = min(common or shares.values()) / shares[word]
    return weight >= 1.0 or rng.random() < weight


def _pick(rng: Random, options):
    return options[rng.randrange(len(options))]


def _order(rng: Random, n: int) -> list[int]:
    """A random permutation of range(n)."""
    return rng.sample(range(n), n)


def _ladder(rng: Random, correct: int, step: int, low: int, high: int | None, size: int = 4) -> list[int] | None:
    """The wrong options of a multiple choice among values `step` apart in [low, high] (the
    dataset's spread; high None: unbounded), or None to ask nothing. Given the options, the
    answer's place among them must tell nothing: a ladder clamped at `low` put a 1 m source
    first, and one unbounded above never made the largest option right. So where the range
    holds at most `size` rungs every one is offered, and otherwise the answer's rung is drawn
    uniformly and a ladder that leaves the range is not asked."""
    low, high = min(low, correct), None if high is None else max(high, correct)
    first = correct - (correct - low) // step * step   # the lowest rung in range on the answer's lattice
    if high is not None and (high - first) // step + 1 <= size:
        rungs = list(range(first, high + 1, step))
        return [r for r in rungs if r != correct] if len(rungs) > 1 else None
    start = correct - rng.randrange(size) * step
    if start < low or (high is not None and start + (size - 1) * step > high):
        return None
    return [start + i * step for i in range(size) if start + i * step != correct]


def _the(name: str) -> str:
    return f"the {name}"


def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


class _Builder:
    """Collects one family's tuples; phrasings are drawn from the family's generator."""

    def __init__(self, family: str, rng: Random, question_type: str):
        self.family, self.rng, self.question_type, self.out = family, rng, question_type, []

    def add(self, task: str, form: str, phrasings: tuple[str, ...], output: str, ans: dict, **fields) -> None:
        question = _pick(self.rng, phrasings).format(**fields)
        self.out.append(QA(self.family, task, form, question, output, ans, self.question_type, _named(fields)))

    def yes_no(self, task: str, phrasings: tuple[str, ...], true: dict, false: dict,
               false_phrasings: tuple[str, ...] | None = None) -> None:
        """One true and one false question (same phrasing unless ``false_phrasings``): the family
        stays balanced."""
        template = _pick(self.rng, phrasings)
        pair = [(template, true, True), (_pick(self.rng, false_phrasings) if false_phrasings else template, false,
                                         False)]
        for i in _order(self.rng, 2):
            self.one(task, *pair[i])

    def one(self, task: str, template: str, fields: dict, value: bool) -> None:
        """One yes/no question, whose balance the caller ensures."""
        self.out.append(QA(self.family, task, "yesno", template.format(**fields),
                           "Yes" if value else "No", answer("boolean", "Yes" if value else "No", boolean=value),
                           self.question_type, _named(fields)))

    def choice(self, task: str, phrasings: tuple[str, ...], correct: str, distractors: list[str],
               unit: str = "", **fields) -> None:
        options = [correct, *distractors[:3]]
        order = _order(self.rng, len(options))
        choices = [options[i] for i in order]
        k = order.index(0)
        listed = " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        question = _pick(self.rng, phrasings).format(**fields) + f" Options: {listed}"
        self.out.append(QA(self.family, task, "choice", question, f"({LETTERS[k]}) {correct}",
                           answer("choice", correct, unit=unit, choices=choices, choice_index=k),
                           self.question_type, _named(fields)))


def _named(fields: dict) -> list[str]:
    """The subjects a question names (its x, a, b fields), without the article."""
    return [str(fields[k]).removeprefix("the ") for k in ("x", "a", "b") if k in fields]


def _subjects(f: Facts, ctx: Context, rng: Random, keep: Callable[[EventFact], bool]):
    """Up to max_subjects nameable events that pass ``keep``."""
    pool = [e for e in f.events if e.nameable and keep(e)]
    return [pool[i] for i in _order(rng, len(pool))[:ctx.max_subjects]]


def _least_choice(b: _Builder, task: str, phrasings: tuple[str, ...], events: list[EventFact],
                  key: Callable[[EventFact], float], margin: float) -> None:
    """Multiple choice of the event with the smallest key among up to four; the options offered
    trail it by at least margin, so the answer is clear even where other events tie with it."""
    if not events:
        return
    least = min(events, key=key)
    rest = [e for e in events if e.nameable and key(e) - key(least) >= margin]
    if rest and least.nameable:
        b.choice(task, phrasings, least.name, [rest[i].name for i in _order(b.rng, len(rest))[:3]])


def negatives(f: Facts, ctx: Context) -> list[str]:
    """Classes absent from the clip, hardest first (see `_negative_tiers`)."""
    hard, rest = _negative_tiers(f, ctx)
    return hard + rest


def _negative_tiers(f: Facts, ctx: Context) -> tuple[list[str], list[str]]:
    """(hard, other) absent classes, all from the class map: hard are the ontology siblings of a
    present class, other the rest. Never a class from outside the map: "yes" would then be exactly
    "is it one of the dataset's classes", answerable without listening (a clip holding every
    mapped class gets no such question; `classification_skip` counts it). With an ontology, no
    negative is an ancestor or descendant of a present class (a Mantra is a Chant; a Bark is a
    Dog's), present classes found by id or else by name."""
    present = {n.lower() for n in f.classes}
    out = [n for n in ctx.class_map if n.lower() not in present]
    if ctx.ontology is None or not out:
        return [], out
    onto = ctx.ontology
    ids = onto.resolve(f.classes, f.ontology_ids)
    related = onto.related(ids)
    out = [n for n in out if onto.names.get(n.lower()) not in related]
    near = {onto.name(i).lower() for i in onto.hard_negatives(ids)}
    return [n for n in out if n.lower() in near], [n for n in out if n.lower() not in near]


def classification_skip(f: Facts, ctx: Context) -> str | None:
    """Why the clip gets no present-or-absent questions (cla_yesno, cla_choice): None when it does."""
    if f.classes and not negatives(f, ctx):
        return ("cla_yesno and cla_choice: the clip holds every class of the class map (or only relatives of "
                "the rest), so no absent class is left to ask about")
    return None


def _draw(rng: Random, pool: list[str], weights: dict[str, float]) -> str:
    w = [weights.get(c, 1.0) for c in pool]
    return pool[rng.choices(range(len(pool)), w)[0] if sum(w) > 0 else rng.randrange(len(pool))]


def _absent_odds(hard: list[str], rest: list[str], weights: dict[str, float]) -> dict[str, float]:
    """How likely each absent class is drawn: its weight, HARD_BOOST times for an ontology sibling."""
    return {**{c: weights.get(c, 1.0) for c in rest}, **{c: HARD_BOOST * weights.get(c, 1.0) for c in hard}}


def _draw_absent(rng: Random, hard: list[str], rest: list[str], weights: dict[str, float], k: int) -> list[str]:
    """k absent classes without replacement, by `_absent_odds`."""
    odds = _absent_odds(hard, rest, weights)
    out = []
    while len(out) < k and odds:
        out.append(_draw(rng, list(odds), odds))
        del odds[out[-1]]
    return out


def yes_no_weights(clips: list[tuple[Facts, int]], ctx: Context,
                   rounds: int = 40) -> tuple[dict[str, float], dict[str, float]]:
    """Per-class weights for drawing the present class and the absent class that yes/no and
    multiple-choice questions ask about, such that each class is the subject of a "no" as often as
    of a "yes": drawn uniformly, with ontology siblings as hard negatives, "Is there a Dog?" was
    "no" 72 times in 89 (Dog is Cat's sibling) and a common class mostly "yes". clips: (facts, how
    many clips share its classes). Fitted by multiplicative updates on the expected counts."""
    groups = []
    for f, n in clips:
        hard, rest = _negative_tiers(f, ctx)
        if f.classes and (hard or rest):
            groups.append((n, list(f.classes), hard, rest))
    present = {c: 1.0 for c in ctx.class_map}
    absent = {c: 1.0 for c in ctx.class_map}
    for _ in range(rounds):
        yes, no = Counter(), Counter()
        for n, heard, hard, rest in groups:
            total = sum(present.get(c, 1.0) for c in heard)
            for c in heard:
                yes[c] += n * present.get(c, 1.0) / total
            odds = _absent_odds(hard, rest, absent)
            total = sum(odds.values())
            for c, o in odds.items():
                no[c] += n * o / total
        for c in ctx.class_map:
            if yes[c] > 0 and no[c] > 0:
                step = (yes[c] / no[c]) ** 0.25
                absent[c] *= step
                present[c] /= step
    return present, absent


# -- families -----------------------------------------------------------------------------------

Q_LABELS = ("What sound events can be heard in the recording?", "Identify the sounds in the audio clip.",
            "Which sound classes are present in this audio?", "List the sound events you hear.")
Q_PRESENT = ("Is there any {x} in the recording?", "Can {x} be heard in this audio?", "Does the clip contain {x}?")
Q_WHICH_PRESENT = ("Which of these sounds can be heard in the recording?", "Which sound is present in the clip?")
Q_CATEGORY = ("Which broad categories of sound can be heard in the recording?",
              "What general kinds of sound does the clip contain?")


def _parents(ctx: Context, f: Facts, name: str) -> list[str]:
    """The class's parent categories in the ontology DAG (every one: a class may have several)."""
    oid = f.ontology_ids.get(name)
    return sorted(ctx.ontology.name(p) for p in ctx.ontology.parents.get(oid, ())) if ctx.ontology and oid else []


def classification(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("classification", rng, "CLASSIFICATION")
    if not f.classes:
        return []
    names = list(f.classes)
    b.add("cla_label", "exact", Q_LABELS, "; ".join(names), answer("labels", "; ".join(names), labels=names))
    # the coarse bin: the parent categories of every class heard (never "what is X a kind of?", which
    # names the class and is answered from the ontology without listening)
    known = [n for n in names if _parents(ctx, f, n)]
    if len(known) == len(names):
        categories = sorted({p for n in names for p in _parents(ctx, f, n)})
        b.add("cla_category", "bin", Q_CATEGORY, "; ".join(categories),
              answer("labels", "; ".join(categories), labels=categories))
    hard, rest = _negative_tiers(f, ctx)
    if hard or rest:
        x = _draw(rng, names, dict(ctx.present_weights))
        absent = dict(ctx.absent_weights)
        b.choice("cla_choice", Q_WHICH_PRESENT, x, _draw_absent(rng, hard, rest, absent, 3))
        b.yes_no("cla_yesno", Q_PRESENT, {"x": spoken(x)}, {"x": spoken(_draw_absent(rng, hard, rest, absent, 1)[0])})
    return b.out


Q_DESCRIBED = ("Identify the sounds in the recording and describe their acoustic traits.",
               "What sounds are present, and what do they sound like?",
               "Label the sound events and give a short acoustic description of each.")


def description(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("description", rng, "CLASSIFICATION")
    described = [(n, ctx.ontology.description(f.ontology_ids.get(n))) for n in f.classes] if ctx.ontology else []
    if not described or not all(d for _, d in described):
        return []
    text = "; ".join(f"{n}: {d}" for n, d in described)
    b.add("cla_label_des", "exact", Q_DESCRIBED, f"Labels with descriptions: {text}",
          answer("labels", text, labels=[n for n, _ in described]))
    return b.out


# onsets, offsets and parts are asked of a class, in one wording whether it is heard once or again:
# "the fifth Dog" tells that it starts late, and a "first heard" asked only of recurring classes that it
# starts early, without listening
Q_ONSET = ("When is {x} first heard, in seconds?", "At what time does {x} first begin?",
           "What is the earliest onset time of {x}?")
Q_OFFSET = ("When is {x} last heard, in seconds?", "At what time does {x} stop for the last time?",
            "What is the latest offset time of {x}?")
Q_PART = ("In which part of the clip is {x} first heard: the beginning, the middle or the end?",
          "Is {x} first heard near the beginning, in the middle or near the end of the clip?")
Q_PART_CHOICE = ("In which part of the clip is {x} first heard?", "When does {x} first begin, relative to the whole "
                 "clip?")
Q_FIRST = ("Which sound starts first, {a} or {b}?", "Which is heard first: {a} or {b}?")
Q_FIRST_CHOICE = ("Which of these sounds starts first?", "Which of these is heard first?")
Q_BEFORE = ("Does {a} start before {b}?", "Is {a} heard before {b} begins?")
Q_WHILE = ("What else can be heard while {x} is sounding?", "Which other sounds overlap with {x}?")
Q_ALL_TIMES = ("List every sound event with its start and end time.",
               "Give the onset and offset of each sound event in the clip.")
PARTS = ("the beginning", "the middle", "the end")
PART_TASKS = ("temporal_part", "temporal_part_choice")


def first_part(onset: float, duration: float) -> str | None:
    """The third of the clip an onset falls in; None within TIME_MARGIN_S of a boundary."""
    third = 3.0 * onset / duration if duration else None
    if third is None or min(abs(third - 1), abs(third - 2)) * duration / 3 < TIME_MARGIN_S:
        return None
    return PARTS[min(2, int(third))]


def first_parts(f: Facts) -> list[str]:
    """Where each class of the clip is first heard (`first_part`), for the classes not at a boundary."""
    starts = {}
    for e in f.events:
        starts[e.class_name] = min(e.onset, starts.get(e.class_name, e.onset))
    return [p for p in (first_part(t, f.duration) for t in starts.values()) if p is not None]


def temporal(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("temporal", rng, "TEMPORAL")
    if not f.events:
        return []
    spans = "; ".join(f"{e.class_name} [{_fmt(e.onset, 2)}s-{_fmt(e.offset, 2)}s]" for e in f.events)
    b.add("temporal_all", "exact", Q_ALL_TIMES, spans,
          answer("intervals", spans, labels=[e.class_name for e in f.events],
                 values=[v for e in f.events for v in (e.onset, e.offset)], unit="s"))
    heard = sorted({e.class_name for e in f.events})
    for i in _order(rng, len(heard))[:ctx.max_subjects]:
        events, x = f.by_class(heard[i]), _the(spoken(heard[i]))
        onset, offset = min(e.onset for e in events), max(e.offset for e in events)
        b.add("temporal_onset", "exact", Q_ONSET, f"{_fmt(onset, 2)} s",
              answer("number", f"{_fmt(onset, 2)} s", values=[onset], unit="s"), x=x)
        b.add("temporal_offset", "exact", Q_OFFSET, f"{_fmt(offset, 2)} s",
              answer("number", f"{_fmt(offset, 2)} s", values=[offset], unit="s"), x=x)
        part = first_part(onset, f.duration)
        if part is not None:
            b.add("temporal_part", "bin", Q_PART, part, answer("label", part, labels=[part], choices=PARTS), x=x)
            b.choice("temporal_part_choice", Q_PART_CHOICE, part, [p for p in PARTS if p != part], x=x)
    for e in _subjects(f, ctx, rng, lambda e: True):
        x = _the(e.name)
        overlap = sorted({o.class_name for o in f.events if o is not e and o.onset < e.offset and o.offset > e.onset})
        text = "; ".join(overlap) if overlap else "nothing else"
        b.add("temporal_while", "exact", Q_WHILE, text, answer("labels", text, labels=overlap), x=x)
    # ordinals name a class's events in onset order ("second Dog"), so a pair would hold its answer in
    # its names: of one class always, of two classes often ("the first Bell or the third Dog?"). Only
    # pairs of two classes whose names carry the same ordinal (or none) are asked about.
    pairs = [(p, q) for p, q in combinations(f.events, 2)
             if abs(p.onset - q.onset) >= TIME_MARGIN_S and p.nameable and q.nameable and p.class_name != q.class_name
             and p.ordinal == q.ordinal]
    for i in _order(rng, len(pairs))[:ctx.max_subjects]:
        early, late = sorted(pairs[i], key=lambda e: e.onset)
        a, c = (early, late) if rng.random() < 0.5 else (late, early)
        b.add("temporal_order", "exact", Q_FIRST, early.name,
              answer("label", early.name, labels=[early.class_name], choices=[a.name, c.name]),
              a=_the(a.name), b=_the(c.name))
        b.yes_no("temporal_before", Q_BEFORE, {"a": _the(early.name), "b": _the(late.name)},
                 {"a": _the(late.name), "b": _the(early.name)})
    # which class starts first: each class's earliest event, named by its class alone (its ordinal, "first",
    # would give the answer away; the class's start is its earliest onset, ties within a class included)
    firsts = {}
    for e in f.events:
        firsts.setdefault(e.class_name, replace(e, ref=spoken(e.class_name), nameable=True))
    _least_choice(b, "temporal_first_choice", Q_FIRST_CHOICE, list(firsts.values()), lambda e: e.onset, TIME_MARGIN_S)
    return b.out


Q_COUNT = ("How many sound events are in the recording?", "How many separate sound events occur in the clip?",
           "Count the sound events in this audio.")
Q_KINDS = ("How many different kinds of sound can be heard?", "How many distinct sound classes are present?")
Q_POLY = ("What is the largest number of sounds heard at the same time?",
          "At most how many sound events overlap at once?")
Q_MORE = ("Are there more than {k} sound events in the recording?", "Does the clip hold more than {k} sound events?")
Q_BUSY = ("Is the scene sparse (1-2 events), moderate (3-5 events) or busy (6 or more events)?",)
BUSY = ("sparse", "moderate", "busy")


def _weighted(rng: Random, histogram: tuple[tuple[int, int], ...]) -> int | None:
    """A value drawn with its weight from (value, weight) pairs; None for none."""
    return rng.choices([v for v, _ in histogram], [w for _, w in histogram])[0] if histogram else None


def busy_word(n: int) -> str:
    return BUSY[0] if n <= 2 else BUSY[1] if n <= 5 else BUSY[2]


def counting(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("counting", rng, "COUNTING")
    if not f.events:
        return []
    n = len(f.events)
    b.add("count_events", "exact", Q_COUNT, str(n), answer("number", str(n), values=[n], unit="events"))
    b.add("count_classes", "exact", Q_KINDS, str(len(f.classes)),
          answer("number", str(len(f.classes)), values=[len(f.classes)], unit="classes"))
    if f.max_polyphony is not None:
        b.add("count_polyphony", "exact", Q_POLY, str(f.max_polyphony),
              answer("number", str(f.max_polyphony), values=[f.max_polyphony], unit="events"))
    busy = busy_word(n)
    b.add("count_bin", "bin", Q_BUSY, busy, answer("label", busy, labels=[busy], choices=BUSY))
    wrong = _ladder(b.rng, n, 1, *ctx.event_counts)
    if wrong:
        b.choice("count_choice", Q_COUNT, str(n), [str(k) for k in wrong], unit="events")
    # "more than k?": k = n - 1 (yes) and n (no) made two-event mixtures "more than 1: yes, more than 2: no" from
    # the question alone. Now k is the smaller of n and the count m of a clip drawn as the dataset has them (none
    # when m = n): each k is "yes" (m = k < n) exactly as often as "no" (n = k < m), and so is the family
    other = _weighted(b.rng, ctx.event_count_clips)
    if other is not None and other != n:
        b.one("count_more", _pick(b.rng, Q_MORE), {"k": min(n, other)}, n > other)
    return b.out


# Every question about a direction, a distance, a speed or motion ends with one of these notes, so the LTU and
# SpatialSoundQA records, whose keys are fixed by those formats, state the frame in their own text.
SPATIAL_NOTE = (" (relative to the microphone array; azimuth counter-clockwise from its front, 90 degrees = left; "
                "elevation up from the horizontal plane)")
DIST_NOTE = " (distance from the centre of the microphone array)"


def _noted(phrasings: tuple[str, ...], note: str = SPATIAL_NOTE) -> tuple[str, ...]:
    return tuple(q + note for q in phrasings)


Q_DOA = _noted(("What are the azimuth and elevation of {x}, in degrees?", "From which direction does {x} come, "
                "as azimuth and elevation in degrees?"))
Q_SIDE = _noted(("Where is {x} relative to the microphone array?", "From which side is {x} heard?"))
Q_IS_SIDE = _noted(("Is {x} {side}?", "Does {x} come from {side_noun}?"))
Q_VERTICAL = _noted(("Is {x} above or below the microphone array?",
                     "Is {x} higher or lower than the microphone array?"))
Q_OCTANT = _noted(("Where is {x}? Answer with left or right, front or behind, above or below, and its distance.",
                   "Give the direction (left/right, front/behind, above/below) and distance of {x}."))
SIDE_NOUNS = {"in front": "the front", "to the left": "the left", "behind": "behind", "to the right": "the right"}


def direction(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("direction", rng, "DOA")
    for e in _subjects(f, ctx, rng, lambda e: not e.moving and e.azimuth is not None):
        x = _the(e.name)
        az, el = wrap(e.azimuth), e.elevation
        text = f"azimuth {az:.0f} degrees, elevation {el:.0f} degrees"
        b.add("doa_exact", "exact", Q_DOA, text,
              answer("direction", text, values=[az, el], unit="deg"), x=x)
        words = octant(az, el)
        if e.distance is not None and words:
            text = f"{', '.join(words)}; {distance_bin(e.distance) / 2:g}m"
            b.add("doa_octant", "bin", Q_OCTANT, text,
                  answer("direction_words", text, labels=words, values=[distance_bin(e.distance) / 2], unit="m"), x=x)
        where = side(az)
        if where:
            b.add("doa_side", "bin", Q_SIDE, where, answer("label", where, labels=[where], choices=SIDES), x=x)
            others = [s for s in SIDES if s != where]
            b.choice("doa_choice", Q_SIDE, where, [others[i] for i in _order(rng, 3)], x=x)
            opposite = min(SIDES, key=lambda s: -abs(wrap(SIDE_CENTRES[s] - SIDE_CENTRES[where])))
            b.yes_no("doa_yesno", Q_IS_SIDE,
                     {"x": x, "side": where, "side_noun": SIDE_NOUNS[where]},
                     {"x": x, "side": opposite, "side_noun": SIDE_NOUNS[opposite]})
        level = vertical(el)
        if level:
            b.add("doa_vertical", "bin", Q_VERTICAL, level, answer("label", level, labels=[level],
                                                                    choices=("above", "below")), x=x)
    return b.out


Q_DIST = _noted(("How far is {x} from the microphone array, in metres?", "What is the distance to {x} in metres?"),
                DIST_NOTE)
Q_DIST_BIN = _noted(("How far is {x}, to the nearest half metre?",
                     "What is the distance to {x}, rounded to half a metre?"), DIST_NOTE)
Q_NEAREST = _noted(("Which sound source is closest to the microphone array?", "Which sound is nearest?"), DIST_NOTE)
Q_NEAREST_CHOICE = _noted(("Which of these sounds is closest to the microphone array?",
                           "Which of these sources is nearest?"), DIST_NOTE)
Q_FARTHEST = _noted(("Which sound source is farthest from the microphone array?", "Which sound is the most distant?"),
                    DIST_NOTE)
Q_CLOSER = _noted(("Is {a} closer to the microphone array than {b}?", "Is {a} nearer than {b}?"), DIST_NOTE)


def _winner(events: list[EventFact], key: Callable[[EventFact], float], margin: float) -> EventFact | None:
    """The event with the largest key if it leads the runner-up by at least margin (and can be named)."""
    ranked = sorted(events, key=key, reverse=True)
    if len(ranked) >= 2 and key(ranked[0]) - key(ranked[1]) >= margin and ranked[0].nameable:
        return ranked[0]
    return None


def distance(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("distance", rng, "DISTANCE")
    for e in _subjects(f, ctx, rng, lambda e: e.distance is not None):
        x = _the(e.name)
        b.add("distance_exact", "exact", Q_DIST, f"{e.distance:.1f} m",
              answer("number", f"{e.distance:.1f} m", values=[e.distance], unit="m"), x=x)
        k = distance_bin(e.distance)
        b.add("distance_bin", "bin", Q_DIST_BIN, f"{k / 2:g}m",
              answer("number", f"{k / 2:g}m", values=[k / 2], unit="m", labels=[str(k)]), x=x)
        wrong = _ladder(b.rng, k, 2, *ctx.distance_bins)  # bins 1 m apart: none a rounding away
        if wrong:
            b.choice("distance_bin_choice", Q_DIST_BIN, f"{k / 2:g}m", [f"{j / 2:g}m" for j in wrong], unit="m", x=x)
    placed = [e for e in f.events if e.distance is not None]
    for task, phrasings, sign in (("distance_nearest", Q_NEAREST, -1.0), ("distance_farthest", Q_FARTHEST, 1.0)):
        win = _winner(placed, lambda e: sign * e.distance, DISTANCE_MARGIN_M)
        if win:
            b.add(task, "exact", phrasings, win.name,
                  answer("label", win.name, labels=[win.class_name], choices=[e.name for e in placed]),
                  x=_the(win.name))
    _least_choice(b, "distance_nearest_choice", Q_NEAREST_CHOICE, placed, lambda e: e.distance, DISTANCE_MARGIN_M)
    pairs = [(p, q) for p, q in combinations(placed, 2)
             if abs(p.distance - q.distance) >= DISTANCE_MARGIN_M and p.nameable and q.nameable]
    for i in _order(rng, len(pairs))[:ctx.max_subjects]:
        near, far = sorted(pairs[i], key=lambda e: e.distance)
        b.yes_no("distance_closer", Q_CLOSER,
                 {"a": _the(near.name), "b": _the(far.name)}, {"a": _the(far.name), "b": _the(near.name)})
    return b.out


Q_MOVING = _noted(("Is {x} moving?", "Does {x} change position during the clip?"))
Q_STATIC = _noted(("Is {x} stationary?", "Does {x} stay in one place?"))
Q_SENSE = _noted(("In which direction does {x} move around the microphone array, seen from above: clockwise or "
                  "counter-clockwise?",))
Q_PATH = _noted(("Where does {x} move from and to?", "Describe the path of {x} around the microphone array."))
Q_MOTION_CHOICE = _noted(("How does {x} move around the microphone array, seen from above?",
                          "Which best describes the motion of {x} around the microphone array, seen from above?"))
MOTIONS = ("clockwise", "counter-clockwise", "it does not move")


def _state(e: EventFact) -> str:
    return "moving" if e.moving else "static"


def _sense(e: EventFact) -> str:
    return MOTIONS[2] if not e.moving else "counter-clockwise" if e.speed > 0 else "clockwise"


def _placed(f: Facts) -> list[EventFact]:
    """The events that have a direction: the ones the motion family asks about."""
    return [e for e in f.events if e.azimuth is not None]


def motion_states(f: Facts) -> list[str]:
    """Each placed event's motion state, as the motion questions ask it."""
    return [_state(e) for e in _placed(f)]
Q_SPEED = _noted(("How fast does {x} move around the microphone array, in degrees per second?",))
Q_NUM_MOVING = _noted(("How many of the sound sources are moving?",))


def motion(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("motion", rng, "MOTION")
    placed = _placed(f)
    if not placed:
        return []
    moving = sum(e.moving for e in placed)
    b.add("motion_count", "exact", Q_NUM_MOVING, str(moving), answer("number", str(moving), values=[moving],
                                                                      unit="events"))
    for e in _subjects(f, ctx, rng, lambda e: e.azimuth is not None):
        x = _the(e.name)
        true, false = (Q_MOVING, Q_STATIC) if e.moving else (Q_STATIC, Q_MOVING)
        sense = _sense(e)
        if _kept(rng, ctx, "motion", _state(e)):
            b.yes_no("motion_state", true, {"x": x}, {"x": x}, false_phrasings=false)
        b.choice("motion_choice", Q_MOTION_CHOICE, sense, [m for m in MOTIONS if m != sense], x=x)
        if not e.moving:
            continue
        b.add("motion_sense", "bin", Q_SENSE, sense,
              answer("label", sense, labels=[sense], choices=("clockwise", "counter-clockwise")), x=x)
        speed = abs(e.speed)
        b.add("motion_speed", "exact", Q_SPEED, f"{speed:.0f} degrees per second",
              answer("number", f"{speed:.0f} degrees per second", values=[speed], unit="deg/s"), x=x)
        start, end = side(e.azimuth), side(e.end_azimuth)
        if start and end and start != end:
            text = f"from {SIDE_NOUNS[start]} to {SIDE_NOUNS[end]}, {sense}"
            b.add("motion_path", "bin", Q_PATH, text,
                  answer("direction_words", text, labels=[start, end, sense],
                         values=[wrap(e.azimuth), e.end_azimuth], unit="deg"), x=x)
    return b.out


Q_RT60 = ("What is the reverberation time (RT60) of the room, in seconds?", "How long is the room's RT60?")
Q_REVERB = ("Is the room dry, moderately reverberant or very reverberant?",
            "How reverberant does the room sound: dry, moderately or very reverberant?")
Q_SIZE = ("Is the room small, medium-sized or large?", "How big is the room?")
Q_IS_SIZE = ("Is this a {size} room?", "Was this recorded in a {size} room?")
Q_VOLUME = ("What is the volume of the room, in cubic metres?",)


def room_skip(f: Facts, ctx: Context) -> str | None:
    """Why the room family does not answer for this clip (None: it does): a mixture holding two
    rooms has no single RT60 or size, and a mixture made before `room_ids` were recorded may."""
    if len(f.rooms) > 1:
        return "the clip holds audio from more than one room (a mixture): no single RT60 or size"
    if len(f.parents) > 1 and len(f.room_ids) < len(f.parents) and not f.rooms_recorded:
        return "a mixture without room_ids (made before they were recorded): its partner's room is unknown"
    return None


def room(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    if room_skip(f, ctx):
        return []
    b = _Builder("room", rng, "ROOM")
    if f.rt60 is not None:
        b.add("room_rt60", "exact", Q_RT60, f"{f.rt60:.2f} s", answer("number", f"{f.rt60:.2f} s", values=[f.rt60],
                                                                       unit="s"))
        if min(abs(f.rt60 - 0.3), abs(f.rt60 - 0.8)) >= 0.02:
            word = reverb_word(f.rt60)
            b.add("room_reverb", "bin", Q_REVERB, word, answer("label", word, labels=[word], choices=REVERB_WORDS))
    if f.volume is not None:
        b.add("room_volume", "exact", Q_VOLUME, f"{f.volume:.0f} cubic metres",
              answer("number", f"{f.volume:.0f} cubic metres", values=[f.volume], unit="m^3"))
        if min(abs(f.volume / 50 - 1), abs(f.volume / 300 - 1)) >= 0.05:
            size = room_size(f.volume)
            b.add("room_size", "bin", Q_SIZE, size, answer("label", size, labels=[size], choices=ROOM_SIZES))
            others = [s for s in ROOM_SIZES if s != size]
            b.choice("room_size_choice", Q_SIZE, size, [others[i] for i in _order(rng, 2)])
            _word_yes_no(b, "room_size_yesno", Q_IS_SIZE, "size", size, _pick(rng, others), len(others),
                         _shares(ctx, "room size"))
    return b.out


def _word_yes_no(b: _Builder, task: str, phrasings: tuple[str, ...], key: str, true: str, false: str, k: int,
                 shares: dict[str, float]) -> None:
    """'Is it <word>?' asked of the true word and of a false one (drawn from the k others): with the
    dataset's shares of each word, each half is asked with the probability that makes every word
    the answer "yes" as often as "no" (an 85 % 'medium-sized' dataset had answered "Is this a
    medium-sized room?" yes 92 % of the time); without shares, as a pair."""
    if not shares:
        b.yes_no(task, phrasings, {key: true}, {key: false})
        return
    p, q = shares.get(true, 0.0), shares.get(false, 0.0)
    ask = (p > 0 and b.rng.random() < min(1.0, (1 - p) / (k * p)),
           q < 1 and b.rng.random() < min(1.0, k * q / (1 - q)))
    template = _pick(b.rng, phrasings)
    for i in _order(b.rng, 2):
        if ask[i]:
            b.one(task, template, {key: (true, false)[i]}, i == 0)


Q_LOUDEST = ("Which sound is loudest at the microphone array?", "Which sound event is the loudest?")
Q_LOUDER = ("Is {a} louder than {b}?", "Does {a} sound louder than {b}?")


def _loudness_field(f: Facts) -> str | None:
    """The event field that ranks this clip's events by how loud they are at the array: the power
    in the clip; in one scene (one ambience) the SNR ranks the same when the row has no powers.
    Neither is known for an event cut at the clip's end or reverberated; the source level less
    the spreading loss is never used, as it ignores the room and ranks wrongly."""
    if any(e.power_db is not None for e in f.events):
        return "power_db"
    if not f.mixture and any(e.snr_db is not None for e in f.events):
        return "snr_db"
    return None


def loudest_skip(f: Facts, ctx: Context) -> str | None:
    """Why the loudest family does not answer for this clip (None: it does)."""
    if len(f.events) < 2:
        return None
    key = _loudness_field(f)
    if key and sum(getattr(e, key) is not None for e in f.events) >= 2:
        return None
    if key:
        return ("only one event's loudness is known (the others cut at the clip's end, as a mixing partner often "
                "is, or reverberated): no two events to compare")
    if f.mixture:
        return ("a mixture whose events have no power_db (cut at the clip's end, reverberated, or from parents "
                "that record only snr_db, each over its own ambience): their loudness is not comparable")
    return ("no event has a power_db or snr_db (reverberated, or made before scenes recorded them); level_db "
            "less the spreading loss ignores the room")


def loudest(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    """The loudest source when every event's loudness is known, and louder-than pairs among those
    whose loudness is (an event cut at the clip's end has none)."""
    key = _loudness_field(f)
    if key is None:
        return []
    b = _Builder("loudest", rng, "LOUDEST")
    loudness = attrgetter(key)
    rated = [e for e in f.events if loudness(e) is not None]
    win = _winner(rated, loudness, LEVEL_MARGIN_DB) if len(rated) == len(f.events) else None
    if win:
        names = [e.name for e in rated]
        b.add("loudest", "exact", Q_LOUDEST, win.name,
              answer("label", win.name, labels=[win.class_name], choices=names), x=_the(win.name))
        others = [n for n in names if n != win.name]
        b.choice("loudest_choice", Q_LOUDEST, win.name, [others[i] for i in _order(rng, len(others))],
                 x=_the(win.name))
    pairs = [(p, q) for p, q in combinations(rated, 2)
             if abs(loudness(p) - loudness(q)) >= LEVEL_MARGIN_DB and p.nameable and q.nameable]
    for i in _order(rng, len(pairs))[:ctx.max_subjects]:
        loud, quiet = sorted(pairs[i], key=loudness, reverse=True)
        b.yes_no("loudest_louder", Q_LOUDER, {"a": _the(loud.name), "b": _the(quiet.name)},
                 {"a": _the(quiet.name), "b": _the(loud.name)})
    return b.out


Q_CAPTION = ("Write an audio caption describing the sound.", "Describe the audio in one sentence.",
             "Create a caption for the audio.")


def caption(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    b = _Builder("caption", rng, "CAPTION")
    if f.caption:
        # a spatial scene's caption says where its sounds are ("a dog barks to the left")
        b.add("caption", "exact", _noted(Q_CAPTION) if f.spatial else Q_CAPTION, f.caption, answer("text", f.caption))
    return b.out


Q_OPEN_SCENE = ("What happens in this recording, in order?", "Walk me through the sound events of this clip.")
Q_OPEN_SPACE = _noted(("Describe where each sound comes from.",
                       "How are the sound sources arranged around the listener?"))


def open_ended(f: Facts, ctx: Context, rng: Random) -> list[QA]:
    """Template answers that string exact facts together (the language model writes freer ones)."""
    b = _Builder("open", rng, "OPEN")
    if not all(e.nameable for e in f.events):  # it would name events an ordinal cannot tell apart
        return b.out
    if f.events:  # "then" only where the onsets are far enough apart to be heard in order
        steps = [("then " if i and e.onset - f.events[i - 1].onset >= TIME_MARGIN_S else "at the same time " * bool(i))
                 + f"the {e.name} sounds from {_fmt(e.onset)} s to {_fmt(e.offset)} s" for i, e in enumerate(f.events)]
        text = "; ".join(steps)
        text = (text[0].upper() + text[1:] + f". That is {len(f.events)} event{'s' if len(f.events) > 1 else ''}" +
                (f", with at most {f.max_polyphony} at once." if f.max_polyphony else "."))
        b.add("open-ended question", "open", Q_OPEN_SCENE, text, answer("text", text))
    placed = [e for e in f.events if e.azimuth is not None and side(e.azimuth)]
    if placed:
        parts = []
        for e in placed:
            where = f"{e.name} is {side(e.azimuth)}, about {e.distance:.1f} m away"
            end = side(e.end_azimuth) if e.moving else None
            parts.append(where + (f", moving towards {SIDE_NOUNS[end]}" if end and end != side(e.azimuth)
                                  else ", moving" if e.moving else ", staying still"))
        text = "The " + "; the ".join(parts) + "."
        b.add("open-ended question", "open", Q_OPEN_SPACE, text, answer("text", text))
    return b.out


GENERATORS: dict[str, Callable[[Facts, Context, Random], list[QA]]] = {
    "classification": classification, "description": description, "temporal": temporal, "counting": counting,
    "direction": direction, "distance": distance, "motion": motion, "room": room, "loudest": loudest,
    "caption": caption, "open": open_ended}
# families that skip clips (or some of their tasks) whose metadata would give a wrong or giveaway answer:
# why a clip is skipped (None: answered)
ROW_SKIPS: dict[str, Callable[[Facts, Context], str | None]] = {
    "classification": classification_skip, "room": room_skip, "loudest": loudest_skip}


# coarse words with fixed edges, and the tasks that ask for them: where nearly every clip of a dataset
# gets one word (its rooms all large, its scenes all busy) those tasks are answered without listening,
# so the QA job leaves them out (`pipelines.stages.qa`)
COARSE: dict[str, tuple[str, Callable[[Facts], str | None], tuple[str, ...]]] = {  # fact: family, word, tasks
    "room size": ("room", lambda f: room_size(f.volume) if f.volume else None,
                  ("room_size", "room_size_choice", "room_size_yesno")),
    "reverberance": ("room", lambda f: reverb_word(f.rt60) if f.rt60 is not None else None, ("room_reverb",)),
    "event count bin": ("counting", lambda f: busy_word(len(f.events)) if f.events else None, ("count_bin",)),
    "moving sources": ("motion", lambda f: str(sum(e.moving for e in _placed(f))) if _placed(f) else None,
                       ("motion_count",)),
    "most at once": ("counting", lambda f: str(f.max_polyphony) if f.events and f.max_polyphony is not None else None,
                     ("count_polyphony",)),
    "kinds of sound": ("counting", lambda f: str(len(f.classes)) if f.events else None, ("count_classes",)),
    "sound classes": ("classification", lambda f: "; ".join(f.classes) or None, ("cla_label", "cla_category")),
}
# answers of each class or event asked about, counted over the dataset: their shares thin the commonest
# (`_kept`), and a fact with a single answer leaves its tasks out
SUBJECT_WORDS: dict[str, tuple[str, Callable[[Facts], list[str]], tuple[str, ...]]] = {  # fact: family, words, tasks
    "first heard": ("temporal", first_parts, PART_TASKS),
    "motion": ("motion", motion_states, ("motion_state",)),
    "motion sense": ("motion", lambda f: [_sense(e) for e in _placed(f)], ("motion_choice",)),
}
# tasks whose answer is a word of a counted fact: asked as `_kept` says, so each word the dataset holds is the
# answer about equally often (80 % of realistic scenes were "busy", 90 % held at most 3 sounds at once)
THINNED = {"temporal_part": "first heard", "temporal_part_choice": "first heard", "count_bin": "event count bin",
           "count_polyphony": "most at once", "count_classes": "kinds of sound", "motion_count": "moving sources",
           "motion_choice": "motion sense", "room_reverb": "reverberance", "room_size": "room size",
           "room_size_choice": "room size"}


def generate(f: Facts, ctx: Context) -> list[QA]:
    """Every family's tuples for one clip, less `ctx.skip_tasks`; random choices from (seed, audio
    id, family)."""
    out: list[QA] = []
    for family in ctx.families:
        out += GENERATORS[family](f, ctx, Random(item_seed(ctx.seed, f.audio_id, family)))
    if ctx.shares:
        rng = Random(item_seed(ctx.seed, f.audio_id, "shares"))
        out = [q for q in out if q.task not in THINNED or _kept(rng, ctx, THINNED[q.task], q.answer["text"])]
    return [q for q in out if q.task not in ctx.skip_tasks] if ctx.skip_tasks else out
