"""``roomtone simulate``: acoustic simulation jobs."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, print_json, state
from pipelines.configs import load_config

app = typer.Typer(help="Simulate spatial room impulse responses (and, later, scenes).", no_args_is_help=True)


@app.command("rirs")
def rirs(
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with RirsConfig fields (see below)."),
    name: str = typer.Option(None, help="Dataset name (default rirs)."),
    num_rooms: int = typer.Option(None, help="Rooms to sample (default 16)."),
    sources_per_room: int = typer.Option(None, help="Random sources per room (default 8)."),
    array: str = typer.Option(None, help="mic (tetrahedral, DCASE), foa (ACN/SN3D), circular or linear."),
    mode: str = typer.Option(None, help="hybrid (image sources + seeded diffuse tail, default) or ism."),
    device: str = typer.Option(None, help="auto (GPU actors when the cluster has GPUs), cpu or cuda."),
    seed: int = typer.Option(None, help="Every room derives its randomness from (seed, room id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = typer.Option(False, "--json", help="Print the published snapshot as JSON."),
):
    """Sample rooms and arrays, compute SRIRs on Ray, publish one catalog snapshot.

    Room ranges default to the PSELDNets generator: 5-25 x 5-25 x 3-10 m, RT60 0.2-2.0 s,
    array centre at 40-60 % of each dimension, sources 1 m from the walls. Other fields
    (room_x, rt60, placement: grid, grid_distances, sample_rate, rir_seconds, ...) go in
    the --config YAML.

    Example: roomtone simulate rirs --num-rooms 100 --array foa --name foa_rooms
    """
    from pipelines.stages.rirs import RirsConfig, run_rirs

    cfg = load_config(RirsConfig, config, name=name, num_rooms=num_rooms, sources_per_room=sources_per_room,
                      array=array, mode=mode, device=device, seed=seed)
    snap = run_rirs(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(snap.to_dict())
    else:
        console.print(f"published [bold]{snap.name}@v{snap.version}[/] ({snap.ref}): {snap.stats['rows']} RIRs "
                      f"from {cfg.num_rooms} rooms; plot one with: roomtone plot rir {snap.name}")
