"""The end-to-end demo: the pipeline spec ``pipelines/specs/demo.yaml`` on the embedded defaults
(events, rooms, scenes, mixtures, QA tuples, a tiny SSAST run and its linear probe), then a
tour of what it made: the catalog, SQL, plots, the DCASE and LTU exports, the MLflow run.

``--quick`` shrinks every stage through the same overrides a user passes to ``roomtone run --set``.
"""

from __future__ import annotations

import json
from pathlib import Path

from catalog import Catalog
from catalog.cluster import dashboard_url
from pipelines.cli.common import console, print_table
from pipelines.export_dcase import export_dcase
from pipelines.qa.records import DCASE_AUDIO_PATH
from pipelines.plots import plot_rir, plot_scene
from pipelines.report import write_report
from pipelines.spec import plan_spec, read_spec, run_plan
from pipelines.stages.qa import export_qa
from pretrain.tracking import tracking_uri

DEMO_SPEC = Path(__file__).parent / "specs" / "demo.yaml"
QUICK = ["events.per_class=2", "rirs.num_rooms=2", "rirs.sources_per_room=1", "rirs.rt60=[0.2, 0.4]",
         "rirs.test_fraction=0.5", "scenes.num_scenes=2", "scenes.clip_seconds=5.0", "scenes.rir_seconds=0.3",
         "scenes.test_fraction=0.5", "pretrain.steps=20", "pretrain.checkpoint_every=10", "pretrain.warmup_steps=2",
         "probe.steps=50"]


def run_demo(catalog: Catalog, *, quick: bool = False) -> None:
    console.rule("[bold]roomtone demo")
    console.print(f"data and catalog under {catalog.config.root}; spec {DEMO_SPEC}")
    plan = plan_spec(read_spec(DEMO_SPEC), where=str(DEMO_SPEC), overrides=QUICK if quick else [])

    def announce(result) -> None:
        note = " (reused: unchanged config and inputs)" if result.reused else ""
        console.print(f"{result.stage}: {result.output.summary}{note}", highlight=False)
        if dashboard_url() and result.stage == plan.stages[0].key:
            console.print(f"Ray dashboard (while this process runs): {dashboard_url()}")

    results = {r.stage: r.output for r in run_plan(plan, catalog, on_stage=announce)}
    rirs, scenes, mixes, qa = (results[k].snapshot for k in ("rirs", "scenes", "mixes", "qa"))
    root = Path(catalog.config.root) if not catalog.config.root_location.is_s3 else Path("roomtone-demo")
    plots = [plot_rir(catalog.arrow_dataset(rirs.ref).head(1).to_pylist()[0], root / "plots" / "rir.png"),
             plot_scene(catalog.arrow_dataset(scenes.ref).head(1).to_pylist()[0], scenes.info["classes"],
                        root / "plots" / "scene.png", scenes.info["label_hop_s"])]
    plots += [write_report(catalog, snap.ref, root / "reports")["png"] for snap in (rirs, scenes, qa)]
    exported = [export_dcase(catalog, snap.ref, root / f"dcase_{snap.name}")["out"] for snap in (scenes, mixes)]
    export_qa(catalog, qa.ref, root / "qa", audio_path=f"../dcase_{mixes.name}/{DCASE_AUDIO_PATH}")

    console.rule("catalog")
    print_table("datasets", ["name", "version", "rows", "hours", "shards", "inputs"],
                [[s.name, f"v{s.version}", s.stats.get("rows"), f"{s.stats.get('audio_hours', 0):.4f}",
                  s.stats.get("shards"), ", ".join(i.split("@")[0] for i in s.inputs)] for s in catalog.list()])
    result = catalog.query(f"SELECT id, room_id, len(events) AS events, round(noise_snr_db::DOUBLE, 1) AS snr_db, "
                           f"caption FROM {scenes.name} ORDER BY id LIMIT 4")
    print_table("SQL: scenes", result.column_names, [list(r.values()) for r in result.to_pylist()])
    result = catalog.query(f"SELECT family, count(*) AS tuples FROM {qa.name} GROUP BY family ORDER BY tuples DESC")
    print_table("SQL: QA tuples per family", result.column_names, [list(r.values()) for r in result.to_pylist()])
    example = json.loads((root / "qa" / "ltu_train.json").read_text())[0]
    console.print("one QA tuple (LTU format):", highlight=False)
    console.print_json(json.dumps(example))

    console.rule("what was made, and how to look at it")
    uri = tracking_uri(catalog.config)
    console.print(f"pretraining: {results['pretrain'].summary}\n"
                  f"linear probe: {results['probe'].summary}\n"
                  f"MLflow: mlflow ui --backend-store-uri {uri}   (then http://127.0.0.1:5000)\n"
                  f"plots: {', '.join(str(p) for p in plots)}\n"
                  f"DCASE-format exports: {', '.join(exported)}   QA exports (LTU, SpatialSoundQA): {root / 'qa'}",
                  highlight=False)
    console.print(f"roomtone catalog lineage {qa.name}\n"
                  f"roomtone catalog show {scenes.name}\n"
                  f"roomtone catalog query \"SELECT question, answer.text FROM {qa.name} LIMIT 5\"\n"
                  f"roomtone report {scenes.name}\n"
                  f"roomtone run {DEMO_SPEC} --dry-run\n"
                  f"python -c \"from catalog import Catalog; print(Catalog().to_hf('{scenes.name}'))\"",
                  highlight=False)
