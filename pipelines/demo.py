"""The end-to-end demo on the embedded defaults; each stage of roomtone extends it."""

from __future__ import annotations

from catalog import Catalog
from catalog.cluster import dashboard_url
from pipelines.cli.common import console, print_table
from pipelines.stages.tones import TonesConfig, run_tones


def run_demo(catalog: Catalog, *, quick: bool = False) -> None:
    console.rule("[bold]roomtone demo")
    console.print(f"data and catalog under {catalog.config.root}")
    cfg = TonesConfig(num_clips=8 if quick else 48, clip_seconds=1.0 if quick else 2.0,
                      max_shard_bytes=200_000 if quick else 1_000_000)
    snap = run_tones(cfg, catalog)
    if dashboard_url():
        console.print(f"Ray dashboard (while this process runs): {dashboard_url()}")
    console.print(f"published [bold]{snap.name}@v{snap.version}[/] with {snap.stats['rows']} clips")
    console.rule("catalog")
    print_table("datasets", ["name", "version", "rows", "hours", "shards"],
                [[s.name, f"v{s.version}", s.stats.get("rows"), f"{s.stats.get('audio_hours', 0):.4f}",
                  s.stats.get("shards")] for s in catalog.list()])
    result = catalog.query(f"SELECT label, count(*) AS clips, round(sum(duration), 1) AS seconds "
                           f"FROM {snap.name} GROUP BY label ORDER BY label")
    print_table("SQL: clips per label", result.column_names,
                [list(r.values()) for r in result.to_pylist()])
    console.rule("next")
    console.print(f"roomtone catalog show {snap.name}\n"
                  f"roomtone catalog query \"SELECT id, label, duration FROM {snap.name} LIMIT 5\"\n"
                  f"roomtone catalog card {snap.name}\n"
                  f"python -c \"from catalog import Catalog; print(Catalog().to_hf('{snap.name}'))\"",
                  highlight=False)
