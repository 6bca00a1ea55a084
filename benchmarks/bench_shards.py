"""Shard writer throughput next to its parts: FLAC encoding (soundfile) + Parquet writing (pyarrow);
and the time to publish a run of many shards on S3.

Our writer = encode every clip + write Hugging Face-compatible shards (schema metadata,
row groups, footer stats, atomic rename). The peer is the bare cost of the same two steps
done directly, so the ratio is the overhead of our layer (aim: <= 1.2x).

Publish: `Catalog.publish` of a run's shards on S3 (moto on 127.0.0.1 behind a proxy that
holds every request 20 ms, as an S3 round trip) reads each footer twice (our stats, then
pyiceberg's data-file metrics) and commits once. The peer registers the same files with
pyiceberg's own `Table.add_files` (footers read on its thread pool; no stats, no card). The
same publish with one footer read at a time is what it was before.

Expire: `Catalog.expire` of that version (lineage of every dataset checked, two commits, its
folder deleted). The peer expires the snapshot with pyiceberg's `expire_snapshots` (which
deletes no files) and deletes the version's folder with pyarrow's `delete_dir`.

    python benchmarks/bench_shards.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
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
    """Catalog bytes (database + Iceberg metadata) per data file and per snapshot, from two new
    datasets of ``files`` and ``2 * files`` shards, as a build makes each stage's table: what
    `roomtone plan` sizes the catalog by. (Republishing one dataset, as before, also counted the
    previous version's files as deleted manifest entries, and at 100 files gave a negative
    figure per snapshot.)"""
    catalog = Catalog(CatalogConfig(root=str(root)))
    features = datasets.Features({"id": datasets.Value("string"), "x": datasets.Value("float32")})

    def size() -> int:
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "datasets" not in p.parts)

    def publish(name: str, n: int) -> int:
        """Bytes the catalog grows by publishing a new dataset of n shards."""
        before = size()
        run = catalog.create_run(name, {"shards": n}, features)
        for i in range(n):
            write_shard(run.shard("train", i, n), features, [{"id": f"{n}-{i}", "x": float(i)}])
        catalog.publish(run, expected_shards={"train": n})
        return size() - before

    publish("warmup", 1)  # the database, its tables and the namespace: made once per catalog
    one, two = publish("growth_a", files), publish("growth_b", 2 * files)
    per_file = (two - one) / files
    return per_file, one - files * per_file


def s3_times(shards: int, latency: float) -> tuple[float, float, float, float, float]:
    """Seconds on S3 at `latency` s a request: to publish `shards` one-row shards (ours, the same
    one footer at a time, pyiceberg's `add_files` of the same files into a fresh table); then to
    expire that version and delete its files (ours; pyiceberg's `expire_snapshots` and pyarrow's
    `delete_dir` of its folder)."""
    import logging
    import os

    import boto3
    from moto.server import ThreadedMotoServer

    import catalog.storage
    from catalog.shards import arrow_schema

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 proxy and port picker
    from tests.conftest import free_port
    from tests.reliability.s3_proxy import S3FaultProxy

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log: a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    proxy = S3FaultProxy(f"http://127.0.0.1:{port}").start()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ENDPOINT_URL=proxy.url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    try:
        boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1").create_bucket(Bucket="bench-publish")
        tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
        cat = Catalog(CatalogConfig(root="s3://bench-publish/root", uri=f"sqlite:///{tmp}/catalog.db",
                                    warehouse=str(tmp / "iceberg")))
        features = datasets.Features({"id": datasets.Value("string"), "x": datasets.Value("float32")})
        times = []
        for name, at_once in (("ours", catalog.storage.FILES_AT_ONCE), ("serial", 1), ("peer", None)):
            run = cat.create_run(f"publish_{name}", {"shards": shards}, features)
            proxy.latency = 0.0
            for i in range(shards):
                write_shard(run.shard("train", i, shards), features, [{"id": str(i), "x": float(i)}])
            proxy.latency = latency
            start = time.perf_counter()
            if at_once is None:
                table = cat.iceberg.create_table(("roomtone", "publish_peer"), schema=arrow_schema(features))
                table.add_files([loc.uri for loc in run.finished_shards().values()])
            else:
                default, catalog.storage.FILES_AT_ONCE = catalog.storage.FILES_AT_ONCE, at_once
                try:
                    cat.publish(run, expected_shards={"train": shards})
                finally:
                    catalog.storage.FILES_AT_ONCE = default
            times.append(time.perf_counter() - start)
        for name in ("ours", "serial"):  # a second version of each, so that the first can expire
            proxy.latency = 0.0
            run = cat.create_run(f"publish_{name}", {"shards": 1}, features)
            write_shard(run.shard("train", 0, 1), features, [{"id": "0", "x": 0.0}])
            first = cat.history(f"publish_{name}")[0]
            cat.publish(run)
            proxy.latency = latency
            start = time.perf_counter()
            if name == "ours":
                assert len(cat.expire("publish_ours", keep_last=1).files) == shards + 1  # shards and card
            else:
                cat._table("publish_serial").maintenance.expire_snapshots().by_id(first.snapshot_id).commit()
                folder = Location.parse(first.location)
                folder.filesystem.delete_dir(folder.path)
            times.append(time.perf_counter() - start)
        return tuple(times)
    finally:
        proxy.stop()
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    shards, latency = (60 if args.quick else 300), 0.02
    publish, serial, add_files, expire, by_hand = s3_times(shards, latency)
    print(f"publish of {shards} shards on S3 at {1000 * latency:.0f} ms a request: ours {publish:.1f} s "
          f"({serial:.1f} s reading one footer at a time), pyiceberg add_files {add_files:.1f} s")
    print(f"expire of that version and its {shards} shards: ours {expire:.2f} s (lineage checked, a re-run "
          f"finishes a killed one), pyiceberg expire_snapshots + pyarrow delete_dir {by_hand:.2f} s")
    print(json.dumps([
        {"benchmark": "publish", "metric": f"publish_{shards}_shards_s3", "value": round(publish, 2), "unit": "s",
         "peer": "pyiceberg Table.add_files", "peer_value": round(add_files, 2),
         "ratio": round(publish / add_files, 3)},
        {"benchmark": "expire", "metric": f"expire_{shards}_shards_s3", "value": round(expire, 2), "unit": "s",
         "peer": "pyiceberg expire_snapshots + pyarrow delete_dir", "peer_value": round(by_hand, 2),
         "ratio": round(expire / by_hand, 3)},
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
