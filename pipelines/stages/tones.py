"""Generated multichannel test audio: the zero-download demo dataset.

Each clip is one synthetic event (harmonic tone, chirp, noise burst or click train) with
small per-channel delays and gains, labelled with its kind. Clips are clearly marked
``synthetic``; every random draw comes from (seed, clip id).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import datasets
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from catalog import Catalog, Snapshot, audio_cell, encode_flac, plan_num_shards
from catalog.shards import DEFAULT_ROW_GROUP_BYTES, DEFAULT_SHARD_BYTES
from pipelines.seeding import item_rng
from pipelines.sharded import ShardTask, run_sharded, split_into_shards

KINDS = ("harmonic_tone", "chirp", "noise_burst", "click_train")


class TonesConfig(BaseModel):
    """Defaults are the demo's; sizes are bounded so a typo cannot ask for a petabyte."""

    model_config = ConfigDict(extra="forbid")

    name: str = "demo_tones"
    num_clips: int = Field(48, ge=1, le=10_000_000)
    clip_seconds: float = Field(2.0, gt=0, le=600)
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    channels: int = Field(4, ge=1, le=64)
    bits: Literal[16, 24] = 16
    seed: int = Field(0, ge=0)
    test_fraction: float = Field(0.25, ge=0, lt=1)
    max_shard_bytes: int = Field(DEFAULT_SHARD_BYTES, ge=100_000)
    row_group_bytes: int = Field(DEFAULT_ROW_GROUP_BYTES, ge=10_000)


def features(cfg: TonesConfig) -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"),
        "audio": datasets.Audio(sampling_rate=cfg.sample_rate),
        "duration": datasets.Value("float32"),
        "label": datasets.Value("string"),
        "num_channels": datasets.Value("int32"),
        "seed": datasets.Value("int64"),
        "synthetic": datasets.Value("bool"),
    })


def synth_clip(cfg: TonesConfig, clip_id: str) -> tuple[np.ndarray, str]:
    """``(time, channels)`` float32 audio and its label, from (seed, clip id) alone."""
    rng = item_rng(cfg.seed, clip_id)
    n = int(round(cfg.clip_seconds * cfg.sample_rate))
    t = np.arange(n) / cfg.sample_rate
    kind = KINDS[rng.integers(len(KINDS))]
    if kind == "harmonic_tone":
        f0 = rng.uniform(110, 880)
        dry = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    elif kind == "chirp":
        f0, f1 = rng.uniform(100, 500), rng.uniform(1000, min(8000, cfg.sample_rate / 2.5))
        dry = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * cfg.clip_seconds)))
    elif kind == "noise_burst":
        dry = rng.standard_normal(n) * np.exp(-t * rng.uniform(2, 8))
    else:
        dry = np.zeros(n)
        dry[(np.arange(0, cfg.clip_seconds, rng.uniform(0.1, 0.4)) * cfg.sample_rate).astype(int)] = 1.0
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks at the edges
    dry = dry * envelope
    delays = rng.integers(0, 8, cfg.channels)
    gains = rng.uniform(0.6, 1.0, cfg.channels)
    audio = np.stack([np.roll(dry, d) * g for d, g in zip(delays, gains)], axis=1)
    audio *= 0.5 / max(1e-9, np.abs(audio).max())
    return audio.astype(np.float32), kind


def make_rows(cfg: TonesConfig, task: ShardTask):
    for clip_id in task.items:
        audio, kind = synth_clip(cfg, clip_id)
        yield {"id": clip_id, "audio": audio_cell(encode_flac(audio, cfg.sample_rate, cfg.bits), f"{clip_id}.flac"),
               "duration": audio.shape[0] / cfg.sample_rate, "label": kind, "num_channels": cfg.channels,
               "seed": cfg.seed, "synthetic": True}


def run_tones(cfg: TonesConfig, catalog: Catalog, *, address: str | None = None,
              show_progress: bool = True) -> Snapshot:
    run = catalog.create_run(cfg.name, cfg, features(cfg))
    ids = [f"clip-{i:07d}" for i in range(cfg.num_clips)]
    n_test = int(round(cfg.num_clips * cfg.test_fraction))
    by_split = {"train": ids[n_test:], "test": ids[:n_test]} if n_test else {"train": ids}
    bytes_per_clip = cfg.clip_seconds * cfg.sample_rate * cfg.channels * cfg.bits / 8 * 0.7
    shards = {s: plan_num_shards(len(v) * bytes_per_clip, cfg.max_shard_bytes) for s, v in by_split.items()}
    return run_sharded(catalog, run, split_into_shards(by_split, shards), partial(make_rows, cfg), address=address, show_progress=show_progress,
                       description=f"generating {cfg.name}", writer_options={"row_group_bytes": cfg.row_group_bytes})
