"""The sound-event library ingest: labelled audio becomes a catalog dataset of events.

Three sources, exactly one per run: a ``folder`` of .wav/.flac/.ogg files (labels from a CSV
or from the class folders), a local Hugging Face dataset ``hf_dataset`` (a folder that
``datasets.load_dataset`` reads, or one written by ``save_to_disk``), or an existing catalog
dataset ``catalog_dataset`` (``name[@snapshot]``, any dataset with an audio struct column and a
label column; its snapshot is the run's input in lineage). Every item, whatever its source,
goes through the same ``condition``:

Each item is decoded with soundfile, mixed to mono (channel mean), resampled to the target
rate with ``resample_poly`` (a rational approximation of the rate ratio), trimmed of
leading/trailing samples quieter than ``trim_db`` below the peak, and scaled to an RMS of
``loudness_db`` dBFS (plain RMS over the trimmed event, no K-weighting; full scale = 0 dBFS,
so a full-scale sine is -3 dBFS). The gain is capped so the peak stays under -0.1 dBFS,
so an event whose crest factor exceeds -0.1 - loudness_db dB ends up quieter than the target;
the snapshot's info (and the CLI) say how many did, and which target would level them all.

Items that are unreadable, empty, silent, contain NaN/inf, lack a label or are missing are
skipped, not fatal: a Ray pass probes every item first, and the skipped ones are published as
a separate small dataset ``<name>_quarantine`` (source_file, reason) whose input is the events
snapshot. The probe comes first so that a library with no usable item fails before publishing.
Event ids: the path relative to the folder; ``<split>/<index>`` or the ``id`` column of an
``hf_dataset``; the ``id`` column (else ``<split>/<index>``) of a ``catalog_dataset``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog import Catalog, Snapshot, audio_cell, encode_flac, validate_name, \
    write_shard
from catalog.cluster import connect
from catalog.errors import RoomtoneError
from catalog.fields import DatasetName, DatasetRefText, Seed, ShardBytes
from catalog.runs import files_digest
from catalog.shards import DEFAULT_SHARD_BYTES
from catalog.storage import absolute_path
from pipelines import metrics
from pipelines.sharded import ShardTask, plan_shards, run_sharded
from simulation.dsp import resample
from simulation.seeding import item_rng

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
PEAK_CEILING = 10 ** (-0.1 / 20)
MIN_SECONDS = 0.01  # shorter files are no sound events (a one-sample file passed)
MIN_RATE, MAX_RATE = 1_000, 768_000  # source files outside are quarantined
DURATION_BINS = [0, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 600]
QUARANTINE_FEATURES = datasets.Features({"source_file": datasets.Value("string"),
                                         "reason": datasets.Value("string")})
PROBE_FILES_PER_TASK = 64
SOURCE_FIELDS = ("folder", "hf_dataset", "catalog_dataset")


class EventsConfig(BaseModel):
    """Exactly one source: ``folder``, ``hf_dataset`` or ``catalog_dataset``.

    Paths are made absolute at the door so Ray workers find the files from any directory.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName = Field("events", max_length=52, description="the skipped items go to <name>_quarantine")
    folder: Path | None = Field(None, description="source: a folder of .wav/.flac/.ogg files, searched recursively")
    hf_dataset: Path | None = Field(None, description="source: a local Hugging Face dataset folder (load_dataset "
                                                      "or save_to_disk)")
    catalog_dataset: DatasetRefText | None = Field(None, description="source: name[@snapshot] of a catalog dataset "
                                                                     "with audio_column and label_column")
    hf_split: str = Field("train", min_length=1, description="the hf_dataset split to read")
    audio_column: str = Field("audio", min_length=1, description="hf_dataset/catalog_dataset: audio {bytes, path}")
    labels_csv: Path | None = Field(None, description="folder only; default: each file's parent folder name is its "
                                                      "label")
    file_column: str = Field("file", min_length=1, description="paths relative to folder")
    label_column: str = Field("label", min_length=1, description="the class column of labels_csv, hf_dataset or "
                                                                 "catalog_dataset (a list of labels is joined)")
    license_column: str = Field("license", min_length=1, description="copied when the source has it")
    ontology: Path | None = Field(None, description="AudioSet ontology JSON; matching labels get ontology_id")
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    trim_db: float = Field(-50.0, ge=-120, lt=0, description="trim edges quieter than this, dB below the peak")
    loudness_db: float = Field(-30.0, ge=-60, le=-3, description="RMS of each trimmed event, dBFS")
    silence_db: float = Field(-80.0, ge=-160, lt=0, description="a file whose peak is below this (dBFS) is silent")
    bits: Literal[16, 24] = 16
    seed: Seed = 0
    test_fraction: float = Field(0.0, ge=0, lt=1, description="source files held out for a test split, per label")
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @field_validator("folder", "hf_dataset", "labels_csv", "ontology")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return None if path is None else absolute_path(path)

    @model_validator(mode="after")
    def _one_source(self) -> "EventsConfig":
        given = [f for f in SOURCE_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one source of folder, hf_dataset or catalog_dataset "
                             f"(got {' and '.join(given) if given else 'none'})")
        if self.labels_csv is not None and self.folder is None:
            raise ValueError("labels_csv labels a folder source; hf_dataset and catalog_dataset take label_column")
        return self


class EventSource(NamedTuple):
    """One item to ingest: ``locator`` is the path relative to the folder or the row index."""

    id: str
    label: str
    license: str | None
    source_file: str
    locator: str | int
    nbytes: int
    original: tuple[int, int] | None = None  # the source_file's rate and channels, when a dataset recorded them


class Quarantined(Exception):
    """A file that is skipped; the message is the reason recorded in the quarantine table."""


def features(cfg) -> datasets.Features:
    """The event row schema, shared by ingested and synthetic libraries (``cfg.sample_rate``)."""
    string, int32 = datasets.Value("string"), datasets.Value("int32")
    return datasets.Features({
        "id": string, "audio": datasets.Audio(sampling_rate=cfg.sample_rate), "duration": datasets.Value("float32"),
        "label": string, "ontology_id": string, "source_file": string,
        "original_sample_rate": int32, "original_channels": int32,
        "synthetic": datasets.Value("bool"), "license": string,
    })


def event_row(cfg, event_id: str, audio: np.ndarray, *, label: str, ontology_id: str | None,
              source_file: str | None, original_sample_rate: int, original_channels: int, synthetic: bool,
              license: str | None) -> dict:
    return {"id": event_id, "audio": audio_cell(encode_flac(audio, cfg.sample_rate, cfg.bits), f"{event_id}.flac"),
            "duration": len(audio) / cfg.sample_rate, "label": label, "ontology_id": ontology_id,
            "source_file": source_file, "original_sample_rate": original_sample_rate,
            "original_channels": original_channels, "synthetic": synthetic, "license": license}


# -- audio conditioning ----------------------------------------------------------------------

def read_mono(data: Path | bytes, silence_db: float) -> tuple[np.ndarray, int, int]:
    """Mono float64 samples, rate and channel count of a file or encoded bytes; raises
    Quarantined with the reason to skip."""
    if isinstance(data, Path) and not data.is_file():
        raise Quarantined(f"missing: {data} does not exist")
    if (data.stat().st_size if isinstance(data, Path) else len(data)) == 0:
        raise Quarantined("empty file (0 bytes)")
    raw = data.read_bytes() if isinstance(data, Path) else data
    try:
        samples, rate = sf.read(io.BytesIO(raw), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise Quarantined(f"unreadable: {getattr(exc, 'error_string', exc)}") from None
    if raw[:4] == b"fLaC" and not flac_md5_matches(raw, samples):
        raise Quarantined("corrupt: decoded FLAC audio does not match the MD5 signature in its header")
    if samples.shape[0] == 0:
        raise Quarantined("empty: no audio frames")
    if not MIN_RATE <= rate <= MAX_RATE:  # resampling 1 Hz "audio" to 24 kHz would blow up a worker
        raise Quarantined(f"unusable sample rate {rate} Hz: outside {MIN_RATE}-{MAX_RATE} Hz")
    if not np.isfinite(samples).all():
        raise Quarantined("contains NaN or infinite samples")
    if samples.shape[0] < MIN_SECONDS * rate:
        raise Quarantined(f"too short: {samples.shape[0]} samples ({1000 * samples.shape[0] / rate:.2g} ms), "
                          f"under {1000 * MIN_SECONDS:g} ms")
    mono = samples.mean(axis=1)
    if np.abs(mono).max() < 10 ** (silence_db / 20):
        raise Quarantined(f"silent: peak below silence_db ({silence_db:g} dBFS)")
    if np.abs(mono - mono.mean()).max() < 10 ** (silence_db / 20):
        raise Quarantined(f"no sound: a constant (DC) signal, its variation below silence_db ({silence_db:g} dBFS)")
    return mono, rate, samples.shape[1]


def flac_md5_matches(raw: bytes, samples: np.ndarray) -> bool:
    """Whether decoded float ``samples`` (integer PCM / 2**(bits-1), exact in float64) hash to
    the MD5 the encoder wrote into STREAMINFO (all zeros: none was written). libsndfile decodes
    FLAC frames whose bytes were damaged without complaint; the signature catches them."""
    if len(raw) < 42 or raw[4] & 0x7F != 0:  # the first metadata block must be STREAMINFO
        return False
    info = int.from_bytes(raw[18:26], "big")
    bits = ((info >> 36) & 0x1F) + 1
    signature = raw[26:42]
    if signature == bytes(16):
        return True
    width = (bits + 7) // 8
    values = np.rint(samples * 2.0 ** (bits - 1)).astype("<i4").reshape(-1, 1).view(np.uint8)[:, :width]
    return hashlib.md5(np.ascontiguousarray(values).tobytes()).digest() == signature


def trim(x: np.ndarray, trim_db: float) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``trim_db`` below the peak."""
    level = np.abs(x)
    keep = np.flatnonzero(level >= level.max() * 10 ** (trim_db / 20))
    return x[keep[0]:keep[-1] + 1]


def normalise(x: np.ndarray, loudness_db: float) -> np.ndarray:
    """Scale to an RMS of ``loudness_db`` dBFS, never pushing the peak over -0.1 dBFS."""
    gain = 10 ** (loudness_db / 20) / np.sqrt(np.mean(x ** 2))
    return (x * min(gain, PEAK_CEILING / np.abs(x).max())).astype(np.float32)


def reachable_db(x: np.ndarray) -> float:
    """The loudest RMS (dBFS) `normalise` can give ``x``: its peak at -0.1 dBFS."""
    return float(20 * np.log10(PEAK_CEILING * np.sqrt(np.mean(x ** 2)) / np.abs(x).max()))


def condition(cfg: EventsConfig, data: Path | bytes) -> tuple[np.ndarray, int, int]:
    """The one conditioning of every source: the event samples, original rate and channels."""
    mono, rate, channels = read_mono(data, cfg.silence_db)
    return normalise(trim(resample(mono, rate, cfg.sample_rate), cfg.trim_db), cfg.loudness_db), rate, channels


# -- readers: where each source's items' audio comes from, pickled to the Ray workers ---------

@dataclass(frozen=True)
class FolderReader:
    folder: Path

    def load(self, items: tuple[EventSource, ...]) -> list[Path]:
        return [self.folder / src.locator for src in items]


def _audio_data(cell: dict | None, base: Path | None) -> Path | bytes:
    """The bytes of an audio {bytes, path} cell, else its path (relative ones from ``base``)."""
    cell = cell or {}
    if cell.get("bytes"):
        return cell["bytes"]
    if cell.get("path"):
        path = Path(cell["path"])
        return path if path.is_absolute() or base is None else base / path
    raise Quarantined("no audio: the cell has neither bytes nor a path")


@dataclass(frozen=True)
class HfReader:
    """Rows of a Hugging Face dataset (memory-mapped, pickled by reference) by index."""

    dataset: datasets.Dataset
    audio_column: str
    base: Path

    def load(self, items: tuple[EventSource, ...]) -> list:
        cells = self.dataset.select_columns([self.audio_column])[[src.locator for src in items]][self.audio_column]
        return [_lazy(cell, self.base) for cell in cells]


@dataclass(frozen=True)
class ArrowReader:
    """Rows of a catalog snapshot's ``pyarrow.dataset`` by position."""

    dataset: object
    audio_column: str

    def load(self, items: tuple[EventSource, ...]) -> list:
        rows = sorted({src.locator for src in items})
        cells = self.dataset.take(pa.array(rows, pa.int64()), columns=[self.audio_column]).column(0).to_pylist()
        by_row = dict(zip(rows, cells))
        return [_lazy(by_row[src.locator], None) for src in items]


def _lazy(cell: dict | None, base: Path | None):
    """Defer a bad cell's Quarantined to the item, so one bad row never fails its neighbours."""
    try:
        return _audio_data(cell, base)
    except Quarantined as exc:
        return exc


@dataclass
class Library:
    """What a source plans: the items, those skipped already, how to read them, the inputs."""

    where: str
    hint: str
    sources: list[EventSource]
    skipped: list[dict]
    reader: object
    inputs: list[str] = field(default_factory=list)
    ontology_ids: dict[str, str] = field(default_factory=dict)  # label -> id the source rows already carry
    files: list[Path] = field(default_factory=list)  # local files the items come from: a change is a new run
    info: dict = field(default_factory=dict)  # what the user should hear of, kept with the snapshot


# -- planning --------------------------------------------------------------------------------

def _normalised(name: str) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


def match_ontology(labels: set[str], ontology: Path | None) -> dict[str, str | None]:
    """Label -> AudioSet id: exact case-insensitive name first, then the names (and their
    comma-separated synonyms) with punctuation, underscores and plural 's' removed."""
    if ontology is None:
        return {label: None for label in labels}
    try:
        classes = json.loads(ontology.read_text())
        exact = {c["name"].lower(): c["id"] for c in classes}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise RoomtoneError(f"ontology {ontology} is not a readable AudioSet ontology JSON: {exc}",
                            "pass the ontology.json list of {id, name, ...} classes") from None
    loose: dict[str, str] = {}
    for c in classes:
        for key in [c["name"], *c["name"].split(",")]:
            loose.setdefault(_normalised(key), c["id"])
    return {label: exact.get(label.lower()) or loose.get(_normalised(label)) for label in labels}


def _read_csv(cfg: EventsConfig) -> list[dict]:
    if not cfg.labels_csv.is_file():
        raise RoomtoneError(f"labels_csv {cfg.labels_csv} does not exist", "check the path given to --labels-csv")
    try:
        with open(cfg.labels_csv, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM is no part of a name
            reader = csv.DictReader(f)
            columns, rows = reader.fieldnames or [], list(reader)
    except UnicodeDecodeError as exc:
        raise RoomtoneError(f"labels_csv {cfg.labels_csv} is not UTF-8 text ({exc.reason})",
                            "give a CSV file saved as UTF-8") from None
    for option, column in (("file_column", cfg.file_column), ("label_column", cfg.label_column)):
        if column not in columns:
            raise RoomtoneError(f"labels_csv {cfg.labels_csv} has no column {column!r} (its columns: "
                                f"{', '.join(columns) or 'none'})",
                                f"set {option} (--{option.replace('_', '-')}) to one of its columns")
    return rows


def plan_folder(cfg: EventsConfig) -> Library:
    """Labelled files to ingest and the files skipped already (missing, unlabelled, unlisted)."""
    if not cfg.folder.is_dir():
        raise RoomtoneError(f"folder {cfg.folder} does not exist or is not a folder", "check the FOLDER argument")
    found = sorted(p.relative_to(cfg.folder).as_posix() for p in cfg.folder.rglob("*")
                   if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not found:
        raise RoomtoneError(f"folder {cfg.folder} has no audio files ({', '.join(AUDIO_SUFFIXES)})",
                            "point FOLDER at the event library")
    library = Library(f"folder {cfg.folder}", "fix the files; label them with labels_csv (--labels-csv) or class "
                      "folders", [], [], FolderReader(cfg.folder),
                      files=[cfg.folder / rel for rel in found] + [cfg.labels_csv] * (cfg.labels_csv is not None))
    sources, skipped = library.sources, library.skipped

    def item(rel: str, label: str, license: str | None) -> EventSource:
        return EventSource(rel, label, license, rel, rel, (cfg.folder / rel).stat().st_size)

    if cfg.labels_csv is None:
        for rel in found:
            if "/" in rel:
                sources.append(item(rel, rel.split("/")[-2], None))
            else:
                skipped.append({"source_file": rel, "reason": "no label: file is not inside a class folder"})
        nested = {rel.split("/")[-2]: rel for rel in reversed(found) if rel.count("/") > 1}
        if nested:  # Cymbal/close/x.flac is labelled 'close': said, in case the class was meant to be Cymbal
            library.info["labels_of_nested_folders"] = dict(sorted(nested.items()))
        return library
    listed = set()
    where = cfg.labels_csv.name
    for row in _read_csv(cfg):
        rel = Path(os.path.normpath(row[cfg.file_column] or ".")).as_posix()
        if rel in listed:
            raise RoomtoneError(f"labels_csv {cfg.labels_csv} lists {rel} twice", "keep one row per file")
        listed.add(rel)
        label = (row[cfg.label_column] or "").strip()
        if not (cfg.folder / rel).is_file():
            skipped.append({"source_file": rel, "reason": f"missing: listed in {where} but not in the folder"})
        elif not label:
            skipped.append({"source_file": rel, "reason": f"no label in {where}"})
        else:
            sources.append(item(rel, label, row.get(cfg.license_column) or None))
    skipped += [{"source_file": rel, "reason": f"not listed in {where}"} for rel in found if rel not in listed]
    return library


def _label(value) -> str:
    """A class name from a label cell; a list of labels (a scene's) becomes one, joined by ', '."""
    if isinstance(value, (list, tuple)):
        value = ", ".join(dict.fromkeys(str(v).strip() for v in value if v is not None and str(v).strip()))
    return "" if value is None else str(value).strip()


def _check_columns(cfg: EventsConfig, where: str, columns: list[str], hint: str) -> None:
    for fld, column in (("audio_column", cfg.audio_column), ("label_column", cfg.label_column)):
        if column not in columns:
            raise RoomtoneError(f"{where} has no column {column!r} (its columns: {', '.join(columns) or 'none'})",
                                f"set {fld} to one of its columns{hint}")


def _table_library(cfg: EventsConfig, library: Library, table: pa.Table, ids: list[str]) -> Library:
    """Items of a table source from its label, license, audio path and audio size columns."""
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise RoomtoneError(f"{library.where} has the id {dup!r} twice", "give every row its own id")
    labels = table.column("label").to_pylist()
    if "ontology_id" in table.column_names:  # re-ingesting a roomtone events dataset keeps its ids
        for label, oid in zip(map(_label, labels), table.column("ontology_id").to_pylist()):
            if oid and label:
                library.ontology_ids.setdefault(label, oid)
    licenses = table.column("license").to_pylist() if "license" in table.column_names else [None] * len(ids)
    paths, sizes = table.column("path").to_pylist(), table.column("nbytes").to_pylist()
    originals = (list(zip(table.column("rate").to_pylist(), table.column("channels").to_pylist()))
                 if "rate" in table.column_names and "channels" in table.column_names else [None] * len(ids))
    for index, (event_id, label, license, path, size, original) in enumerate(
            zip(ids, labels, licenses, paths, sizes, originals)):
        label = _label(label)
        if not label:
            library.skipped.append({"source_file": event_id, "reason": f"no label in column {cfg.label_column!r}"})
        else:
            library.sources.append(EventSource(event_id, label, license or None, path or event_id, index, size or 0,
                                               original if original and all(original) else None))
    return library


def _load_hf(cfg: EventsConfig) -> datasets.Dataset:
    path = cfg.hf_dataset
    if not path.is_dir():
        raise RoomtoneError(f"hf_dataset {path} does not exist or is not a folder", "check --hf-dataset")
    saved = any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json"))
    try:
        ds = datasets.load_from_disk(str(path)) if saved else datasets.load_dataset(str(path), split=cfg.hf_split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; the message names the cause
        raise RoomtoneError(f"hf_dataset {path} could not be read (split {cfg.hf_split!r}): "
                            f"{type(exc).__name__}: {exc}", "point --hf-dataset at a folder that "
                            "datasets.load_dataset or load_from_disk reads; check hf_split") from None
    if isinstance(ds, datasets.DatasetDict):
        if cfg.hf_split not in ds:
            raise RoomtoneError(f"hf_dataset {path} has no split {cfg.hf_split!r}",
                                f"set hf_split (--hf-split) to one of: {', '.join(ds)}")
        ds = ds[cfg.hf_split]
    return ds


def plan_hf(cfg: EventsConfig) -> Library:
    """Rows of a local Hugging Face dataset; audio is read undecoded and decoded by soundfile."""
    ds = _load_hf(cfg)
    where = f"hf_dataset {cfg.hf_dataset} (split {cfg.hf_split})"
    _check_columns(cfg, where, ds.column_names, " (--audio-column, --label-column)")
    try:
        ds = ds.cast_column(cfg.audio_column, datasets.Audio(decode=False))
    except (TypeError, ValueError) as exc:
        raise RoomtoneError(f"{where}: column {cfg.audio_column!r} is not audio ({exc})",
                            "set audio_column to a column of {bytes, path} audio") from None
    table = ds.with_format("arrow")
    audio = table[cfg.audio_column]
    columns = {"label": table[cfg.label_column], "path": pc.struct_field(audio, "path"),
               "nbytes": pc.binary_length(pc.struct_field(audio, "bytes"))}
    if cfg.license_column in ds.column_names:
        columns["license"] = table[cfg.license_column]
    ids = ([str(i) for i in table["id"].to_pylist()] if "id" in ds.column_names
           else [f"{cfg.hf_split}/{i}" for i in range(len(ds))])
    library = Library(where, "fix the rows, or set audio_column and label_column (--audio-column, --label-column)",
                      [], [], HfReader(ds, cfg.audio_column, cfg.hf_dataset), files=[p for p in cfg.hf_dataset.rglob("*") if p.is_file()])
    return _table_library(cfg, library, pa.table(columns), ids)


def plan_catalog(cfg: EventsConfig, catalog: Catalog) -> Library:
    """Rows of a catalog snapshot, read through its Arrow dataset; the snapshot is the input."""
    snap = catalog.show(cfg.catalog_dataset)
    where = f"catalog_dataset {snap.ref}"
    _check_columns(cfg, where, list(snap.features), " (--audio-column, --label-column)")
    if not isinstance(snap.features[cfg.audio_column], datasets.Audio):
        raise RoomtoneError(f"{where}: column {cfg.audio_column!r} is not audio",
                            "set audio_column to the dataset's audio column")
    dataset = catalog.arrow_dataset(snap.ref)
    columns = {"label": pc.field(cfg.label_column), "path": pc.field(cfg.audio_column, "path"),
               "nbytes": pc.binary_length(pc.field(cfg.audio_column, "bytes"))}
    # a roomtone events dataset's source_file (the original file) wins over the audio cell's name
    for name, column in (("license", cfg.license_column), ("id", "id"), ("path", "source_file"),
                         ("ontology_id", "ontology_id"), ("rate", "original_sample_rate"),
                         ("channels", "original_channels")):
        if column in snap.features:
            columns[name] = pc.field(column)
    table = dataset.to_table(columns=columns)
    if "id" in table.column_names:
        ids = [str(i) for i in table.column("id").to_pylist()]
    else:
        ids, seen = [], {}
        for f in catalog.files(snap.ref):  # in arrow_dataset's order; index within the split
            ids += [f"{f.split}/{seen.get(f.split, 0) + i}" for i in range(f.rows)]
            seen[f.split] = seen.get(f.split, 0) + f.rows
    library = Library(where, "fix the rows, or set audio_column and label_column (--audio-column, --label-column)",
                      [], [], ArrowReader(dataset, cfg.audio_column), inputs=[snap.ref])
    return _table_library(cfg, library, table, ids)


def plan_library(cfg: EventsConfig, catalog: Catalog) -> Library:
    if cfg.hf_dataset is not None:
        return plan_hf(cfg)
    if cfg.catalog_dataset is not None:
        return plan_catalog(cfg, catalog)
    return plan_folder(cfg)


def _data(loaded):
    if isinstance(loaded, Quarantined):
        raise loaded
    return loaded


def probe(cfg: EventsConfig, reader, sources: tuple[EventSource, ...]) -> list[tuple[str | None, float | None]]:
    """Per item, the reason it would be skipped, or None and the loudest level it can be given
    (`reachable_db` of the trimmed source, before resampling: an estimate within about a dB)."""
    found = []
    for loaded in reader.load(sources):
        try:
            mono, _, _ = read_mono(_data(loaded), cfg.silence_db)
            found.append((None, reachable_db(trim(mono, cfg.trim_db))))
        except Quarantined as exc:
            found.append((str(exc), None))
    return found


def below_target(cfg: EventsConfig, ids: list[str], reachable: list[float]) -> dict | None:
    """What the ingest summary says of events whose peaks keep them 1 dB or more under
    ``loudness_db`` (None when there are none): how many, the quietest, and the target that
    would level them all."""
    short = [(db, i) for i, db in zip(ids, reachable) if db <= cfg.loudness_db - 1.0]
    if not short:
        return None
    quietest_db, quietest = min(short)
    return {"events": len(short), "of": len(ids), "target_db": cfg.loudness_db, "quietest_db": round(quietest_db, 1),
            "quietest": quietest, "levelling_db": math.floor(quietest_db)}


def split_by_item(ids: list, seed: int, test_fraction: float, key=str, label=None) -> dict[str, list]:
    """``train`` and, when test_fraction > 0, ``test``, stratified by ``label``: every item draws a number
    from (seed, item id), and the round(n * test_fraction) lowest of each label's n go to test, at least
    one and never all where a label has two or more. (A draw per item alone left small libraries with
    classes on one side only, which no probe can score.)"""
    if not test_fraction:
        return {"train": list(ids)}
    draw = {key(i): item_rng(seed, key(i), "split").random() for i in ids}
    groups: dict = {}
    for i in ids:
        groups.setdefault(label(i) if label else None, []).append(key(i))
    test = set()
    for members in groups.values():
        n_test = round(len(members) * test_fraction)
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.update(sorted(members, key=draw.__getitem__)[:n_test])
    by_split = {"train": [i for i in ids if key(i) not in test], "test": [i for i in ids if key(i) in test]}
    return {split: items for split, items in by_split.items() if items}


# -- the job ---------------------------------------------------------------------------------

def make_rows(cfg: EventsConfig, reader, ontology_ids: dict[str, str | None], task: ShardTask):
    for src, loaded in zip(task.items, reader.load(task.items)):
        audio, rate, channels = condition(cfg, _data(loaded))
        rate, channels = src.original or (rate, channels)  # a re-ingest keeps the first source's figures
        yield event_row(cfg, src.id, audio, label=src.label, ontology_id=ontology_ids[src.label],
                        source_file=src.source_file, original_sample_rate=rate, original_channels=channels,
                        synthetic=False, license=src.license)


def quarantine_name(name: str) -> str:
    return f"{name}_quarantine"


def run_ingest_events(cfg: EventsConfig, catalog: Catalog, *, address: str | None = None,
                      show_progress: bool = True) -> Snapshot:
    """Probe, then ingest the usable items on Ray; publish the events and ``<name>_quarantine``."""
    import ray

    validate_name(quarantine_name(cfg.name))
    library = plan_library(cfg, catalog)
    sources, skipped, reader = library.sources, library.skipped, library.reader
    ontology_ids = {label: oid or library.ontology_ids.get(label)
                    for label, oid in match_ontology({s.label for s in sources}, cfg.ontology).items()}
    unmatched = sorted(label for label, oid in ontology_ids.items() if oid is None)
    files = library.files + [cfg.ontology] * (cfg.ontology is not None)
    info = {**library.info, **({"labels_without_ontology_id": unmatched} if cfg.ontology and unmatched else {})}
    run = catalog.create_run(cfg.name, cfg, features(cfg), inputs=library.inputs,
                             files=files_digest(files) if files else None, info=info or None)
    connect(address)
    chunks = [tuple(sources[i:i + PROBE_FILES_PER_TASK]) for i in range(0, len(sources), PROBE_FILES_PER_TASK)]
    remote = ray.remote(probe).options(num_cpus=1)
    reader_ref = ray.put(reader)
    found = [r for chunk in ray.get([remote.remote(cfg, reader_ref, c) for c in chunks]) for r in chunk]
    skipped += [{"source_file": s.id, "reason": r} for s, (r, _) in zip(sources, found) if r]
    usable = [s for s, (r, _) in zip(sources, found) if r is None]
    quiet = below_target(cfg, [s.id for s in usable], [db for r, db in found if r is None])
    if quiet:
        run.info["below_loudness_target"] = quiet
    if not usable:
        why = "; ".join(f"{q['source_file']}: {q['reason']}" for q in skipped[:5])
        raise RoomtoneError(f"{library.where} has no readable, labelled audio ({len(skipped)} skipped: "
                            f"{why}{' ...' if len(skipped) > 5 else ''})", library.hint)
    by_split = split_by_item(usable, cfg.seed, cfg.test_fraction, key=lambda s: s.id, label=lambda s: s.label)
    tasks = plan_shards(by_split, cfg.max_shard_bytes, lambda source: source.nbytes)
    snap = run_sharded(catalog, run, tasks, partial(make_rows, cfg, reader, ontology_ids),
                       address=address, show_progress=show_progress, description=f"ingesting {cfg.name}",
                       writer_options={"histograms": {"duration": DURATION_BINS}})
    qrun = catalog.create_run(quarantine_name(cfg.name), cfg, QUARANTINE_FEATURES, inputs=[snap.ref])
    write_shard(qrun.shard("train", 0, 1), QUARANTINE_FEATURES, sorted(skipped, key=lambda q: q["source_file"]))
    catalog.publish(qrun)
    metrics.add("quarantined", len(skipped), metrics.tags_for(cfg.name, run.run_id))
    return snap


def read_quarantine(catalog: Catalog, name: str) -> list[dict]:
    """The files the latest ingest of ``name`` skipped, with the reasons."""
    snap = catalog.show(quarantine_name(name))
    return catalog.arrow_dataset(snap.ref).to_table().to_pylist() if snap.stats["rows"] else []
