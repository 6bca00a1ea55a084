"""Shard writer throughput next to its parts: FLAC encoding (soundfile) + Parquet writing (pyarrow).

Our writer = encode every clip + write Hugging Face-compatible shards (schema metadata,
row groups, footer stats, atomic rename). The peer is the bare cost of the same two steps
done directly, so the ratio is the overhead of our layer (aim: <= 1.2x).

    python benchmarks/bench_shards.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from catalog import Catalog, CatalogConfig, Location, audio_cell, encode_flac, shard_relpath, write_shard

RATE, CHANNELS = 24_000, 4


def make_clips(n: int, seconds: float) -> list[np.ndarray]:
    """Band-limited noise with a decaying envelope: compresses like real recordings, not like silence."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    clips = []
    for _ in range(n):
        x = np.cumsum(rng.standard_normal((t.size, CHANNELS)), axis=0)
        x -= x.mean(axis=0)
        x *= (0.3 + 0.7 * np.exp(-t % 1.0 * 3))[:, None] * 0.4 / np.abs(x).max()
        clips.append(x.astype(np.float32))
    return clips


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def catalog_growth(root: Path, files: int) -> tuple[float, float]:
    """Catalog bytes (database + Iceberg metadata) per data file and per snapshot, from three
    publishes of 1, ``files`` and ``2 * files`` shards: what `roomtone plan` sizes the catalog by."""
    catalog = Catalog(CatalogConfig(root=str(root)))
    features = datasets.Features({"id": datasets.Value("string"), "x": datasets.Value("float32")})

    def size() -> int:
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "datasets" not in p.parts)

    sizes = [size()]
    for n in (1, files, 2 * files):
        run = catalog.create_run("growth", {"shards": n}, features)
        for i in range(n):
            write_shard(run.shard("train", i, n), features, [{"id": f"{n}-{i}", "x": float(i)}])
        catalog.publish(run, expected_shards={"train": n})
        sizes.append(size())
    second, third = sizes[2] - sizes[1], sizes[3] - sizes[2]
    per_file = (third - second) / files
    return per_file, second - files * per_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter clips (well under a minute)")
    args = parser.parse_args()
    n, seconds, repeats = (16, 5.0, 2) if args.quick else (48, 10.0, 3)
    clips = make_clips(n, seconds)
    features = datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=RATE),
                                  "duration": datasets.Value("float32"), "label": datasets.Value("string")})
    tmp = Path(tempfile.mkdtemp(prefix="bench-shards-"))

    def encode_only() -> list[bytes]:
        out = []
        for x in clips:
            buf = io.BytesIO()
            sf.write(buf, x, RATE, format="FLAC", subtype="PCM_16")
            out.append(buf.getvalue())
        return out

    encoded = encode_only()
    flac_mb = sum(len(b) for b in encoded) / 1e6
    table = pa.table({"id": [f"c{i}" for i in range(n)],
                      "audio": [audio_cell(b, f"c{i}.flac") for i, b in enumerate(encoded)],
                      "duration": pa.array([seconds] * n, pa.float32()), "label": ["x"] * n})

    def write_only():
        pq.write_table(table, tmp / "plain.parquet", compression="none")

    def ours():
        rows = ({"id": f"c{i}", "audio": audio_cell(encode_flac(x, RATE), f"c{i}.flac"), "duration": seconds,
                 "label": "x"} for i, x in enumerate(clips))
        write_shard(Location.parse(str(tmp)).join(shard_relpath("train", 0, 1)), features, rows)

    t_encode, t_write, t_ours = best_of(repeats, encode_only), best_of(repeats, write_only), best_of(repeats, ours)
    peer = t_encode + t_write
    audio_s = n * seconds
    print(f"{n} clips x {seconds:.0f} s, {CHANNELS} ch, {RATE} Hz: {flac_mb:.1f} MB of FLAC")
    print(f"{'step':34} {'seconds':>8} {'MB/s':>8} {'x real time':>12}")
    for name, t in [("soundfile FLAC encode", t_encode), ("pyarrow write of the same bytes", t_write),
                    ("encode + write (peer)", peer), ("roomtone shard writer", t_ours)]:
        print(f"{name:34} {t:8.3f} {flac_mb / t:8.1f} {audio_s / t:12.0f}")
    print(f"overhead of roomtone's layer: {t_ours / peer:.3f}x (aim <= 1.2x)")
    per_file, per_snapshot = catalog_growth(tmp / "catalog", 20 if args.quick else 100)
    print(f"catalog growth (SQLite + Iceberg metadata): {per_file:,.0f} bytes per data file, "
          f"{per_snapshot:,.0f} bytes per snapshot")
    print(json.dumps([
        {"benchmark": "shard_writer", "metric": "throughput", "value": round(flac_mb / t_ours, 2), "unit": "MB/s",
         "peer": "soundfile encode + pyarrow write", "peer_value": round(flac_mb / peer, 2),
         "ratio": round(t_ours / peer, 3)},
        {"benchmark": "shard_writer", "metric": "catalog_bytes_per_file", "value": round(per_file), "unit": "bytes",
         "peer": None, "peer_value": None, "ratio": None},
        {"benchmark": "shard_writer", "metric": "catalog_bytes_per_snapshot", "value": round(per_snapshot),
         "unit": "bytes", "peer": None, "peer_value": None, "ratio": None},
    ]))


if __name__ == "__main__":
    main()
