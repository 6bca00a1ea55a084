"""Run a dataset job as one Ray task per shard, resumable and published exactly once.

A job lists its shards up front (split, index, count, items). Shards a previous attempt
already finished are skipped; every task writes its shard whole under its deterministic
name, so a retried task overwrites its own file. Only when every shard exists does the
driver publish the run as one catalog snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from catalog import Catalog, DatasetRun, Snapshot, write_shard
from catalog.cluster import connect
from catalog.errors import RoomtoneError
from catalog.shards import shard_relpath


@dataclass(frozen=True)
class ShardTask:
    split: str
    index: int
    count: int
    items: tuple[Any, ...]

    @property
    def relpath(self) -> str:
        return shard_relpath(self.split, self.index, self.count)


def split_into_shards(items_by_split: dict[str, list], shards_by_split: dict[str, int]) -> list[ShardTask]:
    """Contiguous, deterministic assignment of items to shards."""
    tasks = []
    for split, items in items_by_split.items():
        n = max(1, min(shards_by_split[split], len(items)))
        bounds = [round(i * len(items) / n) for i in range(n + 1)]
        tasks += [ShardTask(split, i, n, tuple(items[bounds[i]:bounds[i + 1]])) for i in range(n)]
    return tasks


def _write(location_uri: str, features, task: ShardTask, make_rows, writer_options: dict) -> tuple[str, int]:
    from catalog import Location

    stats = write_shard(Location(location_uri), features, make_rows(task), **writer_options)
    return task.relpath, stats.rows


def run_sharded(catalog: Catalog, run: DatasetRun, tasks: list[ShardTask],
                make_rows: Callable[[ShardTask], Iterable[dict]], *, address: str | None = None,
                description: str | None = None, writer_options: dict | None = None,
                show_progress: bool = True) -> Snapshot:
    """Write every missing shard on Ray, then publish the run as one snapshot."""
    import ray

    connect(address)
    run.ray_job_id = run.ray_job_id or ray.get_runtime_context().get_job_id()
    done = run.finished_shards()
    todo = [t for t in tasks if t.relpath not in done]
    remote = ray.remote(_write).options(num_cpus=1, max_retries=3)
    pending = {remote.remote(run.location.join(t.relpath).uri, run.features, t, make_rows,
                             writer_options or {}): t for t in todo}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("shards · {task.fields[rows]} rows"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        bar = progress.add_task(description or f"writing {run.name}", total=len(tasks),
                                completed=len(tasks) - len(todo), rows=0)
        rows = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                _, n = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                for ref in pending:
                    ray.cancel(ref)
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, RoomtoneError):
                    raise cause from None
                raise RoomtoneError(f"shard {task.relpath} of {run.name!r} failed: "
                                    f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}",
                                    "fix the cause and re-run: finished shards are kept and skipped") from None
            rows += n
            progress.update(bar, advance=1, rows=rows)
    expected = {}
    for t in tasks:
        expected[t.split] = t.count
    return catalog.publish(run, expected_shards=expected)
