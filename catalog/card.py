"""Dataset cards: the README.md whose YAML makes ``datasets.load_dataset(folder)`` work."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml

from catalog.shards import split_of

if TYPE_CHECKING:
    import datasets


def render_card(name: str, features: datasets.Features, split_rows: dict[str, int],
                split_bytes: dict[str, int], *,
                snapshot: str | None = None, stats: dict | None = None, lineage: dict | None = None,
                data_files: dict[str, list[str]] | None = None) -> str:
    """Card YAML plus a short human part. ``data_files`` defaults to the folder layout
    ``data/<split>/<split>-*``; pass explicit file lists when a snapshot spans folders."""
    files = data_files or {s: [f"data/{s}/{s}-*"] for s in sorted(split_rows)}
    header = {
        "pretty_name": name,
        "tags": ["roomtone", "audio"],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": int(split_bytes.get(s, 0)), "num_examples": int(n)}
                       for s, n in sorted(split_rows.items())],
        },
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": p if len(p) > 1 else p[0]} for s, p in sorted(files.items())]}],
    }
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "", f"# {name}", "",
             "Written by roomtone. Load it with `datasets.load_dataset(<this folder>)`; the `audio` "
             "columns hold FLAC bytes (decode them with soundfile when torchcodec is unavailable).", ""]
    if snapshot:
        lines += [f"Catalog snapshot: `{name}@{snapshot}`", ""]
    if stats:
        lines += ["## Statistics", "", "```json", json.dumps(stats, indent=2, sort_keys=True), "```", ""]
    if lineage:
        lines += ["## Lineage", "", "```json", json.dumps(lineage, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def per_split(files: dict[str, int]) -> dict[str, int]:
    """Sum a per-shard count (rows, bytes) per split, from ``{relative shard path: count}``."""
    out: dict[str, int] = {}
    for path, n in files.items():
        out[split_of(path)] = out.get(split_of(path), 0) + n
    return out
