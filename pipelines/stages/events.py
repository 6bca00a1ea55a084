"""The sound-event library ingest: a folder of labelled audio files becomes a catalog dataset.

Each file is decoded with soundfile, mixed to mono (channel mean), resampled to the target
rate with ``resample_poly`` (a rational approximation of the rate ratio), trimmed of
leading/trailing samples quieter than ``trim_db`` below the peak, and scaled to an RMS of
``loudness_db`` dBFS (plain RMS over the trimmed event, no K-weighting; full scale = 0 dBFS,
so a full-scale sine is -3 dBFS). The gain is capped so the peak stays under -0.1 dBFS,
so an event whose crest factor exceeds -0.1 - loudness_db dB ends up quieter than the target.

Files that are unreadable, empty, silent, contain NaN/inf, lack a label or are missing are
skipped, not fatal: a Ray pass probes every file first, and the skipped ones are published as
a separate small dataset ``<name>_quarantine`` (source_file, reason) whose input is the events
snapshot. The probe comes first so that a library with no usable file fails before publishing.
"""

from __future__ import annotations

import csv
import json
import os
import re
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

import datasets
import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.signal import resample_poly

from catalog import Catalog, Snapshot, audio_cell, encode_flac, plan_num_shards, validate_name, write_shard
from catalog.cluster import connect
from catalog.errors import RoomtoneError
from catalog.shards import DEFAULT_SHARD_BYTES
from pipelines.seeding import item_rng
from pipelines.sharded import ShardTask, run_sharded, split_into_shards

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
PEAK_CEILING = 10 ** (-0.1 / 20)
DURATION_BINS = [0, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 600]
QUARANTINE_FEATURES = datasets.Features({"source_file": datasets.Value("string"),
                                         "reason": datasets.Value("string")})
PROBE_FILES_PER_TASK = 64


class EventsConfig(BaseModel):
    """Paths are made absolute at the door so Ray workers find the files from any directory."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("events", max_length=52, description="the skipped files go to <name>_quarantine")
    folder: Path
    labels_csv: Path | None = Field(None, description="default: each file's parent folder name is its label")
    file_column: str = Field("file", min_length=1, description="paths relative to folder")
    label_column: str = Field("label", min_length=1)
    license_column: str = Field("license", min_length=1, description="copied when the CSV has it")
    ontology: Path | None = Field(None, description="AudioSet ontology JSON; matching labels get ontology_id")
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    trim_db: float = Field(-50.0, ge=-120, lt=0, description="trim edges quieter than this, dB below the peak")
    loudness_db: float = Field(-30.0, ge=-60, le=-3, description="RMS of each trimmed event, dBFS")
    silence_db: float = Field(-80.0, ge=-160, lt=0, description="a file whose peak is below this (dBFS) is silent")
    bits: Literal[16, 24] = 16
    seed: int = Field(0, ge=0)
    test_fraction: float = Field(0.0, ge=0, lt=1, description="source files held out for a test split")
    max_shard_bytes: int = Field(DEFAULT_SHARD_BYTES, ge=100_000)

    @field_validator("folder", "labels_csv", "ontology")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return None if path is None else path.expanduser().resolve()


class EventSource(NamedTuple):
    relpath: str
    label: str
    license: str | None


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

def read_mono(path: Path, silence_db: float) -> tuple[np.ndarray, int, int]:
    """Mono float64 samples, rate and channel count; raises Quarantined with the reason to skip."""
    if path.stat().st_size == 0:
        raise Quarantined("empty file (0 bytes)")
    try:
        samples, rate = sf.read(path, dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise Quarantined(f"unreadable: {getattr(exc, 'error_string', exc)}") from None
    if samples.shape[0] == 0:
        raise Quarantined("empty: no audio frames")
    if not np.isfinite(samples).all():
        raise Quarantined("contains NaN or infinite samples")
    mono = samples.mean(axis=1)
    peak = np.abs(mono).max()
    if peak < 10 ** (silence_db / 20):
        raise Quarantined(f"silent: peak below silence_db ({silence_db:g} dBFS)")
    return mono, rate, samples.shape[1]


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling by the ratio target/rate, approximated by a fraction of small terms."""
    if rate == target:
        return x
    ratio = Fraction(target, rate).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator)


def trim(x: np.ndarray, trim_db: float) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``trim_db`` below the peak."""
    level = np.abs(x)
    keep = np.flatnonzero(level >= level.max() * 10 ** (trim_db / 20))
    return x[keep[0]:keep[-1] + 1]


def normalise(x: np.ndarray, loudness_db: float) -> np.ndarray:
    """Scale to an RMS of ``loudness_db`` dBFS, never pushing the peak over -0.1 dBFS."""
    gain = 10 ** (loudness_db / 20) / np.sqrt(np.mean(x ** 2))
    return (x * min(gain, PEAK_CEILING / np.abs(x).max())).astype(np.float32)


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
    with open(cfg.labels_csv, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for field, column in (("file_column", cfg.file_column), ("label_column", cfg.label_column)):
            if column not in columns:
                raise RoomtoneError(f"labels_csv {cfg.labels_csv} has no column {column!r} (its columns: "
                                    f"{', '.join(columns) or 'none'})", f"set {field} to one of its columns")
        return list(reader)


def plan_library(cfg: EventsConfig) -> tuple[list[EventSource], list[dict]]:
    """Labelled files to ingest and the files skipped already (missing, unlabelled, unlisted)."""
    if not cfg.folder.is_dir():
        raise RoomtoneError(f"folder {cfg.folder} does not exist or is not a folder", "check the FOLDER argument")
    found = sorted(p.relative_to(cfg.folder).as_posix() for p in cfg.folder.rglob("*")
                   if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not found:
        raise RoomtoneError(f"folder {cfg.folder} has no audio files ({', '.join(AUDIO_SUFFIXES)})",
                            "point FOLDER at the event library")
    sources, skipped = [], []
    if cfg.labels_csv is None:
        for rel in found:
            if "/" in rel:
                sources.append(EventSource(rel, rel.split("/")[-2], None))
            else:
                skipped.append({"source_file": rel, "reason": "no label: file is not inside a class folder"})
        return sources, skipped
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
            sources.append(EventSource(rel, label, row.get(cfg.license_column) or None))
    skipped += [{"source_file": rel, "reason": f"not listed in {where}"} for rel in found if rel not in listed]
    return sources, skipped


def probe(cfg: EventsConfig, sources: tuple[EventSource, ...]) -> list[str | None]:
    """The reason each file would be skipped, or None when it decodes to usable audio."""
    reasons = []
    for src in sources:
        try:
            read_mono(cfg.folder / src.relpath, cfg.silence_db)
            reasons.append(None)
        except Quarantined as exc:
            reasons.append(str(exc))
    return reasons


def split_by_item(ids: list, seed: int, test_fraction: float, key=str) -> dict[str, list]:
    """``train`` and, when test_fraction > 0, ``test``: each item's side drawn from (seed, item id)."""
    is_test = [bool(test_fraction) and item_rng(seed, key(i), "split").random() < test_fraction for i in ids]
    by_split = {"train": [i for i, t in zip(ids, is_test) if not t], "test": [i for i, t in zip(ids, is_test) if t]}
    return {split: items for split, items in by_split.items() if items}


# -- the job ---------------------------------------------------------------------------------

def make_rows(cfg: EventsConfig, ontology_ids: dict[str, str | None], task: ShardTask):
    for src in task.items:
        mono, rate, channels = read_mono(cfg.folder / src.relpath, cfg.silence_db)
        audio = normalise(trim(resample(mono, rate, cfg.sample_rate), cfg.trim_db), cfg.loudness_db)
        yield event_row(cfg, src.relpath, audio, label=src.label, ontology_id=ontology_ids[src.label],
                        source_file=src.relpath, original_sample_rate=rate, original_channels=channels,
                        synthetic=False, license=src.license)


def quarantine_name(name: str) -> str:
    return f"{name}_quarantine"


def run_ingest_events(cfg: EventsConfig, catalog: Catalog, *, address: str | None = None,
                      show_progress: bool = True) -> Snapshot:
    """Probe, then ingest the usable files on Ray; publish the events and ``<name>_quarantine``."""
    import ray

    validate_name(quarantine_name(cfg.name))
    sources, skipped = plan_library(cfg)
    ontology_ids = match_ontology({s.label for s in sources}, cfg.ontology)
    run = catalog.create_run(cfg.name, cfg, features(cfg))
    connect(address)
    chunks = [tuple(sources[i:i + PROBE_FILES_PER_TASK]) for i in range(0, len(sources), PROBE_FILES_PER_TASK)]
    remote = ray.remote(probe).options(num_cpus=1)
    reasons = [r for chunk in ray.get([remote.remote(cfg, c) for c in chunks]) for r in chunk]
    skipped += [{"source_file": s.relpath, "reason": r} for s, r in zip(sources, reasons) if r]
    usable = [s for s, r in zip(sources, reasons) if r is None]
    if not usable:
        why = "; ".join(f"{q['source_file']}: {q['reason']}" for q in skipped[:5])
        raise RoomtoneError(f"folder {cfg.folder} has no readable, labelled audio file ({len(skipped)} skipped: "
                            f"{why}{' ...' if len(skipped) > 5 else ''})",
                            "fix the files; label them with labels_csv (--labels-csv) or class folders")
    by_split = split_by_item(usable, cfg.seed, cfg.test_fraction, key=lambda s: s.relpath)
    size = {s.relpath: (cfg.folder / s.relpath).stat().st_size for s in usable}
    shards = {split: plan_num_shards(sum(size[s.relpath] for s in items), cfg.max_shard_bytes)
              for split, items in by_split.items()}
    snap = run_sharded(catalog, run, split_into_shards(by_split, shards), partial(make_rows, cfg, ontology_ids),
                       address=address, show_progress=show_progress, description=f"ingesting {cfg.name}",
                       writer_options={"histograms": {"duration": DURATION_BINS}})
    qrun = catalog.create_run(quarantine_name(cfg.name), cfg, QUARANTINE_FEATURES, inputs=[snap.ref])
    write_shard(qrun.shard("train", 0, 1), QUARANTINE_FEATURES, sorted(skipped, key=lambda q: q["source_file"]))
    catalog.publish(qrun)
    return snap


def read_quarantine(catalog: Catalog, name: str) -> list[dict]:
    """The files the latest ingest of ``name`` skipped, with the reasons."""
    snap = catalog.show(quarantine_name(name))
    return catalog.arrow_dataset(snap.ref).to_table().to_pylist() if snap.stats["rows"] else []
