"""``roomtone plan``: what a dataset build will cost before anyone runs it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_table


def plan(
    hours: float = typer.Option(1167.0, "--hours", help="Hours of scene audio (PSELDNets: 1,167)."),
    qa: int = typer.Option(5_600_000, "--qa", help="Question-answer tuples (OpenAQA: about 5.6 million)."),
    workers: int = typer.Option(64, "--workers", help="CPU cores working in parallel."),
    gpus: int = typer.Option(0, "--gpus", help="GPUs for RIR simulation, at the H200 rate or a CUDA rate in --rates."),
    rooms: int = typer.Option(1000, "--rooms", help="Rooms of the RIR grid the scenes are rendered from."),
    rates: list[Path] = typer.Option(None, "--rates", help="Saved output of a benchmark (repeatable): its JSON "
                                                           "figures replace the reference machine's rates."),
    as_json: bool = flag("--json", help="Print the plan as JSON."),
):
    """Project wall time, core-hours, storage, shard count and catalog size of a build.

    Rates are the benchmarks' figures: by default those measured on the reference machine
    (README performance table); measure your own nodes and pass them with --rates:

        python benchmarks/bench_scenes.py --quick > scenes.txt
        roomtone plan --hours 1167 --workers 256 --rates scenes.txt

    The model and what changes at 10x and 100x are in infra/SCALING.md.
    """
    from pipelines.configs import load_config
    from pipelines.plan import PlanRequest, describe_scale, human_bytes, human_hours, load_rates, make_plan

    request = load_config(PlanRequest, hours=hours, qa=qa, workers=workers, gpus=gpus, rooms=rooms)
    result = make_plan(request, load_rates(rates or []))
    if as_json:
        print(json.dumps({"stages": [{**s.__dict__, "wall_hours": s.wall_hours} for s in result.stages],
                          "wall_hours": result.wall_hours, "core_hours": result.core_hours,
                          "storage_bytes": result.storage_bytes, "shards": result.shards,
                          "catalog_bytes": result.catalog_bytes, "notes": result.notes}, indent=2))
        return
    rows = [[s.stage, s.items, s.rate, f"{s.core_hours:,.1f}", s.workers, human_hours(s.wall_hours),
             human_bytes(s.storage_bytes), f"{s.shards:,}"] for s in result.stages]
    rows.append(["total", "", "", f"{result.core_hours:,.1f}", "", human_hours(result.wall_hours),
                 human_bytes(result.storage_bytes), f"{result.shards:,}"])
    print_table(f"plan: {workers} workers, {gpus} GPUs", ["stage", "items", "rate", "core-hours", "workers",
                                                           "wall", "storage", "shards"], rows)
    console.print(f"catalog: {human_bytes(result.catalog_bytes)} of metadata for {result.shards:,} files "
                  "(one snapshot per dataset)")
    for note in result.notes + describe_scale(result):
        console.print(f"- {note}")
