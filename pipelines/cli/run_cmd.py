"""``roomtone run``, ``roomtone submit`` and ``roomtone jobs``: pipeline specs, locally or on a cluster."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_table, state

jobs_app = typer.Typer(help="Follow and control pipeline jobs submitted to a Ray cluster.", no_args_is_help=True)
ADDRESS = typer.Option(None, "--address", envvar="RAY_ADDRESS",
                       help="Ray dashboard / Jobs API address, e.g. http://HEAD:8265.")


SET = typer.Option(None, "--set", metavar="STAGE.FIELD=VALUE",
                   help="Override a field: STAGE.FIELD=VALUE (repeatable), e.g. --set scenes.num_scenes=4 --set seed=7.")


def _plan(spec: Path, overrides: list[str] | None):
    from pipelines.spec import plan_spec, read_spec

    return plan_spec(read_spec(spec), where=str(spec), overrides=overrides or [])


def run(
    spec: Path = typer.Argument(..., help="Pipeline spec YAML (see pipelines/specs/demo.yaml)."),
    address: str = typer.Option(None, "--address", envvar="RAY_ADDRESS",
                                help="Ray cluster address; none starts a local cluster."),
    overrides: list[str] = SET,
    dry_run: bool = flag("--dry-run", help="Validate and print the plan; run nothing."),
):
    """Run a pipeline spec: every stage in DAG order, each published to the catalog.

    The whole spec is validated first (every error names the stage and field), and every
    input that no stage makes must already be in the catalog. A stage whose config and
    input snapshots are unchanged reuses its dataset's current snapshot.

    Example: roomtone run pipelines/specs/demo.yaml
    """
    from pipelines.spec import check_external_inputs, run_plan

    plan = _plan(spec, overrides)
    catalog = state.catalog()
    print_table(f"pipeline {plan.spec.name} ({plan.digest[:12]})", ["stage", "kind", "writes", "after"],
                [[s.key, s.kind, s.output, ", ".join(s.needs)] for s in plan.stages])
    if dry_run:
        check_external_inputs(plan, catalog)  # run_plan checks them itself
        return
    results = run_plan(plan, catalog, address=address)
    print_table("result", ["stage", "made", "seconds", ""],
                [[r.stage, r.output.summary, f"{r.seconds:.1f}", "reused (unchanged config and inputs)"
                  if r.reused else ""] for r in results])


def submit(
    spec: Path = typer.Argument(..., help="Pipeline spec YAML."),
    address: str = ADDRESS,
    scheduled: datetime = typer.Option(None, "--scheduled-time",
                                       help="The schedule slot this run belongs to, UTC unless it names a zone "
                                            "(default: now, to the minute). The same spec and slot are never "
                                            "started twice."),
    overrides: list[str] = SET,
    wait: bool = flag("--wait", help="Wait for the job to end; a failure prints its log tail."),
):
    """Submit a pipeline spec to a Ray cluster as a Ray Job (validated here first).

    Example: roomtone submit pipelines/specs/demo.yaml --address http://ray-head:8265 --wait
    """
    from pipelines import jobs

    plan = _plan(spec, overrides)
    sub = jobs.submit(plan, address, scheduled=scheduled)
    verb = "submitted" if sub.created else "already submitted (not started again)"
    console.print(f"{verb}: [bold]{sub.submission_id}[/] ({sub.status})\n"
                  f"follow: roomtone jobs logs {sub.submission_id} --address {address}", highlight=False)
    if wait:
        console.print(f"{sub.submission_id}: {jobs.wait(address, sub.submission_id)}")


@jobs_app.command("list")
def list_jobs(address: str = ADDRESS):
    """Jobs on the cluster, newest first."""
    from pipelines.jobs import client

    infos = sorted(client(address).list_jobs(), key=lambda j: j.start_time or 0, reverse=True)
    print_table("jobs", ["submission id", "status", "spec", "started"],
                [[j.submission_id, j.status.value, (j.metadata or {}).get("roomtone_spec"),
                  datetime.fromtimestamp(j.start_time / 1000).isoformat(timespec="seconds") if j.start_time else ""]
                 for j in infos])


@jobs_app.command("status")
def job_status(submission_id: str, address: str = ADDRESS):
    """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from pipelines.jobs import status

    console.print(status(address, submission_id))


@jobs_app.command("logs")
def job_logs(submission_id: str, address: str = ADDRESS,
             follow: bool = flag("--follow", "-f", help="Stream until the job ends.")):
    """The job's driver log (stage progress, errors)."""
    import asyncio

    from pipelines.jobs import client, status

    status(address, submission_id)  # a clear error for an unknown id
    jobs = client(address)
    if not follow:
        print(jobs.get_job_logs(submission_id), end="")
        return

    async def tail():
        async for lines in jobs.tail_job_logs(submission_id):
            print(lines, end="", flush=True)
    asyncio.run(tail())


@jobs_app.command("stop")
def job_stop(submission_id: str, address: str = ADDRESS):
    """Ask the cluster to stop the job; finished shards stay and a re-run resumes from them."""
    from pipelines.jobs import client, status

    status(address, submission_id)
    client(address).stop_job(submission_id)
    console.print(f"stop requested: {submission_id}")
