"""The end-to-end demo on the embedded defaults; each stage of roomtone extends it."""

from __future__ import annotations

from pathlib import Path

from catalog import Catalog
from catalog.cluster import dashboard_url
from pipelines.cli.common import console, print_table
from pipelines.plots import plot_rir
from pipelines.stages.rirs import RirsConfig, run_rirs
from pipelines.stages.tones import TonesConfig, run_tones


def demo_configs(quick: bool) -> tuple[TonesConfig, RirsConfig]:
    """Small versions of the defaults: seconds on 2 cores, the same code as a cluster run."""
    tones = TonesConfig(num_clips=8 if quick else 48, clip_seconds=1.0 if quick else 2.0,
                        max_shard_bytes=200_000 if quick else 1_000_000)
    rirs = RirsConfig(num_rooms=2 if quick else 8, sources_per_room=2 if quick else 4,
                      room_x=(4.0, 8.0), room_y=(4.0, 8.0), room_z=(2.5, 4.0), rt60=(0.2, 0.4 if quick else 0.8),
                      max_shard_bytes=2_000_000)
    return tones, rirs


def run_demo(catalog: Catalog, *, quick: bool = False) -> None:
    console.rule("[bold]roomtone demo")
    console.print(f"data and catalog under {catalog.config.root}")
    tones_cfg, rirs_cfg = demo_configs(quick)
    tones = run_tones(tones_cfg, catalog)
    if dashboard_url():
        console.print(f"Ray dashboard (while this process runs): {dashboard_url()}")
    console.print(f"published [bold]{tones.name}@v{tones.version}[/]: {tones.stats['rows']} generated clips")
    rirs = run_rirs(rirs_cfg, catalog)
    console.print(f"published [bold]{rirs.name}@v{rirs.version}[/]: {rirs.stats['rows']} spatial RIRs "
                  f"({rirs_cfg.array} array) from {rirs_cfg.num_rooms} rooms")
    first = catalog.arrow_dataset(rirs.ref).head(1).to_pylist()[0]
    plot = plot_rir(first, Path(catalog.config.root) / "plots" / "rir.png") \
        if not catalog.config.root_location.is_s3 else None

    console.rule("catalog")
    print_table("datasets", ["name", "version", "rows", "hours", "shards"],
                [[s.name, f"v{s.version}", s.stats.get("rows"), f"{s.stats.get('audio_hours', 0):.4f}",
                  s.stats.get("shards")] for s in catalog.list()])
    result = catalog.query(f"SELECT label, count(*) AS clips, round(sum(duration), 1) AS seconds "
                           f"FROM {tones.name} GROUP BY label ORDER BY label")
    print_table("SQL: clips per label", result.column_names, [list(r.values()) for r in result.to_pylist()])
    result = catalog.query(f"SELECT room_id, round(any_value(rt60_target)::DOUBLE, 2) AS rt60_target, "
                           f"round(avg(rt60), 2) AS t30_measured, round(avg(drr_db), 1) AS drr_db, count(*) AS rirs "
                           f"FROM {rirs.name} GROUP BY room_id ORDER BY room_id")
    print_table("SQL: rooms", result.column_names, [list(r.values()) for r in result.to_pylist()])
    console.rule("next")
    if plot:
        console.print(f"RIR plot: {plot}")
    console.print(f"roomtone catalog show {rirs.name}\n"
                  f"roomtone catalog query \"SELECT id, azimuth, elevation, distance FROM {rirs.name} LIMIT 5\"\n"
                  f"roomtone plot rir {rirs.name} --out rir.png\n"
                  f"roomtone catalog card {tones.name}\n"
                  f"python -c \"from catalog import Catalog; print(Catalog().to_hf('{tones.name}'))\"",
                  highlight=False)
