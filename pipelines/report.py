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


def _directions(sample: dict[str, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Azimuth, elevation (deg) and distance (m) of every source in the sample at its onset, and the
    azimuths each moving one passes through (its arc at the event's elevation)."""
    if "events" in sample:  # a mixed event library's events have no directions
        events = [e for clip in sample["events"] for e in clip or [] if e.get("azimuth") is not None]
        arcs = [np.column_stack([e["azimuth"] + e["speed"] * np.linspace(0.0, e["offset"] - e["onset"], 50),
                                 np.full(50, e["elevation"])]) for e in events if e.get("speed")]
        return (*(np.array([e[k] for e in events], dtype=float) for k in ("azimuth", "elevation", "distance")), arcs)
    if "azimuth" in sample:
        return (*(np.array(sample[k], dtype=float) for k in ("azimuth", "elevation", "distance")), [])
    return np.array([]), np.array([]), np.array([]), []


def _draw_arc(ax, arc: np.ndarray) -> None:
    """A moving source's path, wrapped to [-180, 180) and broken where it wraps."""
    az = (arc[:, 0] + 180.0) % 360.0 - 180.0
    jumps = np.flatnonzero(np.abs(np.diff(az)) > 180.0) + 1
    for part_az, part_el in zip(np.split(az, jumps), np.split(arc[:, 1], jumps)):
        ax.plot(part_az, part_el, lw=0.6, alpha=0.4, color="tab:gray")


def _bars(ax, counts: dict, title: str, xlabel: str) -> None:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
    ax.barh([str(k) for k, _ in items][::-1], [v for _, v in items][::-1], color="tab:blue")
    ax.set(title=title, xlabel=xlabel)
    ax.tick_params(axis="y", labelsize=7)


def _histogram(ax, bins: dict[str, int], title: str) -> None:
    """Stored bins as equal bars, one per bin: the title says so when the bins' widths differ."""
    filled = []
    for label, count in bins_in_order(bins):  # the catalog keeps no empty bins: show the gaps as zeros
        if filled and (gap := (_edges(filled[-1][0])[1], _edges(label)[0]))[0] < gap[1]:
            step = float(np.diff(_edges(filled[-1][0]))[0])  # in bins as wide as the one before, where they fit
            n = round((gap[1] - gap[0]) / step) if np.isfinite(step) and step > 0 else 1
            cuts = np.linspace(*gap, n + 1) if n >= 1 and np.isclose(n * step, gap[1] - gap[0]) else np.array(gap)
            filled += [(f"[{a:g}, {b:g})", 0) for a, b in zip(cuts[:-1], cuts[1:])]
        filled.append((label, count))
    labels, counts = zip(*filled) if filled else ((), ())
    ax.bar(range(len(counts)), counts, color="tab:green")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    widths = {round(b - a, 9) for a, b in map(_edges, labels) if np.isfinite(b - a)}
    ax.set(title=title + ("\n(bins of unequal width: compare counts, not areas)" if len(widths) > 1 else ""),
           ylabel="rows")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _edges(label: str) -> tuple[float, float]:
    """A stored bin's edges: '[0.25, 0.5)' -> (0.25, 0.5), '(7000, inf)' -> (7000, inf)."""
    lo, hi = (float(x) for x in label.strip("[()]").split(","))
    return lo, hi


def write_report(catalog: Catalog, ref: str, out_dir: str | Path, *, sample_rows: int = 2000) -> dict[str, Path]:
    """Write ``<name>-v<version>.png`` and ``.html`` under ``out_dir``; return their paths."""
    snap = catalog.show(ref)
    stats = snap.stats
    sample = _sample(catalog, snap.ref, sample_rows)
    az, el, dist, arcs = _directions(sample)
    panels = []
    if stats.get("class_counts"):
        kind = "QA tuples per family" if "family" in sample else "rows per class"
        panels.append(lambda ax: _bars(ax, stats["class_counts"], kind, "rows"))
    for column, bins in sorted(stats.get("histograms", {}).items()):
        panels.append(lambda ax, c=column, b=bins: _histogram(ax, b, f"{c} (all rows)"))
    if az.size:
        def doa(ax):
            for arc in arcs:
                _draw_arc(ax, arc)
            ax.scatter(az, el, s=6, alpha=0.5)
            ax.set(title=f"source directions at onset ({az.size} in sample)"
                         + (f";\n{len(arcs)} moving, their arcs in grey" if arcs else ""),
                   xlabel="azimuth (deg, CCW from +x)", ylabel="elevation (deg)", xlim=(-180, 180), ylim=(-90, 90))
        panels.append(doa)
        panels.append(lambda ax: (ax.hist(dist, bins=30, color="tab:orange"),
                                  ax.set(title="source distance (sample)", xlabel="m", ylabel="sources")))
    if "duration" in sample and "duration" not in stats.get("histograms", {}):
        panels.append(lambda ax: (ax.hist(sample["duration"], bins=30, color="tab:purple"),
                                  ax.set(title="durations (sample)", xlabel="s", ylabel="rows")))
    rt60 = [v for v in sample.get("rt60", []) if v is not None]  # a mixture of two rooms has none
    if rt60 and "rt60" not in stats.get("histograms", {}):
        roomless = len(sample["rt60"]) - len(rt60)
        panels.append(lambda ax: (ax.hist(rt60, bins=30, color="tab:red"),
                                  ax.set(title="RT60 (sample)" + (f"; {roomless} rows of two rooms left out"
                                                                  if roomless else ""), xlabel="s", ylabel="rows")))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{snap.name}-v{snap.version}"
    cols = min(3, max(1, len(panels)))
    fig, axes = plt.subplots(max(1, -(-len(panels) // cols)), cols, figsize=(5.5 * cols, 4.2 * -(-len(panels) // cols)
                                                                        if panels else 3), squeeze=False,
                             constrained_layout=True)
    hours = stats.get("audio_hours", 0)  # none for RIRs
    fig.suptitle(f"{snap.version_ref}: {stats.get('rows', 0)} rows, "
                 + (f"{hours:.3f} h of audio, " if hours else "") + _size(stats.get("bytes", 0)))
    for ax, panel in zip(axes.flat, panels):
        panel(ax)
        if ax.get_ylabel() in ("rows", "sources"):  # counts: whole-number ticks
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_xlabel() == "rows":  # the class counts' bars lie on their side
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
