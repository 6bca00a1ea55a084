"""Hugging Face-compatible Parquet shards: naming, writing, and the stats in their footers.

A shard is written whole or not at all (temp file, then one rename or one upload), under
a deterministic name ``data/<split>/<split>-NNNNN-of-MMMMM.parquet``, so a retried task
overwrites its own file and never adds a second copy. Each shard's footer carries its own
statistics, so a publish after a crash or resume can sum them without re-reading rows.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.errors import SchemaMismatchError
from catalog.storage import Location

if TYPE_CHECKING:
    import datasets

# Near the datasets library's own defaults (config.MAX_SHARD_SIZE / MAX_ROW_GROUP_SIZE).
DEFAULT_SHARD_BYTES = 500_000_000
DEFAULT_ROW_GROUP_BYTES = 100_000_000
STATS_KEY = b"roomtone.stats"
SHARD_NAME = re.compile(r"^data/(?P<split>[a-z][a-z0-9_]*)/(?P=split)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def shard_relpath(split: str, index: int, count: int) -> str:
    if not SPLIT_NAME.match(split):
        raise ValueError(f"split {split!r} is invalid: use lowercase letters, digits and underscores")
    if not 0 <= index < count <= 99_999:
        raise ValueError(f"shard index {index} of {count} is out of range")
    return f"data/{split}/{split}-{index:05d}-of-{count:05d}.parquet"


def split_of(relpath: str) -> str:
    match = SHARD_NAME.match(relpath)
    if not match:
        raise ValueError(f"{relpath!r} is not a roomtone shard path (data/<split>/<split>-NNNNN-of-MMMMM.parquet)")
    return match["split"]


def plan_num_shards(estimated_bytes: int, max_shard_bytes: int = DEFAULT_SHARD_BYTES, multiple_of: int = 1) -> int:
    """Fewest shards under ``max_shard_bytes``, rounded up to a multiple of the worker count
    so that every distributed reader gets whole shards (see datasets' split_dataset_by_node)."""
    n = max(1, -(-int(estimated_bytes) // int(max_shard_bytes)))
    return -(-n // multiple_of) * multiple_of


def arrow_schema(features: datasets.Features) -> pa.Schema:
    """The file schema: the Arrow form of ``features`` with the ``huggingface`` metadata,
    refusing types that would break a consumer (large_* for HF, unsigned ints for Iceberg)."""
    schema = features.arrow_schema
    for name, typ in _leaves(schema):
        if pa.types.is_large_binary(typ) or pa.types.is_large_string(typ) or pa.types.is_large_list(typ):
            raise ValueError(f"column {name!r} has type {typ}: use non-large types so datasets keeps the feature")
        if pa.types.is_unsigned_integer(typ):
            raise ValueError(f"column {name!r} has unsigned type {typ}: Iceberg has none, use a signed integer")
    return schema


def _leaves(schema_or_type, prefix: str = ""):
    fields = schema_or_type if isinstance(schema_or_type, pa.Schema) else schema_or_type
    for f in fields:
        name = f"{prefix}{f.name}"
        if pa.types.is_struct(f.type):
            yield from _leaves(list(f.type), name + ".")
        elif pa.types.is_list(f.type) or pa.types.is_large_list(f.type) or pa.types.is_fixed_size_list(f.type):
            yield name, f.type
            yield from _leaves([f.type.value_field], name + ".")
        else:
            yield name, f.type


def _parquet_paths(schema: pa.Schema) -> list[str]:
    """Parquet's dotted paths of the schema's leaf columns, by which the writer's per-column options
    are keyed. They differ from Arrow's field names inside lists (``labels.list.element.frame``), so
    options keyed by field names silently missed every list column: no compression, no statistics."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    parquet = pq.ParquetFile(pa.BufferReader(sink.getvalue())).schema
    return [parquet.column(i).path for i in range(len(parquet))]


def check_same_schema(expected: pa.Schema, found: pa.Schema, what: str) -> None:
    """Raise a SchemaMismatchError listing the columns that differ (metadata ignored)."""
    a, b = expected.remove_metadata(), found.remove_metadata()
    if a.equals(b):
        return
    ea, eb = {f.name: f.type for f in a}, {f.name: f.type for f in b}
    diffs = [f"{n}: {ea.get(n, 'missing')} -> {eb.get(n, 'missing')}"
             for n in sorted(set(ea) | set(eb)) if ea.get(n) != eb.get(n)]
    raise SchemaMismatchError(f"{what} has a schema that differs from the dataset's existing snapshots "
                              f"({'; '.join(diffs) or 'column order'})",
                              "publish under a new dataset name, or keep the columns and types unchanged")


def audio_columns(features: datasets.Features) -> list[str]:
    import datasets

    return [name for name, feat in features.items() if isinstance(feat, datasets.Audio)]


def media_leaves(features: datasets.Features) -> set[str]:
    """The Parquet leaves that hold encoded media (``audio.bytes``, ``audio.path``): written plain and
    without min/max statistics, so the catalog records no metrics for them either."""
    return {f"{c}.{leaf}" for c in audio_columns(features) for leaf in ("bytes", "path")}


@dataclass
class ShardStats:
    """What a shard holds; summed over shards for a snapshot's statistics."""

    rows: int = 0
    audio_seconds: float = 0.0
    bytes: int = 0
    class_counts: Counter = field(default_factory=Counter)
    histograms: dict[str, Counter] = field(default_factory=dict)  # column -> {"[lo, hi)": count}

    def add(self, other: "ShardStats") -> "ShardStats":
        hists = {k: self.histograms.get(k, Counter()) + other.histograms.get(k, Counter())
                 for k in set(self.histograms) | set(other.histograms)}
        return ShardStats(self.rows + other.rows, self.audio_seconds + other.audio_seconds,
                          self.bytes + other.bytes, self.class_counts + other.class_counts, hists)

    def to_dict(self) -> dict:
        out = {"rows": self.rows, "audio_hours": self.audio_seconds / 3600,
               "audio_seconds": round(self.audio_seconds, 3), "bytes": self.bytes,
               "class_counts": dict(sorted(self.class_counts.items()))}
        if self.histograms:
            out["histograms"] = {k: dict(bins_in_order(v))
                                 for k, v in sorted(self.histograms.items())}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ShardStats":
        return cls(int(d.get("rows", 0)), float(d.get("audio_seconds", 0.0)), int(d.get("bytes", 0)),
                   Counter(d.get("class_counts", {})),
                   {k: Counter(v) for k, v in d.get("histograms", {}).items()})


def _bin_start(label: str) -> float:
    return float(label.strip("[(").split(",")[0])


def histogram(values, edges: list[float]) -> Counter:
    """Counts per ``[lo, hi)`` bin (the last bin closed), and per ``(-inf, first)`` and ``(last, inf)``
    bin for values outside the edges, so the bins count every value but NaN."""
    values = np.asarray(values, dtype=float)
    counts, _ = np.histogram(values, bins=edges)
    out = Counter({f"[{lo:g}, {hi:g})": int(c) for lo, hi, c in zip(edges[:-1], edges[1:], counts) if c})
    below, above = int(np.sum(values < edges[0])), int(np.sum(values > edges[-1]))
    if below:
        out[f"(-inf, {edges[0]:g})"] = below
    if above:
        out[f"({edges[-1]:g}, inf)"] = above
    return out


def bins_in_order(counts: dict[str, int]) -> list[tuple[str, int]]:
    """A histogram's bins by their lower edge (a stored one may come back in text order)."""
    return sorted(counts.items(), key=lambda kv: _bin_start(kv[0]))


class ShardWriter:
    """Writes one shard: rows are buffered into row groups of about ``row_group_bytes``.

    Use as a context manager; on an exception nothing is left at the shard's name.
    ``duration_column`` (seconds) and ``class_column`` (a string or list of strings) feed
    the statistics when they exist in the features; ``histograms`` maps numeric columns to
    bin edges whose counts are kept too (for example RT60 or room volume).
    """

    def __init__(self, location: Location, features: datasets.Features, *,
                 row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
                 duration_column: str = "duration", class_column: str = "label",
                 histograms: dict[str, list[float]] | None = None):
        self.location = location
        self.schema = arrow_schema(features)
        self.row_group_bytes = row_group_bytes
        self.duration_column = duration_column if duration_column in features else None
        self.class_column = class_column if class_column in features else None
        self.histogram_edges = dict(histograms or {})
        for column in self.histogram_edges:
            if column not in features:
                raise ValueError(f"histogram column {column!r} is not in the features")
        self.stats = ShardStats()
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        media = media_leaves(features)
        leaves = _parquet_paths(self.schema)
        if location.is_s3:
            fd, self._tmp = tempfile.mkstemp(suffix=".parquet", prefix="roomtone-shard-")
            os.close(fd)
        else:
            location.parent.makedirs()
            self._tmp = os.path.join(location.parent.uri, f".{location.name}.tmp-{uuid.uuid4().hex[:8]}")
        # Media columns are already compressed (FLAC): store them plain, like datasets does, without
        # min/max statistics (a comparison of megabyte blobs that no query uses: 40 % of a write). Every
        # page carries a CRC, which is what checks the stored audio (FLAC's own MD5 is not computed,
        # see catalog.libflac).
        self._writer = pq.ParquetWriter(
            self._tmp, self.schema,
            compression={leaf: ("none" if leaf in media else "zstd") for leaf in leaves},
            use_dictionary=[leaf for leaf in leaves if leaf not in media],
            write_statistics=[leaf for leaf in leaves if leaf not in media],
            write_page_index=True, write_page_checksum=True)

    def write(self, rows: "list[dict] | pa.Table") -> None:
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=self.schema)
        if not table.schema.equals(self.schema, check_metadata=False):
            check_same_schema(self.schema, table.schema, f"rows written to {self.location.uri}")
            table = table.cast(self.schema)
        self._count(table)
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        if self._pending_bytes >= self.row_group_bytes:
            self._flush()

    def _count(self, table: pa.Table) -> None:
        self.stats.rows += table.num_rows
        if self.duration_column:
            self.stats.audio_seconds += float(pa.compute.sum(table[self.duration_column]).as_py() or 0.0)
        if self.class_column:
            values = table[self.class_column].to_pylist()
            for v in values:
                self.stats.class_counts.update(v if isinstance(v, list) else [v] if v is not None else [])
        for column, edges in self.histogram_edges.items():
            counts = histogram(table[column].drop_null().to_numpy(zero_copy_only=False), edges)
            self.stats.histograms[column] = self.stats.histograms.get(column, Counter()) + counts

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            rows_per_group = max(1, int(self.row_group_bytes * table.num_rows // max(1, table.nbytes)))
            self._writer.write_table(table, row_group_size=rows_per_group)
            self._pending, self._pending_bytes = [], 0

    def close(self) -> ShardStats:
        self._flush()
        self._writer.add_key_value_metadata({STATS_KEY: json.dumps(self.stats.to_dict()).encode()})
        self._writer.close()
        self.stats.bytes = os.path.getsize(self._tmp)
        self.location.upload_from(self._tmp)
        return self.stats

    def abort(self) -> None:
        self._writer.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_shard(location: Location, features: datasets.Features, rows: Iterable[dict], *,
                batch_rows: int = 64, **options) -> ShardStats:
    """Write an iterable of row dicts as one shard and return its statistics."""
    with ShardWriter(location, features, **options) as writer:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                writer.write(batch)
                batch = []
        if batch:
            writer.write(batch)
    return writer.stats


def read_shard_stats(location: Location) -> tuple[ShardStats, pa.Schema]:
    """A finished shard's statistics and schema, from its footer alone."""
    with location.filesystem.open_input_file(location.path) as f:
        meta = pq.read_metadata(f)
        schema = meta.schema.to_arrow_schema()
    kv = meta.metadata or {}
    stats = ShardStats.from_dict(json.loads(kv[STATS_KEY])) if STATS_KEY in kv else ShardStats(rows=meta.num_rows)
    stats.rows = meta.num_rows
    stats.bytes = location.size()
    return stats, schema
