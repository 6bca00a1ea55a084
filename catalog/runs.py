"""A dataset run: the staging folder a job writes shards into before the catalog publishes it.

The folder is keyed by the run's config hash, so a re-run of the same config finds the
shards that already finished and skips them; nothing in it is visible through the catalog
until :meth:`catalog.Catalog.publish` registers the finished files in one commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from catalog.shards import SHARD_NAME, ShardStats, shard_relpath, read_shard_stats
from catalog.storage import Location, map_files

if TYPE_CHECKING:
    import datasets


def config_hash(config: dict, inputs: list[str], files: str | None = None) -> str:
    """Stable hash of what determines a run's output: its config, its pinned inputs and, for inputs
    outside the catalog (a folder of files), a digest of their state."""
    blob = json.dumps({"config": config, "inputs": sorted(inputs), **({"files": files} if files else {})},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def files_digest(paths: Iterable[Path]) -> str:
    """A digest of local files' names, sizes and modification times: what changes when a file is
    added, removed, replaced or edited, without reading a whole library's bytes."""
    state = sorted((str(p), st.st_size, st.st_mtime_ns) for p in paths for st in [p.stat()])
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()


@dataclass
class DatasetRun:
    """One run of a job writing one dataset version. Create it with ``Catalog.create_run``."""

    name: str
    location: Location
    features: datasets.Features
    config: dict
    config_hash: str
    inputs: list[str] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    mode: str = "overwrite"
    info: dict = field(default_factory=dict)  # derived facts consumers need, e.g. a class map
    ray_job_id: str | None = None
    mlflow_run_id: str | None = None

    def shard(self, split: str, index: int, count: int) -> Location:
        return self.location.join(shard_relpath(split, index, count))

    def finished_shards(self) -> dict[str, Location]:
        """Shards already written (a resumed run skips them), keyed by relative path."""
        found = {}
        for loc in self.location.join("data").list_files(".parquet"):
            rel = loc.relative_to(self.location)
            if SHARD_NAME.match(rel):
                found[rel] = loc
        return found

    def remove_partial_files(self) -> None:
        """Remove the hidden temp files of shard writers that were killed (local folders only: on S3 a
        writer stages its shard in the worker's temp folder)."""
        if not self.location.is_s3:
            for path in Path(self.location.join("data").uri).rglob(".*.tmp-*"):
                path.unlink(missing_ok=True)

    def shard_stats(self, shards: dict[str, Location] | None = None) -> dict[str, tuple[ShardStats, Any]]:
        """Statistics and schema of these finished shards (default: all), from their footers."""
        shards = self.finished_shards() if shards is None else shards
        return dict(zip(shards, map_files(read_shard_stats, list(shards.values()))))
