"""A generated sound-event library: the zero-download stand-in for an ingested one.

Six kinds of mono event (harmonic tones, chirps, noise bursts, clicks, two-tone sirens and
footstep-like trains of decaying filtered impulses), ``per_class`` of each, with the same row
schema and loudness normalisation as ``pipelines.stages.events``. Every draw comes from
(seed, event id), so an event's audio never depends on sharding or worker count.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy.signal import butter, sosfilt

from catalog import Catalog, Snapshot
from catalog.fields import DatasetName, Seed, ShardBytes
from catalog.shards import DEFAULT_SHARD_BYTES
from catalog.storage import absolute_path
from pipelines.sharded import ShardTask, plan_shards, run_sharded
from pipelines.stages.events import DURATION_BINS, event_row, features, match_ontology, normalise, split_by_item
from simulation.seeding import item_rng

Kind = Literal["harmonic_tone", "chirp_tone", "noise_burst", "clicking", "siren", "footsteps"]
KINDS: tuple[str, ...] = Kind.__args__  # labels chosen to match AudioSet names where one fits
LICENSE = "CC0-1.0 (generated)"


class SyntheticEventsConfig(BaseModel):
    """Defaults make a small demo library; sizes are bounded so a typo cannot ask for a petabyte."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName = "synthetic_events"
    per_class: int = Field(8, ge=1, le=1_000_000)
    kinds: list[Kind] = Field(list(KINDS), min_length=1)
    duration: tuple[float, float] = Field((0.3, 2.0), description="seconds, drawn uniformly per event")
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    loudness_db: float = Field(-30.0, ge=-60, le=-3, description="RMS of each event, dBFS (as in events)")
    ontology: Path | None = Field(None, description="AudioSet ontology JSON; matching kinds get ontology_id")
    bits: Literal[16, 24] = 16
    seed: Seed = 0
    test_fraction: float = Field(0.0, ge=0, lt=1, description="events held out for a test split, per kind")
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @field_validator("ontology")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return None if path is None else absolute_path(path)

    @model_validator(mode="after")
    def _duration(self) -> "SyntheticEventsConfig":
        lo, hi = self.duration
        if not 0.05 <= lo <= hi <= 60:
            raise ValueError(f"duration must be a range [min, max] with 0.05 <= min <= max <= 60 s; got {[lo, hi]}")
        return self


def _decaying(rng, n: int, rate: int, seconds: tuple[float, float]) -> np.ndarray:
    return np.exp(-np.arange(n) / (rng.uniform(*seconds) * rate))


def synth_event(cfg: SyntheticEventsConfig, event_id: str, kind: str) -> np.ndarray:
    """Mono float32 audio of one event, from (seed, event id) alone."""
    rng = item_rng(cfg.seed, event_id)
    rate = cfg.sample_rate
    n = int(round(rng.uniform(*cfg.duration) * rate))
    t = np.arange(n) / rate
    nyquist_safe = rate / 2.5
    if kind == "harmonic_tone":
        f0 = rng.uniform(110, 880)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
                for k in range(1, 7) if f0 * k < nyquist_safe)
        x = x * _decaying(rng, n, rate, (0.2, 2.0))
    elif kind == "chirp_tone":
        f0, f1 = rng.uniform(200, 1000), rng.uniform(1500, min(8000, nyquist_safe))
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1])))
    elif kind == "noise_burst":
        lo = rng.uniform(100, 2000)
        band = butter(4, [lo, min(lo * rng.uniform(1.5, 8), nyquist_safe)], "bandpass", fs=rate, output="sos")
        x = sosfilt(band, rng.standard_normal(n)) * _decaying(rng, n, rate, (0.05, 0.5))
    elif kind == "clicking":
        x = _impulses(rng, n, rate, rng.uniform(2, 12), 0.1, (0.0005, 0.003), (2000, nyquist_safe))
    elif kind == "siren":
        f1 = rng.uniform(400, 900)
        f2, period = f1 * rng.uniform(1.2, 1.5), rng.uniform(0.3, 0.8)
        freq = np.where((t // period) % 2 == 0, f1, f2)
        phase = 2 * np.pi * np.cumsum(freq) / rate
        x = sum(np.sin(k * phase) / k for k in (1, 3, 5) if f2 * k < nyquist_safe)  # square-ish, as sirens sound
    else:  # footsteps: heel strikes at walking rate, each a decaying low-passed impulse
        x = _impulses(rng, n, rate, rng.uniform(1.6, 2.2), 0.05, (0.02, 0.06), (300, 1500))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # 5 ms fades: no clicks at the edges
    return normalise(x * fade, cfg.loudness_db)


def _impulses(rng, n: int, rate: int, per_second: float, jitter: float, decay: tuple[float, float],
              cutoff: tuple[float, float]) -> np.ndarray:
    """Decaying low-passed noise impulses at ``per_second`` (timing jittered by ``jitter`` s)."""
    x = np.zeros(n)
    hit = int(rate * 0.2)
    lowpass = butter(2, rng.uniform(*cutoff), "lowpass", fs=rate, output="sos")
    first = rng.uniform(0, min(0.5 / per_second, n / rate / 2))  # at least one strike, however short
    for start in np.arange(first, n / rate, 1 / per_second):
        i = int(np.clip((start + rng.uniform(-jitter, jitter) / 2) * rate, 0, n - 1))
        m = min(hit, n - i)
        burst = rng.standard_normal(m) * _decaying(rng, m, rate, decay) * rng.uniform(0.5, 1.0)
        x[i:i + m] += sosfilt(lowpass, burst)
    return x


def event_ids(cfg: SyntheticEventsConfig) -> list[tuple[str, str]]:
    return [(f"{kind}-{i:06d}", kind) for kind in cfg.kinds for i in range(cfg.per_class)]


def make_rows(cfg: SyntheticEventsConfig, ontology_ids: dict[str, str | None], task: ShardTask):
    for event_id, kind in task.items:
        yield event_row(cfg, event_id, synth_event(cfg, event_id, kind), label=kind,
                        ontology_id=ontology_ids[kind], source_file=None, original_sample_rate=cfg.sample_rate,
                        original_channels=1, synthetic=True, license=LICENSE)


def run_synthetic_events(cfg: SyntheticEventsConfig, catalog: Catalog, *, address: str | None = None,
                         show_progress: bool = True) -> Snapshot:
    ontology_ids = match_ontology(set(cfg.kinds), cfg.ontology)
    run = catalog.create_run(cfg.name, cfg, features(cfg))
    by_split = split_by_item(event_ids(cfg), cfg.seed, cfg.test_fraction, key=lambda e: e[0], label=lambda e: e[1])
    bytes_per_event = sum(cfg.duration) / 2 * cfg.sample_rate * cfg.bits / 8 * 0.7
    return run_sharded(catalog, run, plan_shards(by_split, cfg.max_shard_bytes, bytes_per_event),
                       partial(make_rows, cfg, ontology_ids),
                       address=address, show_progress=show_progress, description=f"generating {cfg.name}",
                       writer_options={"histograms": {"duration": DURATION_BINS}})
