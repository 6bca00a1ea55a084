"""The end-to-end demo on the embedded defaults; each stage of roomtone extends it.

Today: a synthetic event library -> spatial RIRs of a few rooms (FOA) -> labelled SELD
scenes -> DCASE export, all published to the catalog with lineage, plus a plot and SQL.
"""

from __future__ import annotations

from pathlib import Path

from catalog import Catalog
from catalog.cluster import dashboard_url
from pipelines.cli.common import console, print_table
from pipelines.export_dcase import export_dcase
from pipelines.plots import plot_rir
from pipelines.stages.rirs import RirsConfig, run_rirs
from pipelines.stages.scenes import ScenesConfig, run_scenes
from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events


def demo_configs(quick: bool) -> tuple[SyntheticEventsConfig, RirsConfig, ScenesConfig]:
    """Small versions of the defaults: the same code as a cluster run, sized for 2 cores."""
    events = SyntheticEventsConfig(name="events", per_class=2 if quick else 6, duration=(0.3, 1.5),
                                   max_shard_bytes=200_000, test_fraction=0.25)
    rirs = RirsConfig(name="rirs", array="foa", num_rooms=2 if quick else 6, sources_per_room=1 if quick else 4,
                      room_x=(4.0, 8.0), room_y=(4.0, 8.0), room_z=(2.5, 4.0), rt60=(0.2, 0.4 if quick else 0.8),
                      test_fraction=0.5 if quick else 0.34, max_shard_bytes=2_000_000)
    scenes = ScenesConfig(name="scenes", events="events", rirs="rirs", format="foa",
                          num_scenes=2 if quick else 8, clip_seconds=5.0 if quick else 20.0,
                          rir_seconds=0.3 if quick else 0.5, test_fraction=0.5 if quick else 0.25,
                          max_shard_bytes=1_000_000)
    return events, rirs, scenes


def run_demo(catalog: Catalog, *, quick: bool = False) -> None:
    console.rule("[bold]roomtone demo")
    console.print(f"data and catalog under {catalog.config.root}")
    events_cfg, rirs_cfg, scenes_cfg = demo_configs(quick)
    events = run_synthetic_events(events_cfg, catalog)
    if dashboard_url():
        console.print(f"Ray dashboard (while this process runs): {dashboard_url()}")
    console.print(f"published [bold]{events.name}@v{events.version}[/]: {events.stats['rows']} synthetic events "
                  f"in {len(events.stats['class_counts'])} classes")
    rirs = run_rirs(rirs_cfg, catalog)
    console.print(f"published [bold]{rirs.name}@v{rirs.version}[/]: {rirs.stats['rows']} spatial RIRs "
                  f"({rirs_cfg.array} array) from {rirs_cfg.num_rooms} rooms")
    scenes = run_scenes(scenes_cfg, catalog)
    console.print(f"published [bold]{scenes.name}@v{scenes.version}[/]: {scenes.stats['rows']} labelled "
                  f"{scenes_cfg.format.upper()} scenes, {scenes.stats['audio_seconds']:.0f} s of audio")
    root = Path(catalog.config.root) if not catalog.config.root_location.is_s3 else Path("roomtone-demo")
    plot = plot_rir(catalog.arrow_dataset(rirs.ref).head(1).to_pylist()[0], root / "plots" / "rir.png")
    exported = export_dcase(catalog, scenes.ref, root / "dcase")

    console.rule("catalog")
    print_table("datasets", ["name", "version", "rows", "hours", "shards", "inputs"],
                [[s.name, f"v{s.version}", s.stats.get("rows"), f"{s.stats.get('audio_hours', 0):.4f}",
                  s.stats.get("shards"), ", ".join(i.split("@")[0] for i in s.inputs)] for s in catalog.list()])
    result = catalog.query(f"SELECT room_id, round(any_value(rt60_target)::DOUBLE, 2) AS rt60_target, "
                           f"round(avg(rt60), 2) AS t30_measured, round(avg(drr_db), 1) AS drr_db, count(*) AS rirs "
                           f"FROM {rirs.name} GROUP BY room_id ORDER BY room_id")
    print_table("SQL: rooms", result.column_names, [list(r.values()) for r in result.to_pylist()])
    result = catalog.query(f"SELECT id, room_id, len(events) AS events, round(noise_snr_db::DOUBLE, 1) AS snr_db, "
                           f"caption FROM {scenes.name} ORDER BY id LIMIT 4")
    print_table("SQL: scenes", result.column_names, [list(r.values()) for r in result.to_pylist()])
    console.rule("next")
    console.print(f"RIR plot: {plot}\nDCASE-format export: {exported['out']} ({exported['clips']})")
    console.print(f"roomtone catalog lineage {scenes.name}\n"
                  f"roomtone catalog show {rirs.name}\n"
                  f"roomtone catalog query \"SELECT id, caption FROM {scenes.name}\"\n"
                  f"roomtone plot rir {rirs.name} --out rir.png\n"
                  f"python -c \"from catalog import Catalog; print(Catalog().to_hf('{scenes.name}'))\"",
                  highlight=False)
