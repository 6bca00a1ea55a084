"""One look for every console bar: pipeline shards, exports, training steps and evaluation clips."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(unit: str, *, show: bool = True) -> Progress:
    """Description, bar, done/total `unit`, the task's `note` field, elapsed and remaining time;
    a Progress with show=False accepts the same calls and draws nothing."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(f"{unit}{{task.fields[note]}}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not show)
