"""``roomtone simulate``: acoustic simulation jobs."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_json, published, state
from pipelines.configs import load_config

app = typer.Typer(help="Simulate spatial room impulse responses and render labelled SELD scenes with them.",
                  no_args_is_help=True)


@app.command("rirs")
def rirs(
    config: Path = typer.Option(None, "--config", "-c",
                                help="YAML file with RirsConfig fields (the ones below, and those named above)."),
    name: str = typer.Option(None, help="Dataset name (default rirs)."),
    num_rooms: int = typer.Option(None, help="Rooms to sample (default 16)."),
    sources_per_room: int = typer.Option(None, help="Random sources per room (default 8)."),
    array: str = typer.Option(None, help="mic (tetrahedral, DCASE), foa (ACN/SN3D), circular or linear."),
    mode: str = typer.Option(None, help="hybrid (image sources + seeded diffuse tail, default) or ism."),
    device: str = typer.Option(None, help="auto (GPU actors when the cluster has GPUs), cpu or cuda."),
    seed: int = typer.Option(None, help="Every room derives its randomness from (seed, room id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the published snapshot as JSON."),
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
        console.print(f"{published(snap)} [bold]{snap.version_ref}[/] ({snap.ref}): {snap.stats['rows']} RIRs "
                      f"from {cfg.num_rooms} rooms; plot one with: roomtone plot rir {snap.name}")
        if cfg.placement == "grid" and snap.stats["rows"] < cfg.num_rooms * cfg.max_sources:
            console.print(f"{cfg.num_rooms * cfg.max_sources - snap.stats['rows']} of {cfg.num_rooms * cfg.max_sources}"
                          " grid points fell closer than wall_clearance to a wall and were skipped (shorter "
                          "grid_distances or larger rooms keep them)", highlight=False)


@app.command("scenes")
def scenes(
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with ScenesConfig fields."),
    events: str = typer.Option(None, help="Event library dataset (default events)."),
    rirs: str = typer.Option(None, help="RIR dataset whose rooms the scenes use (default rirs)."),
    format: str = typer.Option(None, "--format", help="foa (ACN/SN3D) or mic (tetrahedral); must match the RIRs."),
    num_scenes: int = typer.Option(None, help="Clips to render (default 8)."),
    clip_seconds: float = typer.Option(None, help="Clip length in seconds (default 60)."),
    polyphony: int = typer.Option(None, help="Most events at once, 1-3 (ov1/ov2/ov3)."),
    rir_source: str = typer.Option(None, help="dataset (the RIR set's stored grid), simulate (per planned "
                                              "position) or auto (default: dataset when the set holds a grid)."),
    name: str = typer.Option(None, help="Dataset name (default scenes)."),
    seed: int = typer.Option(None, help="Every scene derives its randomness from (seed, scene id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the published snapshot as JSON."),
):
    """Render labelled multichannel SELD scenes from an event library and an RIR dataset.

    Static and moving sources (arcs at 10-40 deg/s), up to 3 overlapping events, diffuse
    ambience at 6-30 dB SNR (or event_snr_db: each event's SNR against the ambience, in the
    --config YAML); per-frame DCASE labels, event metadata and a caption per clip. With an RIR
    set made with `placement: grid`, scenes use its stored RIRs (sources on the grid, nothing
    simulated per scene). Export for the DCASE baselines with `roomtone export dcase`.

    Example: roomtone simulate scenes --events events --rirs foa_rooms --format foa --clip-seconds 20
    """
    from pipelines.stages.scenes import ScenesConfig, run_scenes

    cfg = load_config(ScenesConfig, config, events=events, rirs=rirs, format=format, num_scenes=num_scenes,
                      clip_seconds=clip_seconds, polyphony=polyphony, rir_source=rir_source, name=name, seed=seed)
    snap = run_scenes(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(snap.to_dict())
    else:
        console.print(f"{published(snap)} [bold]{snap.version_ref}[/] ({snap.ref}): {snap.stats['rows']} scenes, "
                      f"{snap.stats['audio_hours']:.3f} h; export with: roomtone export dcase {snap.name} --out DIR")
