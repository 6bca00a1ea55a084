"""``roomtone generate``: datasets made from nothing (for demos and tests)."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, print_json, state
from pipelines.configs import load_config

app = typer.Typer(help="Generate synthetic datasets (no inputs, no downloads).", no_args_is_help=True)


@app.command("tones")
def tones(
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with TonesConfig fields."),
    name: str = typer.Option(None, help="Dataset name in the catalog (default demo_tones)."),
    num_clips: int = typer.Option(None, help="Number of clips (default 48)."),
    clip_seconds: float = typer.Option(None, help="Clip length in seconds (default 2.0)."),
    channels: int = typer.Option(None, help="Channels per clip (default 4)."),
    seed: int = typer.Option(None, help="Seed; every clip derives its randomness from (seed, clip id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = typer.Option(False, "--json", help="Print the published snapshot as JSON."),
):
    """Generate labelled multichannel test clips on Ray and publish them as one snapshot.

    Example: roomtone generate tones --num-clips 200 --name tones_200
    """
    from pipelines.stages.tones import TonesConfig, run_tones

    cfg = load_config(TonesConfig, config, name=name, num_clips=num_clips, clip_seconds=clip_seconds,
                      channels=channels, seed=seed)
    snap = run_tones(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(snap.to_dict())
    else:
        console.print(f"published [bold]{snap.name}@v{snap.version}[/] ({snap.ref}): "
                      f"{snap.stats['rows']} rows, {snap.stats['audio_hours']:.4f} h of audio")
