"""Small builders shared by tests."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import numpy as np

from catalog import audio_cell, encode_flac

RATE = 24_000


def clip_features(rate: int = RATE) -> datasets.Features:
    return datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=rate),
                              "duration": datasets.Value("float32"), "label": datasets.Value("string")})


def pcm16_clip(seed: int, frames: int = 4800, channels: int = 4) -> np.ndarray:
    """Integer PCM values, so FLAC round trips must return them exactly."""
    return np.random.default_rng(seed).integers(-20000, 20000, (frames, channels), dtype=np.int16)


def clip_rows(start: int, n: int, channels: int = 4, labels=("dog", "bell")):
    for i in range(start, start + n):
        pcm = pcm16_clip(i, channels=channels)
        yield {"id": f"clip-{i}", "audio": audio_cell(encode_flac(pcm / 32768.0, RATE), f"clip-{i}.flac"),
               "duration": pcm.shape[0] / RATE, "label": labels[i % len(labels)]}


def publish_dataset(catalog, name: str, config: dict, *, inputs=(), rows: int = 4, shards: int = 2,
                    features=None):
    from catalog import write_shard

    features = features or clip_features()
    run = catalog.create_run(name, config, features, inputs=list(inputs))
    per = -(-rows // shards)
    for k in range(shards):
        write_shard(run.shard("train", k, shards), features, clip_rows(k * per, min(per, rows - k * per)))
    return catalog.publish(run)


REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "rt-planted-8c1f0e5a9b7d4e2f"  # distinctive: a hit can only be this leak
PLANTED_ENV = {"AWS_SECRET_ACCESS_KEY": SECRET, "MLFLOW_TRACKING_PASSWORD": SECRET,
               "ROOMTONE_API_TOKEN": SECRET, "HF_TOKEN": SECRET}


def readme_commands() -> dict[str, str]:
    """The README's two commands, as written under "The two commands"."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    return {"demo": next(c for c in commands if " demo" in c), "test": next(c for c in commands if " test" in c)}


SONIC_PI = REPO_ROOT.parent / "shared" / "data" / "events" / "sonic-pi"


def sonic_pi_rows(max_seconds: float = float("inf")) -> list[dict]:
    """The rows of the CC0 sonic-pi labels.csv no longer than ``max_seconds``."""
    import csv

    with open(SONIC_PI / "labels.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if float(r["duration_s"]) <= max_seconds]


def write_labels_csv(folder: Path, rows: list[dict]) -> Path:
    import csv

    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "labels.csv"


def copy_sonic_pi(folder: Path, rows: list[dict]) -> Path:
    """A folder holding these sonic-pi files and their labels.csv (returned), as a user's library would."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        shutil.copy(SONIC_PI / r["file"], folder / r["file"])
    return write_labels_csv(folder, rows)
