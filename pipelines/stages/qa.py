"""The QA job: a scenes, mixtures or event-library dataset in, question-answer tuples out.

Metadata only (no audio is read), so every answer comes from the exact facts the row
records. The driver checks which families the dataset can answer (a family whose metadata
is missing is skipped with the reason; asking only for such families is an error), counts
the rows a family skips because their metadata would answer it wrongly (a mixture holding
two rooms has no single room) by reason, splits clips so no room or source recording is on
both sides, asks the language model (optional, I/O-bound, so on the driver) and records the
run summary in the snapshot info. Workers read only their rows' metadata and write one
shard each; tuples per family are the snapshot's class counts (the shard writer counts the
``family`` column).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog import Catalog, CatalogConfig, Snapshot
from catalog.errors import RoomtoneError
from catalog.fields import DatasetName, DatasetRefText, Seed, ShardBytes
from catalog.names import DatasetRef
from catalog.shards import DEFAULT_SHARD_BYTES
from catalog.storage import absolute_path
from pipelines.qa.facts import CONVENTION, Facts, distance_bin, extract_facts
from pipelines.qa.families import (COARSE, FAMILIES, ROW_SKIPS, SUBJECT_WORDS, Context, generate,
                                   yes_no_weights)
from pipelines.qa.lm import LmConfig, ask_all, preflight
from pipelines.qa.ontology import Ontology
from pipelines.qa.records import features, to_rows
from pipelines.qa.splits import Clip, assign_splits
from pipelines.sharded import ShardTask, plan_shards, run_sharded

# a coarse word shared by this share of at least this many clips is one a model learns without listening
CONSTANT_SHARE, MIN_CLIPS_FOR_SHARE = 0.9, 20
BYTES_PER_CLIP = 30_000  # about 60 tuples of ~500 bytes, for shard sizing
# where the absent classes of yes/no and multiple-choice questions come from (the run summary says)
NEGATIVES_WITH = ("the dataset's class map, ontology siblings of the clip's classes 4x likelier, never an ancestor or "
                  "descendant of a present class; classes weighted so each is as often asked about absent as present")
NEGATIVES_WITHOUT = ("the dataset's class map, without an ontology: if the map holds parents and children (Animal, "
                     "Dog), a present sound's parent can be asked about as absent; give ontology to rule that out")


class QaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName | None = Field(None, description="output dataset (default <source>_qa)")
    source: DatasetRefText = Field("scenes", description="scenes, mixtures or event-library dataset (NAME or NAME@vN)")
    families: list[str] | None = Field(None, description=f"default: all of {', '.join(FAMILIES)}")
    ontology: Path | None = Field(None, description="AudioSet ontology.json: descriptions and hard negatives")
    max_subjects: int = Field(2, ge=1, le=50, description="events each family asks about per clip")
    test_fraction: float = Field(0.25, ge=0, lt=1, description="rooms held out when the source has no test split")
    seed: Seed = 0
    lm: LmConfig | None = Field(None, description="optional OpenAI-compatible model for open-ended tuples")
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @field_validator("families")
    @classmethod
    def _known(cls, families: list[str] | None) -> list[str] | None:
        unknown = sorted(set(families or []) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
        if families is not None and not families:
            raise ValueError("families is empty; leave it unset for all families")
        return families

    @field_validator("ontology")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return None if path is None else absolute_path(path)

    @model_validator(mode="after")
    def _default_name(self) -> "QaConfig":
        if self.name is None and len(DatasetRef.parse(self.source).name) > 60:
            raise ValueError("the default name <source>_qa would exceed 63 characters; set name")
        return self


def _event_fields(snap: Snapshot) -> set[str]:
    """The fields of the per-event metadata (a list of structs), empty without it."""
    events = snap.features.get("events")
    inner = events[0] if isinstance(events, list) and events else getattr(events, "feature", None)
    return set(inner) if isinstance(inner, dict) else set()


def available_families(cfg: QaConfig, snap: Snapshot) -> tuple[list[str], dict[str, str]]:
    """The families this dataset can answer, and the reason each other one is skipped."""
    cols, ev = set(snap.features), _event_fields(snap)
    if "question_type" in cols:
        raise RoomtoneError(f"{snap.ref} is a QA dataset: its rows are questions, not clips",
                            "make tuples from the scenes, events or mixtures dataset it was made from "
                            f"({', '.join(snap.inputs) or 'see roomtone catalog lineage'})")
    if "audio" not in cols:
        raise RoomtoneError(f"{snap.ref} holds no audio clips (no audio column): tuples about it would ask about "
                            "sounds nobody can hear", "make tuples from a scenes, events or mixtures dataset")
    spatial = snap.info.get("format") in ("foa", "mic") and "format" in cols
    no_events = f"{snap.ref} has no per-event metadata (events column): its clips have no timeline"
    no_space = (f"{snap.ref} is not spatial (format {snap.info.get('format')!r}, no per-event azimuth/distance): "
                f"directions and distances would be invented")
    needs = {
        "classification": None if "label" in cols else f"{snap.ref} has no label column",
        "description": ("no ontology given (set ontology to AudioSet's ontology.json)" if cfg.ontology is None
                        else None if "ontology_id" in cols | ev else f"{snap.ref} has no ontology_id metadata"),
        "temporal": None if {"onset", "offset"} <= ev else no_events,
        "counting": None if {"onset", "offset"} <= ev else no_events,
        "direction": None if spatial and {"azimuth", "elevation"} <= ev else no_space,
        "distance": None if spatial and "distance" in ev else no_space,
        "motion": None if spatial and {"azimuth", "speed"} <= ev else no_space,
        "room": None if {"rt60", "room_dims"} <= cols else f"{snap.ref} has no room metadata (rt60, room_dims)",
        "loudest": None if {"level_db", "onset"} <= ev else f"{snap.ref} has no per-event levels",
        "caption": None if "caption" in cols else f"{snap.ref} has no caption column",
        "open": None if {"onset", "offset"} <= ev or cfg.lm else no_events,
    }
    asked = cfg.families or list(FAMILIES)
    ok = [f for f in asked if needs[f] is None]
    skipped = {f: needs[f] for f in asked if needs[f] is not None}
    if not ok:   # a run would publish an empty dataset
        raise RoomtoneError(f"{snap.ref} cannot answer {'the families asked for' if cfg.families else 'any family'}: " +
                            "; ".join(f"{f}: {r}" for f, r in skipped.items()),
                            "choose families the dataset has metadata for, or a scenes dataset "
                            "(`roomtone simulate scenes`)")
    return ok, skipped


def _metadata_columns(snap: Snapshot) -> list[str]:
    return [c for c in snap.features if c not in ("audio", "plan", "recipe")]


@dataclass
class _Scan:
    """What the driver learns reading every row's metadata once."""

    clips: list[Clip] = field(default_factory=list)
    skips: dict[str, dict[str, str]] = field(default_factory=dict)   # row id -> family -> why skipped
    event_counts: Counter = field(default_factory=Counter)            # events per clip -> clips
    distance_bins: set[int] = field(default_factory=set)
    # COARSE fact -> word -> clips; SUBJECT_WORDS fact -> word -> classes or events
    coarse: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    class_sets: dict[tuple, list] = field(default_factory=dict)   # (classes, ontology ids) -> [facts, clips]

    def context_fields(self, families: list[str], ctx: Context) -> tuple[list[str], dict]:
        """The warnings, and the `Context` fields the dataset decides: option ranges, tasks left
        out, yes/no weights, the count histogram and answer shares."""
        warnings, skip_tasks = _warnings(families, self)
        present, absent = yes_no_weights([(f, n) for f, n in self.class_sets.values()], ctx) \
            if "classification" in families else ({}, {})
        event_counts, distance_bins = self.spread()
        return warnings, {"event_counts": event_counts, "distance_bins": distance_bins, "skip_tasks": skip_tasks,
                          "present_weights": tuple(sorted(present.items())),
                          "absent_weights": tuple(sorted(absent.items())),
                          "event_count_clips": tuple(sorted(self.event_counts.items())), "shares": self.shares()}

    def count(self, facts: Facts) -> None:
        """Add one clip's facts to the dataset's counts."""
        if facts.events:
            self.event_counts[len(facts.events)] += 1
        self.distance_bins.update(distance_bin(e.distance) for e in facts.events if e.distance is not None)
        for fact, (_, word, _) in COARSE.items():
            if (w := word(facts)) is not None:
                self.coarse[fact][w] += 1
        for fact, (_, words, _) in SUBJECT_WORDS.items():
            self.coarse[fact].update(words(facts))
        self.class_sets.setdefault((facts.classes, tuple(facts.ontology_ids.items())), [facts, 0])[1] += 1

    def shares(self) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
        """Each counted fact's share of each word (`Context.shares`)."""
        return tuple((fact, tuple((w, n / words.total()) for w, n in sorted(words.items())))
                     for fact, words in sorted(self.coarse.items()) if words.total())

    def spread(self) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        """(low, high) of events per clip and of distance bins: the range of multiple-choice options."""
        def span(values, low):
            return (min(values), max(values)) if values else (low, None)
        return span(self.event_counts, 0), span(self.distance_bins, 1)


def _scan(catalog: Catalog, snap: Snapshot, ctx: Context) -> _Scan:
    """Every row as the split sees it, the families that skip it, and the dataset's spread."""
    cols = [c for c in ("id", "duration", "room_id", "room_ids", "events", "parent_ids", "source_ids", "format",
                        "num_channels", "rt60", "room_dims", "label", "ontology_id") if c in snap.features]
    checks = {f: ROW_SKIPS[f] for f in ctx.families if f in ROW_SKIPS}
    scan = _Scan()
    for split in catalog.splits(snap.ref):
        for row in catalog.arrow_dataset(snap.ref, split).to_table(columns=cols).to_pylist():
            facts = extract_facts(row)
            scan.clips.append(Clip(row["id"], split, facts.rooms, facts.clips))
            reasons = {f: why for f, check in checks.items() if (why := check(facts, ctx))}
            if reasons:
                scan.skips[row["id"]] = reasons
            scan.count(facts)
    return scan


def _warnings(families: list[str], scan: _Scan) -> tuple[list[str], frozenset[str]]:
    """What would let a model answer without listening, found before any tuple is written, and
    the tasks left out for it (a coarse word that nearly every clip shares)."""
    out, skip = [], set()
    counts = scan.event_counts
    if "counting" in families and len(counts) == 1 and counts.total() >= 10:
        n = next(iter(counts))
        skip.update(("count_events", "count_choice"))
        out.append(f"counting: all {counts.total()} clips hold {n} events, so count_events and count_choice "
                   f"would be answered without listening; they are left out (scenes draw a count per clip around "
                   f"events_per_minute; a mixture of one-event clips always holds two)")
    for fact, (family, _, tasks) in SUBJECT_WORDS.items():   # several answers are balanced by `shares`
        words = scan.coarse.get(fact, Counter())
        if family in families and len(words) == 1 and words.total() >= MIN_CLIPS_FOR_SHARE:
            (word, n), = words.items()
            skip.update(tasks)
            out.append(f"{fact}: all {n} sounds asked about are '{word}', so {', '.join(tasks)} would be answered "
                       f"without listening; they are left out (vary the scenes for them)")
    for fact, (family, _, tasks) in COARSE.items():
        words = scan.coarse.get(fact, Counter())
        total = words.total()
        if family in families and total >= MIN_CLIPS_FOR_SHARE and words.most_common(1)[0][1] >= CONSTANT_SHARE * total:
            word, n = words.most_common(1)[0]
            skip.update(tasks)
            out.append(f"{fact}: {n} of {total} clips are '{word}', so {', '.join(tasks)} would be answered "
                       f"without listening; they are left out (vary the rooms or scenes for them)")
    return out, frozenset(skip)


def _count_skips(by_split: dict[str, list[Clip]], skips: dict[str, dict[str, str]]) -> dict[str, dict[str, int]]:
    """Family -> reason -> how many rows of the output splits it skipped."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for clips in by_split.values():
        for clip in clips:
            for family, why in skips.get(clip.id, {}).items():
                counts[family][why] += 1
    return {f: dict(c) for f, c in sorted(counts.items())}


@lru_cache(maxsize=4)
def _context(seed: int, class_map: tuple[str, ...], ontology: str | None, max_subjects: int,
             families: tuple[str, ...], fields: tuple = ()) -> Context:
    """The worker's Context (cached: loaded once per worker); fields: the dataset's (name, value) pairs."""
    return Context(seed, class_map, Ontology.load(ontology) if ontology else None, max_subjects, families,
                   **dict(fields))


def make_rows(cfg: QaConfig, catalog_json: str, ref: str, ctx_args: tuple, task: ShardTask):
    """One shard: read the metadata of its rows (one filtered scan per input split), answer them."""
    import pyarrow.dataset as pads

    catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
    snap = catalog.show(ref)
    ctx = _context(*ctx_args)
    by_split = defaultdict(list)
    for split, audio_id, _ in task.items:
        by_split[split].append(audio_id)
    rows = {}
    for split, ids in by_split.items():
        table = catalog.arrow_dataset(ref, split).to_table(columns=_metadata_columns(snap),
                                                           filter=pads.field("id").isin(ids))
        rows.update((r["id"], r) for r in table.to_pylist())
    for split, audio_id, extra in task.items:
        facts = extract_facts(rows[audio_id])
        yield from to_rows(facts, generate(facts, ctx) + list(extra), seed=cfg.seed, dataset=ref, audio_split=split)


def run_qa(cfg: QaConfig, catalog: Catalog, *, address: str | None = None, show_progress: bool = True) -> Snapshot:
    """Check, split and (optionally) ask the model on the driver, then write tuples on Ray."""
    snap = catalog.show(cfg.source)
    families, skipped = available_families(cfg, snap)
    if cfg.ontology is not None:
        Ontology.load(cfg.ontology)  # a bad path fails here, not in a worker
    if cfg.lm is not None:
        preflight(cfg.lm)
    class_map = tuple(snap.info.get("classes") or sorted(snap.stats.get("class_counts", {})))
    ctx_args = (cfg.seed, class_map, str(cfg.ontology) if cfg.ontology else None, cfg.max_subjects,
                tuple(families))
    ctx = _context(*ctx_args)
    scan = _scan(catalog, snap, ctx)
    warnings, fields = scan.context_fields(families, ctx)
    ctx_args += (tuple(fields.items()),)
    by_split, dropped = assign_splits(scan.clips, cfg.test_fraction, cfg.seed)
    lm_tuples, lm_summary = {}, None
    if cfg.lm is not None:
        keep = {c.id for clips in by_split.values() for c in clips}
        rows = [r for split in catalog.splits(snap.ref) for r in catalog.arrow_dataset(snap.ref, split).to_table(
            columns=_metadata_columns(snap)).to_pylist() if r["id"] in keep]
        lm_tuples, lm_summary = ask_all(cfg.lm, [extract_facts(r) for r in rows], list(class_map), ctx.ontology)
    summary = {"families": families, "skipped_families": skipped, "convention": CONVENTION,
               "split_dropped": len(dropped), "split_dropped_examples": dict(sorted(dropped.items())[:5]),
               "clips": {s: len(c) for s, c in by_split.items()}, "language_model": lm_summary,
               "skipped_rows": _count_skips(by_split, scan.skips), "warnings": warnings,
               "skipped_tasks": sorted(fields["skip_tasks"]),
               "choice_ranges": {"events_per_clip": fields["event_counts"], "distance_bins": fields["distance_bins"]}}
    if "classification" in families:
        summary["negatives"] = NEGATIVES_WITH if cfg.ontology else NEGATIVES_WITHOUT
    name = cfg.name or f"{snap.name}_qa"
    pinned = cfg.model_copy(update={"source": snap.ref, "name": name})
    run = catalog.create_run(name, pinned, features(), inputs=[snap.ref],
                             info={"source": snap.ref, "summary": summary, "classes": list(class_map)})
    items = {split: [(c.split, c.id, tuple(lm_tuples.get(c.id, ()))) for c in clips]
             for split, clips in by_split.items()}
    return run_sharded(catalog, run, plan_shards(items, cfg.max_shard_bytes, BYTES_PER_CLIP),
                       partial(make_rows, pinned, catalog.config.model_dump_json(), snap.ref, ctx_args),
                       address=address, show_progress=show_progress, description=f"QA tuples for {snap.name}",
                       writer_options={"class_column": "family"})


def run_summary(snap: Snapshot) -> dict:
    """The stored summary with the tuple counts per family (the snapshot's class counts); a family
    without tuples is empty for want of values unless it skipped clips (then `skipped_rows` says why)."""
    summary = snap.info.get("summary", {})
    counts = snap.stats.get("class_counts", {})
    empty = {f: "no clip had the values it needs (for example null ontology ids)"
             for f in summary.get("families", []) if f not in counts and f not in summary.get("skipped_rows", {})}
    return {**summary, "tuples": snap.stats.get("rows", 0), "tuples_per_family": counts,
            "empty_families": empty, "splits": snap.stats.get("splits", {})}


def export_qa(catalog: Catalog, ref: str, out: str | Path, *, audio_path: str = "{audio_id}") -> dict:
    """``<out>/ltu_<split>.json`` (LTU's six keys), ``<out>/spatialsoundqa_<split>.json`` and
    ``<out>/convention.json`` (the coordinate frame and units of every record beside it, which
    the formats' fixed keys cannot hold; spatial questions also state it in their text).

    audio_path: how LTU's ``audio_id`` names the file, e.g. ``foa_dev/{split}/fold{fold}_{audio_id}.wav``
    to point at a DCASE export of the source (``roomtone export dcase``)."""
    from pipelines.qa.records import check_audio_path, ltu_record, spatial_record, write_convention, write_json

    snap = catalog.show(ref)
    if "question_type" not in snap.features:
        raise RoomtoneError(f"{snap.ref} is not a QA dataset", "export one made by `roomtone qa make`")
    check_audio_path(audio_path)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RoomtoneError(f"--out {out} is a file", "give a folder (made if missing)")
    written = {}
    write_convention(out / "convention.json", snap.ref, snap.info["summary"]["convention"])  # as the tuples were made
    for split in catalog.splits(snap.ref):
        def rows():
            for batch in catalog.arrow_dataset(snap.ref, split).to_batches(batch_size=8192):
                yield from batch.to_pylist()

        written[f"ltu_{split}.json"] = write_json((ltu_record(r, audio_path) for r in rows()),
                                                  out / f"ltu_{split}.json")
        written[f"spatialsoundqa_{split}.json"] = write_json((spatial_record(r) for r in rows()),
                                                             out / f"spatialsoundqa_{split}.json")
    for stale in [*out.glob("ltu_*.json"), *out.glob("spatialsoundqa_*.json")]:   # an earlier export's other splits
        if stale.name not in written:
            stale.unlink()
    return {"dataset": snap.ref, "out": str(out), "records": written}


def check_in_spec(cfg: QaConfig, made: dict, catalog: Catalog) -> None:
    """Its source is a dataset of audio clips, before anything runs."""
    from pipelines.stages import check_clips

    check_clips("source", cfg.source, made, catalog)
