"""Storage layout and metadata: where datasets live, how they are written, and what they contain."""

from catalog.audio import audio_cell, decode_audio, encode_flac
from catalog.catalog import Catalog, DataFileInfo, Snapshot
from catalog.config import CatalogConfig
from catalog.errors import NotFoundError, RoomtoneError, SchemaMismatchError, StorageError
from catalog.names import DatasetRef, validate_name
from catalog.runs import DatasetRun
from catalog.shards import ShardStats, ShardWriter, plan_num_shards, read_shard_stats, shard_relpath, write_shard
from catalog.storage import Location

__all__ = [
    "Catalog", "CatalogConfig", "DataFileInfo", "DatasetRef", "DatasetRun", "Location", "NotFoundError",
    "RoomtoneError", "SchemaMismatchError", "ShardStats", "ShardWriter", "Snapshot", "StorageError",
    "audio_cell", "decode_audio", "encode_flac", "plan_num_shards", "read_shard_stats", "shard_relpath",
    "validate_name", "write_shard",
]
