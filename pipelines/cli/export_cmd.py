"""``roomtone export``: datasets in the layouts other tools read."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_json, state

app = typer.Typer(help="Export datasets for other tools. QA tuples (LTU JSON, SpatialSoundQA JSON): "
                       "`roomtone qa export`.", no_args_is_help=True)


@app.command("dcase")
def dcase(
    ref: str = typer.Argument(..., help="Scenes dataset: NAME, NAME@vN or NAME@SNAPSHOT_ID"),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (foa_dev/ or mic_dev/, metadata_dev/)."),
    distance: bool = flag(default=True, help="DCASE2024 CSVs with distance in cm; --no-distance for 2022/2023."),
    json_out: bool = flag("--json", help="Print the result as JSON."),
):
    """Write WAV folders and per-clip label CSVs exactly as the DCASE SELD baselines read them.

    Exporting into a folder an earlier export wrote replaces that export's clips and labels. Files
    it did not write (real recordings in the same layout, say) are kept and counted: the baselines
    read every file in those folders.

    Example: roomtone export dcase scenes --out dcase_data
    """
    from pipelines.export_dcase import export_dcase

    summary = export_dcase(state.catalog(), ref, out, with_distance=distance, show_progress=not json_out)
    if json_out:
        return print_json(summary)
    stale = summary["removed_stale"]
    splits = ", ".join(f"{split} {n} as fold{summary['folds'][split]}_*" for split, n in summary["clips"].items())
    console.print(f"wrote {sum(summary['clips'].values())} clips ({splits}) and a map of {summary['classes']} "
                  f"classes to {summary['out']}" + (f"; removed {stale} files an earlier export had left" if stale
                                                    else ""), highlight=False)
    if foreign := summary["kept_foreign"]:
        console.print(f"kept {len(foreign)} clips or labels no export wrote (e.g. {foreign[0]}); the baselines "
                      "will read them too", highlight=False)
