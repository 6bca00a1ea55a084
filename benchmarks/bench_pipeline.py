"""The demo pipeline's wall time per stage, and the scenes stage's scaling from 1 to 2 Ray workers.

    python benchmarks/bench_pipeline.py [--quick]

Runs ``pipelines/specs/demo.yaml`` (with the demo's ``--quick`` overrides under --quick) in
a fresh catalog on a local Ray cluster, then renders the scenes stage again on clusters of
1 and 2 CPUs (each in its own process: Ray is started once per process), with the events
and rooms reused from the catalog. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog import Catalog, CatalogConfig  # noqa: E402
from catalog.cluster import connect  # noqa: E402
from pipelines.demo import DEMO_SPEC, QUICK  # noqa: E402
from pipelines.spec import plan_spec, read_spec, run_plan  # noqa: E402


SCENES_ONLY = ("events", "rirs", "scenes")


def run(root: str, overrides: list[str], num_cpus: int | None, keep: tuple[str, ...] = ()) -> dict[str, float]:
    """Run the demo spec (only the ``keep`` stages when given) and return each stage's seconds."""
    connect(num_cpus=num_cpus)
    data = read_spec(DEMO_SPEC)
    if keep:
        data["stages"] = {k: v for k, v in data["stages"].items() if k in keep}
        overrides = [o for o in overrides if o.split(".")[0] in keep]
    plan = plan_spec(data, overrides=overrides)
    results = run_plan(plan, Catalog(CatalogConfig(root=root)), show_progress=False)
    return {r.stage: r.seconds for r in results}


def scenes_seconds(root: str, overrides: list[str], workers: int) -> float:
    """The scenes stage alone (its inputs reused) on a fresh cluster of ``workers`` CPUs."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from bench_pipeline import run; "
            f"print(json.dumps(run({root!r}, {overrides + [f'scenes.name=scenes_w{workers}']!r}, {workers}, "
            f"{SCENES_ONLY!r})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "ROOMTONE_RAY_DASHBOARD": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])["scenes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the demo's --quick sizes (under a minute)")
    args = parser.parse_args()
    overrides = list(QUICK) if args.quick else []
    with tempfile.TemporaryDirectory() as root:
        stages = run(root, overrides, None)
        one = scenes_seconds(root, overrides, 1)
        two = scenes_seconds(root, overrides, 2)
    total = sum(stages.values())
    print(f"demo pipeline ({'quick' if args.quick else 'full'} sizes), {os.cpu_count()} cores:")
    for stage, seconds in stages.items():
        print(f"  {stage:<12} {seconds:7.1f} s  ({seconds / total:5.1%})")
    print(f"  {'total':<12} {total:7.1f} s")
    print(f"scenes stage: 1 worker {one:.1f} s, 2 workers {two:.1f} s -> {one / two:.2f}x")
    figures = [{"benchmark": "pipeline", "metric": f"stage_seconds_{stage}", "value": round(s, 2), "unit": "s",
                "peer": None, "peer_value": None, "ratio": None} for stage, s in stages.items()]
    figures.append({"benchmark": "pipeline", "metric": "demo_seconds", "value": round(total, 2), "unit": "s",
                    "peer": None, "peer_value": None, "ratio": None})
    figures.append({"benchmark": "pipeline", "metric": "scenes_speedup_2_workers", "value": round(two, 2),
                    "unit": "s", "peer": "1 worker", "peer_value": round(one, 2), "ratio": round(one / two, 3)})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
