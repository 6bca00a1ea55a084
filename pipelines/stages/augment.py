"""The augmentation job: a catalog dataset (and an RIR dataset for reverb) in, augmented copies out.

The driver checks every input (formats, rates, RIR channels, which transforms the data
can take) and draws every recipe from (seed, epoch, output id) before any job starts,
mixing partners included: a partner is drawn from the ids of the same split, so pairing
does not depend on shards or workers. Workers read only the rows and RIRs their shard's
recipes name (decoded to float32, as a replay must decode them), apply them, and write
rows with the input's schema plus `recipe` (the resolved, replayable JSON), `parent_ids` (the
rows of this job's input), `source_ids` (the rows of the first dataset of a chain of augment
jobs: a copy of a copy still names its recording) and `room_ids` (every room whose audio the
row holds: a mixture holds both parents'); the
metadata columns describe the new audio. A mixture of clips from two rooms has no single
room, so its `rt60` and `room_dims` are null; its `room_id` is its first parent's, kept for
provenance only. A reverberated clip takes its RIR's `room_id`, `rt60` and `room_dims`. A
scene's `plan` becomes null (it replays the parent; `recipe` and `parent_ids` replay the row),
and so does its ambience SNR `noise_snr_db` after mix, noise, shift or speed.

Mixing an event library (one labelled clip per row, AudioGen's case) gives its rows the scenes'
event form, mixed or not, so one schema describes them all: `events` (each parent's clip as one
event: event_id, class_name, ontology_id, track, onset, offset, level_db, power_db), `label` the
sorted list of class names, `caption` (default: the label; a mixture's names both parents), and
`ontology_id` moved into the events. A mixture's `license` and `source_file` name both
parents' ("A; B" when they differ); the other library columns are the first parent's, for
provenance, as `room_id` is; `parent_ids` names both.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from functools import partial
from typing import Any, Literal

import datasets
import numpy as np
import pyarrow.compute as pc
import soundfile as sf
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog import Catalog, CatalogConfig, Snapshot, audio_cell, decode_audio, encode_flac
from catalog.errors import RoomtoneError
from catalog.fields import DatasetName, DatasetRefText, Seed, ShardBytes
from catalog.shards import DEFAULT_SHARD_BYTES
from pipelines.sharded import ShardTask, plan_shards, run_sharded
from simulation.seeding import item_rng

ARRAY_OF_FORMAT = {"foa": "foa", "mic": "tetra_mic"}
ONE_FORMAT = ("mix", "rotate", "reverb")   # steps whose result depends on the clips' format: one per dataset
PEAK, FULL_SCALE = 0.99, 1.0
DEFAULT_STEPS = [{"name": "mix", "p": 0.5}, {"name": "rotate", "p": 0.5}, {"name": "gain", "gain_db": [-6.0, 0.0]}]


class AugmentConfig(BaseModel):
    """steps: applied in order, each with probability `p` and its ranges, e.g.
    ``{"name": "mix", "p": 0.5, "snr_db": [-5, 5]}``; names: mix, reverb, rotate, noise, gain,
    shift, speed (see `simulation.augment`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName = "augmented"
    source: DatasetRefText = Field("scenes", description="dataset to augment (NAME or NAME@vN)")
    rirs: DatasetRefText | None = Field(None, description="RIR dataset for reverb (NAME or NAME@vN)")
    steps: list[dict[str, Any]] = Field(default_factory=lambda: [dict(s) for s in DEFAULT_STEPS])
    copies: int = Field(1, ge=1, le=1000, description="augmented rows per input row")
    seed: Seed = 0
    epoch: int = Field(0, ge=0, le=1_000_000, description="a new epoch draws new recipes from the same seed")
    bits: Literal[16, 24] = 16
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[dict]) -> list[dict]:
        from simulation.augment import Spec

        if not steps:
            raise ValueError("give at least one augmentation step")
        for i, step in enumerate(steps):
            try:
                Spec.from_dict(step)
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"step {i}: {exc}") from None
        return steps

    @model_validator(mode="after")
    def _rirs(self) -> "AugmentConfig":
        reverb = any(s.get("name") == "reverb" for s in self.steps)
        if reverb and not self.rirs:
            raise ValueError("the reverb step needs an RIR dataset: set rirs (--rirs NAME)")
        if self.rirs and not reverb:
            raise ValueError(f"rirs is set ({self.rirs}) but no step reverberates: it would be recorded as an input "
                             "the output never read; drop rirs (--rirs), or add a reverb step")
        return self

    def specs(self) -> list:
        from simulation.augment import Spec

        return [Spec.from_dict(s) for s in self.steps]


MOVES = {"mix", "shift", "speed"}  # steps after which an event library's clip is described by its one event
ROOM_FEATURES = {"room_id": datasets.Value("string"), "rt60": datasets.Value("float32"),
                 "room_dims": datasets.Sequence(datasets.Value("float32"))}


def features(source: datasets.Features, kind: dict) -> datasets.Features:
    """The input's schema plus the recipe columns; a mixed event library's in the scenes' event
    form; a reverberated one's with the room of its RIR."""
    out = {**source}
    if kind["reverb"]:
        out.update({k: v for k, v in ROOM_FEATURES.items() if k not in out})
    if kind["one_event"]:
        from pipelines.stages.scenes import EVENT_FEATURES
        from simulation.augment import ONE_EVENT_KEYS

        out.pop("ontology_id", None)
        out.update({"label": datasets.Sequence(datasets.Value("string")), "caption": datasets.Value("string"),
                    "events": [{k: EVENT_FEATURES[k] for k in ONE_EVENT_KEYS}]})
    return datasets.Features({**out, "recipe": datasets.Value("string"),
                              "parent_ids": datasets.Sequence(datasets.Value("string")),
                              "source_ids": datasets.Sequence(datasets.Value("string")),
                              "room_ids": datasets.Sequence(datasets.Value("string"))})


def _column(catalog: Catalog, ref: str, split: str | None, columns: list[str], ids=None) -> list[dict]:
    dataset = catalog.arrow_dataset(ref, split)
    where = pc.field("id").isin(sorted(ids)) if ids is not None else None
    return dataset.to_table(columns=columns, filter=where).to_pylist()


def _kind(snap: Snapshot, names: list[str]) -> dict:
    """What the source holds: rate, format, label hop, whether rows carry scene metadata, and
    whether its rows become one-event clips (an event library mixed, shifted or sped up)."""
    missing = {"id", "audio", "duration"} - set(snap.features)
    if missing:
        raise RoomtoneError(f"{snap.ref} cannot be augmented: it lacks columns {sorted(missing)}",
                            "augment an event library, a scenes dataset or a mixture of them")
    scenes = {"events", "labels"} <= set(snap.features)
    # an event library's clip becomes one event wherever a step must describe what it moves or cuts:
    # a mixture names both parents, and a shift or speed change can leave the clip silent, its label gone
    one_event = bool(MOVES & set(names)) and "events" not in snap.features and "label" in snap.features
    return {"rate": snap.features["audio"].sampling_rate, "format": snap.info.get("format"), "scenes": scenes,
            "hop": snap.info.get("label_hop_s", 0.1) if scenes else None, "one_event": one_event,
            "reverb": "reverb" in names}


def check_inputs(cfg: AugmentConfig, catalog: Catalog) -> tuple[Snapshot, Snapshot | None, dict, dict, dict]:
    """Everything that can be wrong with the inputs, found before the job: returns the source and
    RIR snapshots, the source kind, its rows (id, duration) by split and the RIR ids by split.
    Metadata columns are read, plus, for a source without a num_channels column (an event
    library), every clip's header."""
    src = catalog.show(cfg.source)
    names = [s["name"] for s in cfg.steps]
    kind = _kind(src, names)
    wanted = ("format", "num_channels", "source_ids") + (("room_id",) if "reverb" in names else ())
    cols = ["id", "duration"] + [c for c in wanted if c in src.features]
    rows = {split: _column(catalog, src.ref, split, cols) for split in catalog.splits(src.ref)}
    formats = {(r.get("format"), r.get("num_channels")) for split in rows.values() for r in split}
    if "mix" in names and not (kind["scenes"] or kind["one_event"]):
        raise RoomtoneError(f"mix needs scene metadata (events and frame labels) or one label per clip, but "
                            f"{src.ref} has neither, so a mixture could not be described",
                            "mix a scenes dataset (roomtone simulate scenes) or an event library (roomtone ingest "
                            "events), or drop mix from steps")
    by_channels: dict[int, list[str]] = {}   # an event library's clips by channel count, from their headers
    if "num_channels" not in src.features:
        by_channels = _check_headers(catalog, src.ref, kind["rate"], mixing=kind["one_event"])
    if kind["one_event"] and "mix" in names:
        if "reverb" in names[:names.index("mix")]:
            raise RoomtoneError(f"reverb before mix would mix each reverberant clip of {src.ref} with a dry "
                                "partner, of another channel count when the RIRs are multichannel",
                                "put mix before reverb in steps")
    needs_one = [n for n in ONE_FORMAT if n in names]
    if needs_one and len(formats) > 1:
        held = ", ".join(f"{f}/{c}" for f, c in sorted(formats, key=str))
        raise RoomtoneError(f"{'/'.join(needs_one)} needs clips of one format, but the rows of {src.ref} hold "
                            f"several (format/num_channels: {held})",
                            "augment each format and channel count as its own dataset, or drop "
                            f"{'/'.join(needs_one)} from steps")
    if "rotate" in names and kind["format"] not in ARRAY_OF_FORMAT:
        raise RoomtoneError(f"rotate needs FOA or MIC clips, but {src.ref} has format {kind['format']!r}",
                            "drop rotate from steps, or augment a foa/mic scenes dataset")
    rir_snap, rir_ids = None, {}
    if "reverb" in names:
        if kind["scenes"]:
            raise RoomtoneError(f"{src.ref} is already reverberant and its room columns (room_id, rt60) would no "
                                "longer describe the audio after another RIR",
                                "reverberate a dry event library instead, or drop reverb from steps")
        in_rooms = sorted(r["id"] for split in rows.values() for r in split if r.get("room_id"))
        if in_rooms:
            raise RoomtoneError(f"{len(in_rooms)} row(s) of {src.ref} (e.g. {in_rooms[0]}) are already in a room "
                                "(room_id), reverberated by an earlier augment job, and their room columns would no "
                                "longer describe the audio after another RIR",
                                "reverberate the dry source that job read instead, or drop reverb from steps")
    if cfg.rirs:
        rir_snap = catalog.show(cfg.rirs)
        missing = {"id", "rir", "sample_rate", "num_channels", "array", *ROOM_FEATURES} - set(rir_snap.features)
        if missing:
            raise RoomtoneError(f"{rir_snap.ref} is not an RIR dataset: it lacks columns {sorted(missing)}",
                                "make one with `roomtone simulate rirs`")
        rir_rows = {split: _column(catalog, rir_snap.ref, split, ["id", "sample_rate", "num_channels", "array"])
                    for split in catalog.splits(rir_snap.ref)}
        every = [r for split in rir_rows.values() for r in split]
        rates, arrays = {r["sample_rate"] for r in every}, {r["array"] for r in every}
        channels = {r["num_channels"] for r in every}
        if rates != {kind["rate"]}:
            raise RoomtoneError(f"{rir_snap.ref} is sampled at {sorted(rates)} Hz (sample_rate) but {src.ref} at "
                                f"{kind['rate']} Hz", f"simulate RIRs with sample_rate: {kind['rate']}, or resample "
                                "the source")
        if len(channels) != 1:
            raise RoomtoneError(f"{rir_snap.ref} mixes RIRs of {sorted(channels)} channels (num_channels)",
                                "use an RIR dataset of one array (`roomtone simulate rirs --array ...`)")
        counted = {c for _, c in formats if c is not None}
        stray = (counted or set(by_channels)) - {1} - channels   # mono clips take RIRs of any channel count
        if stray:
            where = "num_channels" if counted else \
                f"their headers, e.g. {min(by_channels[min(stray)])}; the source has no num_channels column"
            raise RoomtoneError(f"{rir_snap.ref} has {sorted(channels)}-channel RIRs (num_channels) but {src.ref} "
                                f"holds {sorted(stray)}-channel clips ({where})",
                                f"use RIRs simulated for the clips' array ({sorted(stray)} channels), or "
                                "reverberate mono clips, which take RIRs of any channel count")
        from simulation.augment import sometimes_upmixed

        upmixing = sometimes_upmixed(cfg.specs(), channels)
        if upmixing is not None and 1 in (counted or set(by_channels)):
            raise RoomtoneError(f"steps[{upmixing}].p is {cfg.steps[upmixing]['p']}: reverb would turn some "
                                f"mono clips of {src.ref} into {sorted(channels)[0]}-channel clips and leave the "
                                "others mono, one dataset of two formats",
                                "set the reverb step's p to 1, or use single-channel RIRs")
        if kind["format"] in ARRAY_OF_FORMAT and arrays != {ARRAY_OF_FORMAT[kind["format"]]}:
            raise RoomtoneError(f"{src.ref} is {kind['format']} but {rir_snap.ref} holds {sorted(arrays)} RIRs",
                                f"simulate RIRs with --array {kind['format']}")
        rir_ids = {split: sorted(r["id"] for r in split_rows) for split, split_rows in rir_rows.items()}
    return src, rir_snap, kind, rows, rir_ids


def _check_headers(catalog: Catalog, ref: str, rate: int, mixing: bool) -> dict[int, list[str]]:
    """Every clip of a source without a num_channels column (an event library) must be at the rate
    its audio column declares, and, to be mixed sample for sample and channel for channel, hold one
    channel count. Every clip's header is read, in batches; nothing is decoded. Returns the clip
    ids by channel count."""
    held: dict[tuple[int, int], list[str]] = {}
    columns = {"id": pc.field("id"), "bytes": pc.field("audio", "bytes")}
    for batch in catalog.arrow_dataset(ref).to_batches(columns=columns, batch_size=256):
        for clip, data in zip(batch.column("id").to_pylist(), batch.column("bytes").to_pylist()):
            info = sf.info(io.BytesIO(data))
            held.setdefault((info.samplerate, info.channels), []).append(clip)
    stray = sorted((clip, r) for (r, _), ids in held.items() if r != rate for clip in ids)
    if stray:
        raise _rate_error(ref, *stray[0], rate, more=len(stray) - 1)
    if mixing and len(held) > 1:
        found = ", ".join(f"{c} ch: {len(ids)} clip(s), e.g. {min(ids)}" for (_, c), ids in sorted(held.items()))
        raise RoomtoneError(f"mix needs clips of one channel count, but the clips of {ref} hold {found}",
                            "re-make the library so every clip has one channel count (`roomtone ingest events` "
                            "makes mono clips), or mix each channel count as its own dataset")
    by_channels: dict[int, list[str]] = {}
    for (_, c), ids in held.items():
        by_channels.setdefault(c, []).extend(ids)
    return by_channels


def _rate_error(ref: str, row_id: str, got: int, rate: int, more: int = 0) -> RoomtoneError:
    others = f" (and {more} more row(s))" if more else ""
    return RoomtoneError(f"row {row_id} of {ref}{others} is sampled at {got} Hz, not at the {rate} Hz of the "
                         "dataset's audio column (its sampling_rate)",
                         f"re-make the source so every clip is at {rate} Hz (e.g. `roomtone ingest events "
                         f"--sample-rate {rate}`)")


def draw_all(cfg: AugmentConfig, kind: dict, rows: dict, rir_ids: dict) -> tuple[dict[str, list[tuple]], dict]:
    """Every output item as (output id, recipe JSON, duration), by split; draws come from
    (seed, output id, epoch) and the sorted ids of the split, never from the shard layout.

    Splits never mix with each other (no clip of the test split may reach the train split), and
    a clip never mixes with a copy of its own recording (`source_ids`: an earlier augment job's
    copies), so a split of one recording skips `mix`; the skips come back with their reason for
    the run's info.
    A split the RIR dataset lacks takes its train RIRs; each reverberated row names its room
    (`room_id`, `room_ids`), so the QA split keeps rooms apart all the same.
    """
    from simulation.augment import Context, draw_recipe, source_ids

    out, skipped = {}, {}
    for split, split_rows in rows.items():
        specs = cfg.specs()
        recordings = {r["id"]: frozenset(source_ids(r)) for r in split_rows}
        if len(frozenset().union(*recordings.values())) < 2 and any(s.name == "mix" for s in specs):
            specs = [s for s in specs if s.name != "mix"]
            skipped.setdefault("mix", {})[split] = f"split {split!r} holds one recording: nothing to mix it with"
        ordered = sorted(split_rows, key=lambda r: r["id"])
        pool = [(r["id"], int(round(r["duration"] * kind["rate"]))) for r in ordered]
        holding = defaultdict(list)  # recording -> the pool indices of the rows holding it
        for k, (i, _) in enumerate(pool):
            for rec in recordings[i]:
                holding[rec].append(k)
        rirs = rir_ids.get(split) or rir_ids.get("train") or []
        items = []
        for (parent, length), row in zip(pool, ordered):
            skip = tuple(sorted({j for rec in recordings[parent] for j in holding[rec]}))  # itself included
            for c in range(cfg.copies):
                out_id = f"{parent}-aug{c}"
                ctx = Context(out_id, length, kind["rate"], kind["format"], kind["hop"], pool, rirs, parent, skip)
                try:
                    recipe = draw_recipe(specs, item_rng(cfg.seed, out_id, "augment", str(cfg.epoch)), ctx,
                                         seed=cfg.seed, epoch=cfg.epoch)
                except ValueError as exc:
                    raise RoomtoneError(f"cannot draw a recipe for {out_id} (split {split!r}): {exc}",
                                        "fix the step ranges named above") from None
                items.append((out_id, recipe.to_json(), float(row["duration"])))
        out[split] = items
    return out, skipped


def load_rows(catalog: Catalog, ref: str, split: str, ids: set[str], rate: int,
              one_event: bool = False) -> dict[str, tuple]:
    """Rows by id as (audio (C, T) float32 tensor, metadata without audio); with `one_event`, an
    event-library row becomes a clip of one event whose power is measured here (see `one_event`)."""
    from simulation.augment import one_event as as_event, rms

    out = {}
    for row in _column(catalog, ref, split, list(catalog.show(ref).features), ids):
        audio, got = decode_audio(row.pop("audio")["bytes"], dtype="float32")
        if got != rate:  # a source with num_channels is not scanned before the job (see `_check_headers`)
            raise _rate_error(ref, row["id"], got, rate)
        audio = torch.from_numpy(np.ascontiguousarray(audio.T))
        if one_event:
            level = float(rms(audio[None])[0])
            row = as_event(row, 20.0 * math.log10(level) if level > 0 else None)
        out[row["id"]] = (audio, row)
    return out


def load_rirs(catalog: Catalog, ref: str, ids: set[str]) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """RIRs by id, and the room each belongs to (see `Resources.rir_rooms`)."""
    rows = _column(catalog, ref, None, ["id", "rir", *ROOM_FEATURES], ids)
    return ({r["id"]: torch.tensor(np.array(r["rir"], dtype=np.float32)) for r in rows},
            {r["id"]: {k: r[k] for k in ROOM_FEATURES} for r in rows})


def augment_row(recipe_json: str, rows: dict, rirs: tuple[dict, dict], kind: dict) -> tuple[np.ndarray, dict, str]:
    """Apply one stored recipe; audio that would clip in FLAC gets a recorded gain step to a 0.99 peak."""
    from simulation.augment import Gain, Recipe, Resources, apply_recipe

    recipe = Recipe.from_json(recipe_json)
    audio, meta = rows[recipe.parent_ids[0]]
    res = Resources(partners={k: v[0] for k, v in rows.items()}, partner_meta={k: v[1] for k, v in rows.items()},
                    rirs=rirs[0], rir_rooms=rirs[1])
    hop = kind["hop"] or 0.1
    out, new_meta, done = apply_recipe(recipe, audio, kind["rate"], meta, res, hop=hop)
    peak = float(out.abs().max())
    if peak > FULL_SCALE:
        limit = Gain(20.0 * math.log10(PEAK / peak))
        done = Recipe(done.item_id, done.parent_ids, done.seed, done.epoch, done.steps + (limit,))
        out, new_meta, done = apply_recipe(done, audio, kind["rate"], meta, res, hop=hop)
    return out.numpy(), new_meta, done.to_json()


def make_rows(cfg: AugmentConfig, catalog_json: str, source: str, rirs_ref: str | None, kind: dict,
              task: ShardTask):
    from simulation.augment import Recipe, Reverb, room_ids, source_ids

    catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
    recipes = [Recipe.from_json(r) for _, r, _ in task.items]
    rows = load_rows(catalog, source, task.split, {p for r in recipes for p in r.parent_ids}, kind["rate"],
                     kind["one_event"])
    rir_ids = {s.rir_id for r in recipes for s in r.steps if isinstance(s, Reverb)}
    rirs = load_rirs(catalog, rirs_ref, rir_ids) if rir_ids else ({}, {})
    for out_id, recipe_json, _ in task.items:
        audio, meta, resolved = augment_row(recipe_json, rows, rirs, kind)
        parents = Recipe.from_json(resolved).parent_ids
        sources = list(dict.fromkeys(s for p in parents for s in source_ids(rows[p][1])))
        meta = {**meta, "id": out_id, "recipe": resolved, "parent_ids": list(parents), "source_ids": sources,
                "room_ids": room_ids(meta),
                "audio": audio_cell(encode_flac(audio.T, kind["rate"], cfg.bits), f"{out_id}.flac")}
        if "num_channels" in meta:
            meta["num_channels"] = audio.shape[0]
        if "plan" in meta:  # a scene's plan replays the parent, not this row: `recipe` and `parent_ids` do
            meta["plan"] = None
        yield meta


def run_augment(cfg: AugmentConfig, catalog: Catalog, *, address: str | None = None,
                show_progress: bool = True) -> Snapshot:
    """Check inputs and draw every recipe on the driver (cheap), then augment on Ray."""
    src, rir_snap, kind, rows, rir_ids = check_inputs(cfg, catalog)
    items, skipped = draw_all(cfg, kind, rows, rir_ids)
    pinned = cfg.model_copy(update={"source": src.ref, "rirs": rir_snap.ref if rir_snap else None})
    inputs = [src.ref] + ([rir_snap.ref] if rir_snap else [])
    info = {**src.info, "augmented_from": src.ref, "steps": cfg.steps, "skipped": skipped}
    run = catalog.create_run(cfg.name, pinned, features(src.features, kind), inputs=inputs, info=info)
    channels = max([r.get("num_channels") or 1 for split in rows.values() for r in split] + [4 if rir_snap else 1])
    per_second = kind["rate"] * channels * cfg.bits / 8 * 0.8
    tasks = plan_shards(items, cfg.max_shard_bytes, lambda item: item[2] * per_second)
    return run_sharded(catalog, run, tasks, partial(make_rows, pinned, catalog.config.model_dump_json(), src.ref,
                                                    rir_snap.ref if rir_snap else None, kind),
                       address=address, show_progress=show_progress, description=f"augmenting {cfg.name}")


def check_in_spec(cfg: AugmentConfig, made: dict, catalog: Catalog) -> None:
    """The kinds of its inputs, before anything runs (run_augment checks the stored datasets in full)."""
    from pipelines.stages import check_clips, check_input

    check_clips("source", cfg.source, made, catalog)
    check_input("rirs", cfg.rirs, made, catalog, makers=("RirsConfig",), columns=("rir",), what="an RIR dataset")
    if "reverb" in [s["name"] for s in cfg.steps] and type(made.get(cfg.source)).__name__ == "ScenesConfig":
        raise RoomtoneError(f"source {cfg.source!r} is made by this spec's scenes stage, already reverberant: "
                            "another RIR would leave its room columns (room_id, rt60) describing the wrong room",
                            "reverberate a dry event library instead, or drop reverb from steps")
