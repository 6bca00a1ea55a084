"""The ``roomtone`` command: thin wrappers that parse options and call the library.

Errors are printed as one line (what is wrong, what to do); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
import time

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from catalog.errors import RoomtoneError
from pipelines.cli import (augment_cmd, catalog_cmd, export_cmd, ingest_cmd, plan_cmd, plot_cmd, pretrain_cmd,
                           qa_cmd, run_cmd, simulate_cmd)
from pipelines.cli.common import flag, reflow_help, state
from pipelines.configs import describe_validation_error

app = typer.Typer(
    help="roomtone: room acoustics -> audio training data -> pretrained audio encoders.\n\n"
         "Data and catalog live under --root (default ./roomtone-home, or ROOMTONE_ROOT); "
         "Ray jobs run on --address / RAY_ADDRESS or on a local cluster started for you.",
    no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(simulate_cmd.app, name="simulate")
app.add_typer(plot_cmd.app, name="plot")
app.add_typer(export_cmd.app, name="export")
app.add_typer(ingest_cmd.app, name="ingest")
app.add_typer(qa_cmd.app, name="qa")
app.command("augment")(augment_cmd.augment)
app.add_typer(run_cmd.jobs_app, name="jobs")
app.command("run")(run_cmd.run)
app.command("submit")(run_cmd.submit)
app.command("report")(plot_cmd.report)
app.command("pretrain")(pretrain_cmd.pretrain)
app.command("eval")(pretrain_cmd.evaluate)
app.command("plan")(plan_cmd.plan)


@app.callback()
def _main(
    root: str = typer.Option(None, "--root", envvar="ROOMTONE_ROOT",
                             help="Where datasets live: a local folder or s3://bucket/prefix."),
    catalog_uri: str = typer.Option(None, "--catalog-uri", envvar="ROOMTONE_CATALOG_URI",
                                    help="Catalog database: sqlite:///file.db (default under --root), "
                                         "postgresql+psycopg2://user@host/db, or an Iceberg REST URL."),
    debug: bool = flag("--debug", help="Show full tracebacks on errors."),
):
    state.root, state.catalog_uri, state.debug = root, catalog_uri, debug
    state.started_ms = int(time.time() * 1000)  # what this command publishes is newer (see `published`)


@app.command()
def demo(quick: bool = flag("--quick", help="Smallest setting (a smoke test).")):
    """Run the end-to-end demo on the embedded defaults and show what it made."""
    from pipelines.demo import run_demo

    run_demo(state.catalog(), quick=quick)


reflow_help(app)


def main() -> None:
    console = Console(stderr=True)

    def fail(problem: str, fix: str | None) -> None:
        console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        if fix:
            console.print(f"[bold]fix:[/] {escape(fix)}", highlight=False, soft_wrap=True)
        sys.exit(1)

    def debug() -> bool:  # --debug is parsed inside app()
        return bool(state.debug or os.environ.get("ROOMTONE_DEBUG"))

    try:
        app()
    except RoomtoneError as exc:
        if debug():
            raise
        fail(exc.problem, exc.fix)
    except ValidationError as exc:
        if debug():
            raise
        err = describe_validation_error(exc)
        fail(err.problem, err.fix)
    except SystemExit as exc:
        if exc.code == 130:  # typer's answer to Ctrl-C
            console.print("[bold]interrupted.[/] A dataset job publishes nothing until every shard is written; "
                          "the same command again resumes from the shards this one finished.", highlight=False,
                          soft_wrap=True)
        raise
    except OSError as exc:  # a path the command was given cannot be written or read, a service cannot be reached
        if debug():
            raise
        where = "".join(f" {f!r}" for f in (exc.filename, exc.filename2) if f)
        fail(f"{exc.strerror or exc}{':' if where else ''}{where}",
             "check the path (a folder that exists and can be written) or the address, then re-run; "
             "--debug shows the traceback")
