"""Storage layout and metadata: where datasets live, how they are written, and what they contain.

Names resolve on first use (PEP 562), so `from catalog import Location` in a Ray worker does
not pay for the catalog's Iceberg and `datasets` imports (1.5 s per process). Type annotations
import from the defining module (`from catalog.catalog import Catalog`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "catalog.audio": ("audio_cell", "decode_audio", "encode_flac"),
    "catalog.catalog": ("Catalog", "DataFileInfo", "Snapshot"),
    "catalog.config": ("CatalogConfig",),
    "catalog.diff": ("VersionDiff",),
    "catalog.errors": ("NotFoundError", "RoomtoneError", "SchemaMismatchError", "StorageError"),
    "catalog.names": ("DatasetRef", "validate_name"),
    "catalog.runs": ("DatasetRun",),
    "catalog.shards": ("ShardStats", "ShardWriter", "plan_num_shards", "read_shard_stats", "shard_relpath",
                       "write_shard"),
    "catalog.storage": ("Location",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'catalog' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value

