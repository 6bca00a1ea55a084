"""Shared CLI state and output helpers."""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from catalog.catalog import Catalog

# Pipes and log files get wide tables instead of rich's 80-column folding.
console = Console(width=None if sys.stdout.isatty() else 200)


@dataclass
class _State:
    root: str | None = None
    catalog_uri: str | None = None
    debug: bool = False
    started_ms: int = 0  # set by each command (the root callback); see `published`

    def catalog(self) -> Catalog:
        # imported here: Iceberg and `datasets` cost 1.3 s, which `--help` and plans need not pay
        from catalog import Catalog, CatalogConfig

        return Catalog(CatalogConfig.from_env(root=self.root, uri=self.catalog_uri))


state = _State()


def published(snap) -> str:
    """How a command names the snapshot it returns: one it committed, or the current one it reused
    because the config and inputs were unchanged."""
    return "published" if snap.timestamp_ms >= state.started_ms else "unchanged config and inputs: kept"


def flag(*names: str, help: str, default: bool = False):
    """An on/off option; typer would show it as taking a ``<bool>`` value, which it does not."""
    return typer.Option(default, *names, help=help, metavar="")


def reflow(text: str) -> str:
    """Help text with each prose paragraph on one line, so rich wraps it to the terminal
    instead of keeping the docstring's own breaks; indented examples and list items keep theirs."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if any(line.startswith((" ", "- ", "* ")) for line in p.splitlines())
                       else " ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def reflow_help(app: typer.Typer) -> None:
    """`reflow` every command's and group's help in `app`, recursively."""
    for command in app.registered_commands:
        command.help = reflow(command.help or inspect.getdoc(command.callback) or "")
    for group in app.registered_groups:
        sub = group.typer_instance
        sub.info.help = reflow(group.help or sub.info.help or "")
        reflow_help(sub)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=i == 0)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
