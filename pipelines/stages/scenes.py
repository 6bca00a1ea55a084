"""The SELD scenes job: an event library and an RIR dataset in, labelled multichannel clips out.

The RIR dataset supplies the rooms: geometry, wall reflection, temperature and where the
array stands (and so the lineage of every scene). Scene RIRs come from one of two sources:

- ``dataset``: the RIRs stored in the RIR dataset, which must hold a grid of source positions
  around the array (``roomtone simulate rirs`` with ``placement: grid``), as the DCASE
  generators use measured SRIRs. Static sources sit on grid points, moving ones step along
  their ring; labels are the stored positions, exactly. Nothing is simulated per scene.
- ``simulate``: RIRs simulated for the planned positions with the same engine, so sources
  sit anywhere and move continuously (several times slower).

``auto`` (the default) takes the stored grid when the RIR dataset has one. Each Ray worker
decodes the event library once; stored RIRs are read one room at a time: the driver orders
each split's scenes by room before cutting it into shards (a room's scenes fill consecutive
shards, so a PSELDNets-sized set, 70 scenes per room, reads each room about once instead of
once per scene), a shard renders its scenes room by room, and a worker keeps the last
ROOM_CACHE rooms for its next shards. Every random draw comes from (seed, scene id): scenes
do not depend on the worker count or the sharding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Literal

import datasets
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog import Catalog, CatalogConfig, Snapshot, audio_cell, decode_audio, encode_flac
from catalog.errors import RoomtoneError
from catalog.fields import DatasetName, DatasetRefText, Seed, ShardBytes
from catalog.shards import DEFAULT_SHARD_BYTES
from pipelines.sharded import ShardTask, holdout, keep_freed_buffers, plan_shards, run_sharded
from simulation.seeding import item_rng, item_seed

Range = tuple[float, float]
ARRAY_OF_FORMAT = {"foa": "foa", "mic": "tetra_mic"}
BATCH_BYTES = 64_000_000
# physical bounds: speeds in degrees/s, distances in m, elevations in degrees
RANGE_LIMITS = {"speed_range": (0.0, 360.0), "distance_range": (0.1, 50.0), "elevation_range": (-90.0, 90.0)}
ROOM_COLUMNS = ["room_id", "room_dims", "beta", "temperature", "array_center", "array", "rt60_target", "rt60"]


class ScenesConfig(BaseModel):
    """Defaults follow the DCASE generators and PSELDNets (60 s clips, up to 3 overlapping
    events, 6-30 dB ambience); the demo shortens the clips.

    rir_source defaults to auto: a grid RIR set is rendered from its stored RIRs (several
    times faster, labels exactly the stored positions), and a set of random positions, which
    has no RIR for planned positions, is simulated per scene, so both kinds of set just work.
    The run config records the source that was used."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName = "scenes"
    events: DatasetRefText = Field("events", description="event library dataset (NAME or NAME@vN)")
    rirs: DatasetRefText = Field("rirs", description="RIR dataset whose rooms and array placements the scenes use")
    format: Literal["foa", "mic"] = "foa"
    classes: list[str] | None = Field(None, description="class map (index = position); default: sorted labels")
    num_scenes: int = Field(8, ge=1, le=10_000_000)
    clip_seconds: float = Field(60.0, gt=0, le=600)
    tracks: int = Field(3, ge=1, le=3)
    polyphony: int = Field(3, ge=1, le=3, description="most events at once (ov1/ov2/ov3)")
    events_per_minute: float = Field(36.0, gt=0, le=600, description="mean event rate; each clip's count is a "
                                                                     "Poisson draw around it (at least 1)")
    level_db: Range | None = Field(None, description="event RMS range, dB re a unit-RMS dry signal "
                                                     "(default (-10, 0); not with event_snr_db)")
    event_snr_db: Range | None = Field(None, description="instead of level_db: each event's SNR range against "
                                                         "the ambience, dB (the ambience level is then fixed)")
    snr_db: Range | None = Field(None, description="ambience SNR range of the whole clip, dB "
                                                   "(default (6, 30); not with event_snr_db)")
    moving_fraction: float = Field(0.5, ge=0, le=1)
    speed_range: Range = (10.0, 40.0)
    distance_range: Range = (1.0, 3.0)
    elevation_range: Range = (-45.0, 45.0)
    max_event_seconds: float | None = Field(None, gt=0, le=600, description="skip longer events (default: refuse them)")
    rir_source: Literal["auto", "dataset", "simulate"] = Field(
        "auto", description="dataset: the RIR dataset's stored grid RIRs; simulate: RIRs for the planned "
                            "positions; auto: dataset when the RIR dataset holds a grid (placement: grid)")
    rir_seconds: float = Field(0.5, gt=0, le=3.0, description="RIR length: simulated, or stored ones cut to it")
    mode: Literal["hybrid", "ism"] = Field("hybrid", description="simulator mode (rir_source simulate)")
    bits: Literal[16, 24] = 16
    ambience_bank_clips: int = Field(
        4, ge=0, le=100, description="each worker renders this many clips' length of diffuse ambience once and "
                                     "every scene takes a stretch of it at a seeded offset (as DCASE generators "
                                     "reuse recordings); 0: fresh noise per scene (slower)")
    seed: Seed = 0
    test_fraction: float = Field(0.25, ge=0, lt=1, description="scenes rendered in the RIR set's test rooms")
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @model_validator(mode="after")
    def _check(self) -> "ScenesConfig":
        if self.polyphony > self.tracks:
            raise ValueError(f"polyphony={self.polyphony} is above the number of tracks={self.tracks}")
        if self.classes and (twice := sorted({c for c in self.classes if self.classes.count(c) > 1})):
            raise ValueError(f"classes lists {twice} more than once: a class map gives each class one index")
        if self.event_snr_db is not None:
            clash = [f for f in ("level_db", "snr_db") if getattr(self, f) is not None]
            if clash:
                raise ValueError(f"event_snr_db sets each event's level against the ambience, so {' and '.join(clash)} "
                                 f"cannot be set with it: leave {' and '.join(clash)} unset (null), or drop "
                                 f"event_snr_db")
        else:  # the documented defaults, written into the config so lineage shows them
            self.level_db = self.level_db or (-10.0, 0.0)
            self.snr_db = self.snr_db or (6.0, 30.0)
        for field in ("level_db", "event_snr_db", "snr_db", "speed_range", "distance_range", "elevation_range"):
            if getattr(self, field) is None:
                continue
            lo, hi = getattr(self, field)
            if lo > hi:
                raise ValueError(f"{field} must be a range [min, max]; got {[lo, hi]}")
        for field, (low, high) in RANGE_LIMITS.items():
            lo, hi = getattr(self, field)
            if lo < low or hi > high:
                raise ValueError(f"{field} must lie within [{low}, {high}]; got {[lo, hi]}")
        return self


@dataclass
class Library:
    """The decoded event library, by split, plus the class map."""

    items: dict[str, list]              # split -> [LibraryItem]
    signals: dict[str, np.ndarray]      # event id -> mono float64
    ontology: dict[str, str | None]     # event id -> ontology id
    sample_rate: int
    classes: list[str]


_F32 = datasets.Value("float32")
# one element of the `events` column (augment gives mixed event-library clips a subset of these fields)
EVENT_FEATURES = {"event_id": datasets.Value("string"), "class_name": datasets.Value("string"),
                  "class_index": datasets.Value("int32"), "ontology_id": datasets.Value("string"),
                  "track": datasets.Value("int32"), "onset": _F32, "offset": _F32, "level_db": _F32, "snr_db": _F32,
                  "power_db": _F32, "azimuth": _F32, "elevation": _F32, "distance": _F32, "speed": _F32,
                  "moving": datasets.Value("bool"), "azimuth_step": _F32, "step_phase": _F32}


def features(cfg: ScenesConfig, sample_rate: int) -> datasets.Features:
    f32, vec = _F32, datasets.Sequence(_F32)
    label = {"frame": datasets.Value("int32"), "class_index": datasets.Value("int32"),
             "track": datasets.Value("int32"), "azimuth": f32, "elevation": f32, "distance": f32}
    return datasets.Features({
        "id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=sample_rate),
        "duration": f32, "format": datasets.Value("string"), "num_channels": datasets.Value("int32"),
        "room_id": datasets.Value("string"), "room_dims": vec, "rt60": f32, "array_center": vec,
        "noise_snr_db": f32, "caption": datasets.Value("string"), "label": datasets.Sequence(datasets.Value("string")),
        "labels": [label], "events": [dict(EVENT_FEATURES)], "plan": datasets.Value("string"),
        "seed": datasets.Value("int64"),
    })


# -- inputs, read once per worker ------------------------------------------------------------

def _split_tables(catalog: Catalog, ref: str, columns: list[str]) -> dict:
    return {split: catalog.arrow_dataset(ref, split).to_table(columns=columns) for split in catalog.splits(ref)}


@lru_cache(maxsize=2)
def load_library(catalog_json: str, events_ref: str, classes: tuple[str, ...] | None,
                 clip_seconds: float, max_event_seconds: float | None, decode: bool = True) -> Library:
    """The library a worker renders from; ``decode=False`` (the driver) reads no audio, only
    what the checks, the class map and the sample rate need."""
    from simulation.scenes import LibraryItem

    catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
    snap = catalog.show(events_ref)
    missing = {"id", "audio", "label", "duration"} - set(snap.features)
    if missing:
        raise RoomtoneError(f"{snap.ref} is not an event library: it lacks columns {sorted(missing)}",
                            "ingest one with `roomtone ingest events` or `roomtone ingest synthetic`")
    tables = _split_tables(catalog, snap.ref, ["id", "label", "duration"] + (["audio"] if decode else []) +
                           (["ontology_id"] if "ontology_id" in snap.features else []))
    labels = sorted({l for t in tables.values() for l in t.column("label").to_pylist()})
    names = list(classes) if classes else labels
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise RoomtoneError(f"the class map misses classes present in {snap.ref}: {unknown}",
                            "add them to `classes`, or leave `classes` unset to use every label")
    limit = max_event_seconds or clip_seconds
    longest = max((r["duration"], r["id"]) for t in tables.values() for r in t.select(["id", "duration"]).to_pylist())
    if longest[0] > clip_seconds and max_event_seconds is None:
        raise RoomtoneError(f"event {longest[1]!r} lasts {longest[0]:.2f} s, longer than clip_seconds={clip_seconds}",
                            "raise clip_seconds, or set max_event_seconds to skip longer events")
    rate = snap.features["audio"].sampling_rate
    items, signals, ontology = {}, {}, {}
    for split, table in tables.items():
        for row in table.to_pylist():
            if row["duration"] > min(limit, clip_seconds):
                continue
            duration = row["duration"]
            if decode:
                audio, _ = decode_audio(row["audio"]["bytes"], dtype="float64")
                signals[row["id"]] = audio[:, 0]
                duration = len(audio) / rate
            ontology[row["id"]] = row.get("ontology_id")
            items.setdefault(split, []).append(
                LibraryItem(row["id"], names.index(row["label"]), row["label"], duration))
    if not items:
        raise RoomtoneError(f"no event of {snap.ref} fits in a {clip_seconds} s clip", "raise clip_seconds")
    return Library(items, signals, ontology, rate, names)


@lru_cache(maxsize=2)
def load_rooms(catalog_json: str, rirs_ref: str) -> dict[str, list[dict]]:
    """One record per room of the RIR dataset, by split."""
    catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
    snap = catalog.show(rirs_ref)
    missing = set(ROOM_COLUMNS) - set(snap.features)
    if missing:
        raise RoomtoneError(f"{snap.ref} is not an RIR dataset: it lacks columns {sorted(missing)}",
                            "make one with `roomtone simulate rirs`")
    rooms = {}
    for split, table in _split_tables(catalog, snap.ref, ROOM_COLUMNS).items():
        seen = {}
        for row in table.to_pylist():
            seen.setdefault(row["room_id"], row)
        rooms[split] = [seen[k] for k in sorted(seen)]
    return rooms


GRID_COLUMNS = ["room_id", "azimuth", "elevation", "distance", "sample_rate"]


def grid_source(snap: Snapshot) -> tuple[bool, str]:
    """Whether an RIR snapshot stores a grid of positions around its arrays, and why not."""
    config = snap.config
    if config.get("placement") != "grid":
        return False, f"{snap.ref} stores RIRs at random source positions (placement: {config.get('placement')!r})"
    missing = set(GRID_COLUMNS + ["rir"]) - set(snap.features)
    if missing:
        return False, f"{snap.ref} lacks the columns {sorted(missing)}"
    return True, ""


# rooms of stored RIRs a worker keeps: for the default grid of 0.5 s FOA RIRs, 14 MB each, and up
# to 28 MB more of their spectra as its scenes use them
ROOM_CACHE = 8


@lru_cache(maxsize=ROOM_CACHE)
def load_grid(catalog_json: str, rirs_ref: str, room_id: str, rir_seconds: float):
    """(RirGrid, RirBank of float32 (G, M, L) RIRs) of one room, cut to rir_seconds. Reading a room
    decodes the row groups holding it (about one room each as the RIR job writes them), and a
    worker keeps the last ROOM_CACHE rooms, with the spectra its scenes computed, for its next shards."""
    import pyarrow.compute as pc

    from simulation.scenes import RirBank, RirGrid

    catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
    step = float(catalog.show(rirs_ref).config["grid_azimuth_step"])
    table = catalog.arrow_dataset(rirs_ref).to_table(columns=GRID_COLUMNS[1:] + ["rir", "id"],
                                                     filter=pc.field("room_id") == room_id)
    ids = table.column("id").to_pylist()
    if ids != sorted(ids):  # the RIR job writes a room in id order; a sort copies its 14 MB again
        table = table.sort_by("id")
    rirs = table.column("rir").combine_chunks()
    channels = len(rirs[0])
    flat = rirs.flatten().flatten().to_numpy().reshape(len(table), channels, -1)
    keep = int(round(rir_seconds * table.column("sample_rate")[0].as_py()))
    grid = RirGrid(*(table.column(c).to_numpy().astype(np.float64) for c in ("azimuth", "elevation", "distance")),
                   azimuth_step=step)
    return grid, RirBank(np.ascontiguousarray(flat[:, :, :keep]))


# -- one scene ---------------------------------------------------------------------------------

@dataclass
class SceneDraw:
    """Everything drawn for one scene before any compute: its room record, room, placed
    array, plan settings, library pool and plan seed (all from (seed, scene id))."""

    record: dict
    room: object
    array: object
    plan_config: object
    items: list
    plan_seed: int


def scene_room(cfg: ScenesConfig, rooms: dict[str, list[dict]], scene_id: str, split: str) -> dict:
    """The room record a scene is drawn in (a split without rooms of its own takes train's): the
    first draw of (seed, scene id), cheap enough for the driver to order a split by room."""
    pool = rooms.get(split) or rooms["train"]
    return pool[int(item_rng(cfg.seed, scene_id).integers(len(pool)))]


def draw_scene(cfg: ScenesConfig, library: Library, rooms: dict[str, list[dict]], scene_id: str,
               split: str) -> SceneDraw:
    from simulation import Room, foa, tetra_mic
    from simulation.scenes import PlanConfig

    record = scene_room(cfg, rooms, scene_id, split)
    room = Room(tuple(record["room_dims"]), tuple(record["beta"]), temperature=record["temperature"],
                seed=item_seed(cfg.seed, scene_id, "tail"))
    array = (foa if cfg.format == "foa" else tetra_mic)(tuple(record["array_center"]))
    plan_config = PlanConfig(duration=cfg.clip_seconds, tracks=cfg.tracks, polyphony=cfg.polyphony,
                             events_per_minute=cfg.events_per_minute,
                             level_db=None if cfg.level_db is None else tuple(cfg.level_db),
                             snr_db=None if cfg.snr_db is None else tuple(cfg.snr_db),
                             event_snr_db=None if cfg.event_snr_db is None else tuple(cfg.event_snr_db),
                             moving_fraction=cfg.moving_fraction,
                             speed_range=tuple(cfg.speed_range), distance_range=tuple(cfg.distance_range),
                             elevation_range=tuple(cfg.elevation_range))
    items = library.items.get(split) or library.items["train"]
    return SceneDraw(record, room, array, plan_config, items, item_seed(cfg.seed, scene_id, "plan"))


def ambience(cfg: ScenesConfig, array, fs: int):
    """The worker's ambience bank for this array (None: fresh noise per scene); its noise depends
    on the dataset seed only, so any worker makes the same bank."""
    from simulation.scenes import ambience_bank

    if not cfg.ambience_bank_clips:
        return None
    return ambience_bank(array, fs, cfg.ambience_bank_clips * cfg.clip_seconds,
                         item_seed(cfg.seed, "ambience-bank", "noise"))


def render_one(cfg: ScenesConfig, library: Library, rooms: dict[str, list[dict]], scene_id: str,
               split: str, catalog_json: str | None = None) -> dict:
    """One scene's row; catalog_json locates the stored RIRs when cfg.rir_source is dataset."""
    from simulation.scenes import synthesize_scene

    if cfg.rir_source == "auto":
        raise ValueError("render_one needs a resolved rir_source (dataset or simulate); run_scenes resolves auto")
    draw = draw_scene(cfg, library, rooms, scene_id, split)
    stored = (load_grid(catalog_json, cfg.rirs, draw.record["room_id"], cfg.rir_seconds)
              if cfg.rir_source == "dataset" else None)
    scene = synthesize_scene(draw.room, draw.array, draw.plan_seed, draw.items, library.signals, library.sample_rate,
                             config=draw.plan_config, rir_duration=cfg.rir_seconds, mode=cfg.mode, stored=stored,
                             bank=ambience(cfg, draw.array, library.sample_rate), rt60=draw.record["rt60"])
    flac = encode_flac(scene.audio.T, library.sample_rate, cfg.bits)
    return scene_row(cfg, library, draw, scene, flac, scene_id)


def scene_row(cfg: ScenesConfig, library: Library, draw: SceneDraw, scene, flac: bytes, scene_id: str) -> dict:
    """The dataset row of one rendered scene (its FLAC bytes already encoded)."""
    plan, record, room = scene.plan, draw.record, draw.room
    return {
        "id": scene_id,
        "audio": audio_cell(flac, f"{scene_id}.flac"),
        "duration": scene.audio.shape[1] / library.sample_rate, "format": cfg.format,
        "num_channels": scene.audio.shape[0], "room_id": record["room_id"], "room_dims": list(room.dims),
        "rt60": record["rt60"], "array_center": list(record["array_center"]),
        "noise_snr_db": scene.snr_db, "caption": scene.caption,
        "label": sorted({e.class_name for e in plan.events}),
        "labels": [l.to_dict() for l in scene.labels],
        "events": [{"event_id": e.item_id, "class_name": e.class_name, "class_index": e.class_index,
                    "ontology_id": library.ontology.get(e.item_id), "track": e.track, "onset": e.onset,
                    "offset": e.offset, "level_db": level, "snr_db": snr, "power_db": power, "azimuth": e.azimuth,
                    "elevation": e.elevation, "distance": e.distance, "speed": e.speed, "moving": e.moving,
                    "azimuth_step": e.azimuth_step, "step_phase": e.step_phase}
                   for e, level, snr, power in zip(plan.events, scene.event_level_db, scene.event_snr_db,
                                                   scene.event_power_db, strict=True)],
        "plan": json.dumps(plan.to_dict(), sort_keys=True), "seed": cfg.seed,
    }


def by_room(cfg: ScenesConfig, rooms: dict[str, list[dict]], scene_ids: list[str], split: str) -> list[str]:
    """The scene ids in the order that reads each room's stored RIRs once: by room, then id."""
    return sorted(scene_ids, key=lambda i: (scene_room(cfg, rooms, i, split)["room_id"], i))


def make_rows(cfg: ScenesConfig, catalog_json: str, task: ShardTask):
    keep_freed_buffers()
    library = load_library(catalog_json, cfg.events, tuple(cfg.classes) if cfg.classes else None,
                           cfg.clip_seconds, cfg.max_event_seconds)
    rooms = load_rooms(catalog_json, cfg.rirs)
    items = task.items
    if cfg.rir_source == "dataset":  # room by room, so each room's stored RIRs are read once per shard
        items = by_room(cfg, rooms, items, task.split)
    for scene_id in items:
        yield render_one(cfg, library, rooms, scene_id, task.split, catalog_json)


def check_in_spec(cfg: ScenesConfig, made: dict, catalog: Catalog) -> None:
    """The kinds of its inputs, and what the config of an RIR stage in the same pipeline spec already
    tells, before it runs: its array and, for `rir_source: dataset`, its placement (run_scenes checks
    the stored dataset itself)."""
    from pipelines.stages import EVENT_MAKERS, check_input
    from pipelines.stages.rirs import RirsConfig

    check_input("events", cfg.events, made, catalog, makers=EVENT_MAKERS, columns=("audio", "label"),
                what="an event library")
    check_input("rirs", cfg.rirs, made, catalog, makers=("RirsConfig",), columns=("rir",), what="an RIR dataset")
    rirs = made.get(cfg.rirs)
    if not isinstance(rirs, RirsConfig):  # read from the catalog, or made by another kind of stage
        return
    if rirs.array != cfg.format:
        raise RoomtoneError(f"format {cfg.format!r} needs RIRs of the {ARRAY_OF_FORMAT[cfg.format]} array, but the "
                            f"spec's stage making {cfg.rirs!r} simulates array {rirs.array!r}",
                            f"set array: {cfg.format} on that stage, or format: {rirs.array} here"
                            if rirs.array in ARRAY_OF_FORMAT else f"set array: {cfg.format} on that stage")
    if cfg.rir_source == "dataset" and rirs.placement != "grid":
        raise RoomtoneError(f"rir_source 'dataset' renders from stored grid RIRs, but the spec's stage making "
                            f"{cfg.rirs!r} places sources at random", "set placement: grid on that stage, or "
                            "rir_source: auto")


def run_scenes(cfg: ScenesConfig, catalog: Catalog, *, address: str | None = None,
               show_progress: bool = True) -> Snapshot:
    """Validate the inputs on the driver (cheap, before any job), then render on Ray."""
    catalog_json = catalog.config.model_dump_json()
    events, rirs = catalog.show(cfg.events), catalog.show(cfg.rirs)
    library = load_library(catalog_json, events.ref, tuple(cfg.classes) if cfg.classes else None,
                           cfg.clip_seconds, cfg.max_event_seconds, decode=False)
    rooms = load_rooms(catalog_json, rirs.ref)
    arrays = {r["array"] for split in rooms.values() for r in split}
    if arrays != {ARRAY_OF_FORMAT[cfg.format]}:
        raise RoomtoneError(f"format {cfg.format!r} needs an RIR dataset made with the "
                            f"{ARRAY_OF_FORMAT[cfg.format]} array, but {rirs.ref} holds {sorted(arrays)}",
                            f"simulate one with `roomtone simulate rirs --array {cfg.format}`")
    has_grid, why_not = grid_source(rirs)
    if cfg.rir_source == "dataset" and not has_grid:
        raise RoomtoneError(f"rir_source 'dataset' renders from stored grid RIRs, but {why_not}",
                            "simulate a grid with `roomtone simulate rirs` and `placement: grid` in its --config, "
                            "or set rir_source to simulate")
    source = "dataset" if has_grid and cfg.rir_source != "simulate" else "simulate"
    if source == "dataset" and rirs.config.get("sample_rate") != library.sample_rate:
        raise RoomtoneError(f"the stored RIRs of {rirs.ref} are at {rirs.config.get('sample_rate')} Hz but the events "
                            f"of {events.ref} at {library.sample_rate} Hz",
                            "simulate the RIRs at the events' rate (sample_rate), or set rir_source to simulate")
    pinned = cfg.model_copy(update={"events": events.ref, "rirs": rirs.ref, "rir_source": source})
    check_rooms(pinned, catalog_json, library, rooms)
    run = catalog.create_run(cfg.name, pinned, features(cfg, library.sample_rate), inputs=[events.ref, rirs.ref],
                             info={"classes": library.classes, "format": cfg.format,
                                   "sample_rate": library.sample_rate, "label_hop_s": 0.1})
    ids = [f"scene-{i:07d}" for i in range(cfg.num_scenes)]
    by_split = holdout(ids, cfg.test_fraction if "test" in rooms else 0.0)
    if source == "dataset":  # a room's scenes in consecutive shards: its stored RIRs are read about once
        by_split = {split: by_room(pinned, rooms, split_ids, split) for split, split_ids in by_split.items()}
    per_scene = cfg.clip_seconds * library.sample_rate * 4 * cfg.bits / 8 * 0.8
    batch = max(1, int(BATCH_BYTES // per_scene))  # encoded rows held before a write: bounded, not 64 clips
    return run_sharded(catalog, run, plan_shards(by_split, cfg.max_shard_bytes, per_scene),
                       partial(make_rows, pinned, catalog_json), writer_options={"batch_rows": batch},
                       address=address, show_progress=show_progress, description=f"rendering {cfg.name}")


def check_rooms(cfg: ScenesConfig, catalog_json: str, library: Library, rooms: dict[str, list[dict]]) -> None:
    """Plan one scene in every room (positions only: no RIR read or simulated), on its stored grid when
    the scenes render from one: ranges that a room or its grid leave empty fail here, before the job."""
    from simulation import Room
    from simulation.scenes import RirGrid, plan_scene, room_region

    by_room: dict[str, list] = {}
    if cfg.rir_source == "dataset":
        catalog = Catalog(CatalogConfig.model_validate_json(catalog_json))
        step = float(catalog.show(cfg.rirs).config["grid_azimuth_step"])
        for row in catalog.arrow_dataset(cfg.rirs).to_table(columns=GRID_COLUMNS).to_pylist():
            by_room.setdefault(row["room_id"], []).append(row)
        fix = "widen distance_range/elevation_range to the grid, or set rir_source to simulate"
    else:
        fix = "narrow distance_range/elevation_range to what the rooms hold (wall clearance included)"
    plan_config = draw_scene(cfg, library, rooms, "check", "train").plan_config
    items = next(iter(library.items.values()))
    for split_rooms in rooms.values():
        for record in split_rooms:
            points = by_room.get(record["room_id"])
            grid = None if points is None else RirGrid(
                *(np.array([p[c] for p in points], dtype=np.float64) for c in ("azimuth", "elevation", "distance")),
                azimuth_step=step)
            room = Room(tuple(record["room_dims"]), tuple(record["beta"]))
            try:
                plan_scene(0, items, record["array_center"], room_region(room), plan_config, grid=grid)
            except ValueError as exc:
                raise RoomtoneError(f"room {record['room_id']} of {cfg.rirs}: {exc}", fix) from None
