"""``roomtone plot``: PNG pictures of dataset rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import typer

from catalog.errors import NotFoundError, RoomtoneError
from pipelines.cli.common import console, state

if TYPE_CHECKING:
    from catalog.catalog import Snapshot

app = typer.Typer(help="Draw dataset rows to PNG.", no_args_is_help=True)


def _row(ref: str, row_id: str | None, column: str, made_by: str, out: Path) -> tuple[dict, Snapshot]:
    """One row of `ref` (the first, or the one with id `row_id`) and its snapshot, after checking
    that `out` names a PNG and that the dataset has `column`."""
    if out.suffix.lower() != ".png" or out.is_dir():
        raise RoomtoneError(f"--out {out} is not a .png file name",
                            f"give a file name ending in .png, e.g. {column}.png")
    catalog = state.catalog()
    dataset = catalog.arrow_dataset(ref)
    if column not in dataset.schema.names:
        raise NotFoundError(f"{ref} has no {column!r} column", f"give a dataset made by `{made_by}`")
    table = dataset.head(1) if row_id is None else dataset.to_table(filter=pc.field("id") == row_id)
    if table.num_rows == 0:
        raise NotFoundError(f"row {row_id!r} is not in {ref}", f"list ids with: roomtone catalog query "
                                                               f"\"SELECT id FROM {ref.split('@')[0]} LIMIT 10\"")
    return table.to_pylist()[0], catalog.show(ref)


ROW_ID = typer.Option(None, "--id", help="Row id (default: the first row).")


@app.command("rir")
def rir(
    ref: str = typer.Argument(..., help="RIR dataset: NAME, NAME@vN or NAME@SNAPSHOT_ID"),
    row_id: str = ROW_ID,
    out: Path = typer.Option(Path("rir.png"), "--out", "-o", help="PNG file to write."),
):
    """Draw one RIR: its channels, the first 50 ms, its energy decay curve and the room geometry."""
    from pipelines.plots import plot_rir

    row, _ = _row(ref, row_id, "rir", "roomtone simulate rirs", out)
    console.print(f"wrote {plot_rir(row, out)}")


@app.command("scene")
def scene(
    ref: str = typer.Argument(..., help="Scenes dataset: NAME, NAME@vN or NAME@SNAPSHOT_ID"),
    row_id: str = ROW_ID,
    out: Path = typer.Option(Path("scene.png"), "--out", "-o", help="PNG file to write."),
):
    """Draw one SELD scene: the spectrogram of its first channel over its frame labels (active
    classes per track, azimuth, elevation and distance), on one time axis.

    Example: roomtone plot scene scenes --id scene-0000003 --out scene.png
    """
    from pipelines.plots import plot_scene

    row, snap = _row(ref, row_id, "labels", "roomtone simulate scenes", out)
    if not snap.info.get("classes"):
        raise NotFoundError(f"{ref} records no class list (info.classes) to name its labels' class_index",
                            "plot a dataset made by `roomtone simulate scenes` or `roomtone augment`")
    console.print(f"wrote {plot_scene(row, snap.info['classes'], out, snap.info.get('label_hop_s', 0.1))}")


def report(
    ref: str = typer.Argument(..., help="Dataset: NAME, NAME@vN or NAME@SNAPSHOT_ID"),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Folder for NAME-vN.png and NAME-vN.html."),
    sample_rows: int = typer.Option(2000, "--sample-rows", min=1, help="Rows read for directions and distances."),
):
    """Summarise a dataset version in one page: class or QA-family counts, histograms from the
    catalog statistics (RT60, durations, ...), source directions and distances from a sample.

    Example: roomtone report scenes@v1 --out reports/
    """
    from pipelines.report import write_report

    paths = write_report(state.catalog(), ref, out, sample_rows=sample_rows)
    console.print(f"wrote {paths['png']} and {paths['html']}")
