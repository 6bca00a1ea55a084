"""The end-to-end demo: the pipeline spec ``pipelines/specs/demo.yaml`` on the embedded defaults,
then a tour of what it made (catalog listing, SQL, a plot, the DCASE export).

``--quick`` shrinks every stage through the same overrides a user passes to ``roomtone run --set``.
"""

from __future__ import annotations

from pathlib import Path

from catalog import Catalog
from catalog.cluster import dashboard_url
from pipelines.cli.common import console, print_table
from pipelines.export_dcase import export_dcase
from pipelines.plots import plot_rir
from pipelines.spec import plan_spec, read_spec, run_plan

DEMO_SPEC = Path(__file__).parent / "specs" / "demo.yaml"
QUICK = ["events.per_class=2", "rirs.num_rooms=2", "rirs.sources_per_room=1", "rirs.rt60=[0.2, 0.4]",
         "rirs.test_fraction=0.5", "scenes.num_scenes=2", "scenes.clip_seconds=5.0", "scenes.rir_seconds=0.3",
         "scenes.test_fraction=0.5"]


def run_demo(catalog: Catalog, *, quick: bool = False) -> None:
    console.rule("[bold]roomtone demo")
    console.print(f"data and catalog under {catalog.config.root}; spec {DEMO_SPEC}")
    plan = plan_spec(read_spec(DEMO_SPEC), where=str(DEMO_SPEC), overrides=QUICK if quick else [])

    first = []

    def announce(result) -> None:
        first.append(result)
        note = " (reused: unchanged config and inputs)" if result.reused else ""
        console.print(f"{result.stage}: {result.output.summary}{note}", highlight=False)
        if dashboard_url() and result is first[0]:
            console.print(f"Ray dashboard (while this process runs): {dashboard_url()}")

    results = {r.stage: r.snapshot for r in run_plan(plan, catalog, on_stage=announce)}
    rirs, scenes = results["rirs"], results["scenes"]
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
