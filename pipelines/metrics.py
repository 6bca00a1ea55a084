"""Ray custom metrics of every stage, tagged by pipeline, stage and run.

They reach Prometheus through the Ray metrics endpoint of each node (``ray start
--metrics-export-port``) with Ray's ``ray_`` prefix, e.g. ``ray_roomtone_items_total``;
``infra/grafana/roomtone-dashboard.json`` charts them. Shard tasks record items, audio
seconds, bytes, shards and latency themselves; stage code adds counts only it knows
(RIRs computed, inputs quarantined) with :func:`add`, under the tags of the shard it runs.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

TAG_KEYS = ("pipeline", "stage", "run")
COUNTERS = {
    "items": "Rows written to dataset shards",
    "audio_seconds": "Seconds of audio written to dataset shards",
    "rirs": "Room impulse responses computed",
    "shards": "Dataset shards written",
    "bytes_written": "Bytes of Parquet written",
    "quarantined": "Inputs skipped and recorded in a quarantine dataset",
}
LATENCY_BOUNDS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800]
PIPELINE_ENV = "ROOMTONE_PIPELINE"

log = logging.getLogger("roomtone")
_tags: dict[str, str] = {}


def tags_for(stage: str, run_id: str) -> dict[str, str]:
    """The tags of one stage run; the pipeline name comes from the spec runner (or ``adhoc``)."""
    return {"pipeline": os.environ.get(PIPELINE_ENV, "adhoc"), "stage": stage, "run": run_id}


@lru_cache(maxsize=None)
def _counter(name: str):
    from ray.util.metrics import Counter

    return Counter(f"roomtone_{name}", description=COUNTERS[name], tag_keys=TAG_KEYS)


@lru_cache(maxsize=None)
def _latency():
    from ray.util.metrics import Histogram

    return Histogram("roomtone_stage_seconds", description="Seconds to produce one shard",
                     boundaries=LATENCY_BOUNDS, tag_keys=TAG_KEYS)


def add(name: str, value: float, tags: dict[str, str] | None = None) -> None:
    """Add to a counter under ``tags`` (default: the shard being written in this process)."""
    tags = tags or _tags
    if value and tags:
        _counter(name).inc(float(value), tags=tags)


def observe_latency(seconds: float, tags: dict[str, str]) -> None:
    _latency().observe(seconds, tags=tags)


@contextmanager
def shard_scope(tags: dict[str, str]) -> Iterator[None]:
    """Make ``tags`` the default of :func:`add` while one shard is written (one task at a time)."""
    global _tags
    previous, _tags = _tags, dict(tags)
    try:
        yield
    finally:
        _tags = previous
