"""A one-page summary of a dataset version: a PNG of its distributions and an HTML page around it.

Counts come from the snapshot's statistics (exact, over every row: classes or QA families,
footer histograms such as RT60 and duration); directions and distances come from a sample
of metadata rows (never the audio). Panels appear only for columns the dataset has.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from catalog import Catalog  # noqa: E402
from catalog.shards import bins_in_order  # noqa: E402

METADATA = ("duration", "rt60", "azimuth", "elevation", "distance", "events", "family")


def _sample(catalog: Catalog, ref: str, rows: int) -> dict[str, list]:
    dataset = catalog.arrow_dataset(ref)
    columns = [c for c in METADATA if c in dataset.schema.names]
    return dataset.head(rows, columns=columns).to_pydict() if columns else {}


def _directions(sample: dict[str, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azimuth, elevation (deg) and distance (m) of every source in the sample."""
    if "events" in sample:
        events = [e for clip in sample["events"] for e in clip or []]
        return tuple(np.array([e[k] for e in events], dtype=float) for k in ("azimuth", "elevation", "distance"))
    if "azimuth" in sample:
        return tuple(np.array(sample[k], dtype=float) for k in ("azimuth", "elevation", "distance"))
    return np.array([]), np.array([]), np.array([])


def _bars(ax, counts: dict, title: str, xlabel: str) -> None:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
    ax.barh([str(k) for k, _ in items][::-1], [v for _, v in items][::-1], color="tab:blue")
    ax.set(title=title, xlabel=xlabel)
    ax.tick_params(axis="y", labelsize=7)


def _histogram(ax, bins: dict[str, int], title: str) -> None:
    labels, counts = zip(*bins_in_order(bins)) if bins else ((), ())
    ax.bar(range(len(counts)), counts, color="tab:green")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set(title=title, ylabel="rows")


def write_report(catalog: Catalog, ref: str, out_dir: str | Path, *, sample_rows: int = 2000) -> dict[str, Path]:
    """Write ``<name>-v<version>.png`` and ``.html`` under ``out_dir``; return their paths."""
    snap = catalog.show(ref)
    stats = snap.stats
    sample = _sample(catalog, snap.ref, sample_rows)
    az, el, dist = _directions(sample)
    panels = []
    if stats.get("class_counts"):
        kind = "QA tuples per family" if "family" in sample else "rows per class"
        panels.append(lambda ax: _bars(ax, stats["class_counts"], kind, "rows"))
    for column, bins in sorted(stats.get("histograms", {}).items()):
        panels.append(lambda ax, c=column, b=bins: _histogram(ax, b, f"{c} (all rows)"))
    if az.size:
        def doa(ax):
            ax.scatter(az, el, s=6, alpha=0.5)
            ax.set(title=f"source directions ({az.size} in sample)", xlabel="azimuth (deg, CCW from +x)",
                   ylabel="elevation (deg)", xlim=(-180, 180), ylim=(-90, 90))
        panels.append(doa)
        panels.append(lambda ax: (ax.hist(dist, bins=30, color="tab:orange"),
                                  ax.set(title="source distance (sample)", xlabel="m", ylabel="sources")))
    if "duration" in sample and "duration" not in stats.get("histograms", {}):
        panels.append(lambda ax: (ax.hist(sample["duration"], bins=30, color="tab:purple"),
                                  ax.set(title="durations (sample)", xlabel="s", ylabel="rows")))
    rt60 = [v for v in sample.get("rt60", []) if v is not None]  # a mixture of two rooms has none
    if rt60 and "rt60" not in stats.get("histograms", {}):
        panels.append(lambda ax: (ax.hist(rt60, bins=30, color="tab:red"),
                                  ax.set(title="RT60 (sample)", xlabel="s", ylabel="rows")))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{snap.name}-v{snap.version}"
    cols = min(3, max(1, len(panels)))
    fig, axes = plt.subplots(max(1, -(-len(panels) // cols)), cols, figsize=(5.5 * cols, 4.2 * -(-len(panels) // cols)
                                                                        if panels else 3), squeeze=False,
                             constrained_layout=True)
    hours = stats.get("audio_hours", 0)  # none for RIRs
    fig.suptitle(f"{snap.version_ref}: {stats.get('rows', 0)} rows, "
                 + (f"{hours:.3f} h of audio, " if hours else "") + f"{stats.get('bytes', 0) / 1e6:.1f} MB")
    for ax, panel in zip(axes.flat, panels):
        panel(ax)
        if ax.get_ylabel() in ("rows", "sources"):  # counts: whole-number ticks
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    png = stem.with_suffix(".png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    facts = {"snapshot": snap.ref, "version": snap.version, "created": snap.to_dict()["created"],
             "rows": stats.get("rows"), "audio_hours": stats.get("audio_hours"), "bytes": stats.get("bytes"),
             "inputs": ", ".join(snap.inputs) or "-", "config hash": snap.config_hash, "run": snap.run_id}
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    page = stem.with_suffix(".html")
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(snap.ref)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
        "img{max-width:100%}pre{background:#f4f4f4;padding:1em}</style></head><body>"
        f"<h1>{html.escape(snap.name)} v{snap.version}</h1><table>{table}</table>"
        f"<img alt='distributions' src='data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}'>"
        f"<h2>config</h2><pre>{html.escape(json.dumps(snap.config, indent=2, sort_keys=True))}</pre>"
        "</body></html>")
    return {"png": png, "html": page}
