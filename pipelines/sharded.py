"""Run a dataset job as one Ray task per shard, resumable and published exactly once.

A job lists its shards up front (split, index, count, items). Shards a previous attempt
already finished are skipped; every task writes its shard whole under its deterministic
name, so a retried task overwrites its own file. Only when every shard exists does the
driver publish the run as one catalog snapshot. Stages that can use a GPU get one actor per
GPU in the cluster (the CUDA context is made once per actor); otherwise CPU tasks.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

from catalog import Catalog, DatasetRun, Snapshot, plan_num_shards, write_shard
from catalog.cluster import SCALE_UP_DEFAULT_S, SCALE_UP_ENV, connect, scale_to
from catalog.errors import RoomtoneError
from catalog.progress import progress_bar
from catalog.shards import shard_relpath
from pipelines import metrics


@dataclass(frozen=True)
class ShardTask:
    split: str
    index: int
    count: int
    items: tuple[Any, ...]

    @property
    def relpath(self) -> str:
        return shard_relpath(self.split, self.index, self.count)


@lru_cache(maxsize=1)
def keep_freed_buffers() -> bool:
    """Have this worker process keep freed clip-sized buffers for its next clip (glibc only).

    glibc gives a block over its mmap threshold back to the kernel when it is freed, so the next
    clip's mix, PCM and FLAC buffers (23 MB each for a 60 s 4-channel scene) come back as fresh
    pages, each faulted in and zeroed: a fifth of a scene worker's CPU time went to the kernel.
    Serving blocks up to 32 MiB (glibc's ceiling) from the heap and trimming the heap only past
    256 MiB free reuses them instead; peak memory stays that of one clip in flight. Returns
    whether the allocator took the settings (False off glibc)."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):
        return False


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
CANCEL_WAIT_S = 120.0  # how long a failed run waits for its cancelled shards to stop


def split_into_shards(items_by_split: dict[str, list], shards_by_split: dict[str, int]) -> list[ShardTask]:
    """Contiguous, deterministic assignment of items to shards."""
    tasks = []
    for split, items in items_by_split.items():
        n = max(1, min(shards_by_split[split], len(items)))
        bounds = [round(i * len(items) / n) for i in range(n + 1)]
        tasks += [ShardTask(split, i, n, tuple(items[bounds[i]:bounds[i + 1]])) for i in range(n)]
    return tasks


def plan_shards(items_by_split: dict[str, list], max_shard_bytes: int,
                item_bytes: "float | Callable[[Any], float]") -> list[ShardTask]:
    """Shard tasks sized from an estimate of each item's bytes (a constant or a function)."""
    sizes = {split: (sum(map(item_bytes, items)) if callable(item_bytes) else len(items) * item_bytes)
             for split, items in items_by_split.items()}
    return split_into_shards(items_by_split, {s: plan_num_shards(n, max_shard_bytes) for s, n in sizes.items()})


def holdout(ids: list, test_fraction: float) -> dict[str, list]:
    """The first ``round(len * test_fraction)`` ids as ``test``, the rest as ``train``."""
    n_test = int(round(len(ids) * test_fraction))
    return {"train": ids[n_test:], "test": ids[:n_test]} if n_test else {"train": ids}


def write_task(location_uri: str, features, task: ShardTask, make_rows, writer_options: dict,
               tags: dict[str, str]) -> int:
    """Write one shard and record its metrics; any failure comes back as one message naming the shard."""
    from catalog import Location

    start = time.perf_counter()
    try:
        with metrics.shard_scope(tags):
            stats = write_shard(Location(location_uri), features, make_rows(task), **writer_options)
    except RoomtoneError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the shard named, cause chained
        raise RoomtoneError(f"shard {task.relpath} failed: {type(exc).__name__}: {exc}",
                            "fix the cause and re-run: finished shards are kept and skipped") from exc
    seconds = time.perf_counter() - start
    for name, value in (("items", stats.rows), ("audio_seconds", stats.audio_seconds),
                        ("bytes_written", stats.bytes), ("shards", 1)):
        metrics.add(name, value, tags)
    metrics.observe_latency(seconds, tags)
    metrics.log.info("run %s stage %s: wrote %s (%d rows, %.1f s)", tags["run"], tags["stage"], task.relpath,
                     stats.rows, seconds)
    return stats.rows


class _GpuWriter:
    def write(self, *args) -> int:
        return write_task(*args)


def _stop(refs: list, ray) -> None:
    """Cancel the other shards and wait for them to end, so that nothing is still writing once the
    run's error reaches the user: a cancel only lands when a task returns to Python, and a task
    inside an S3 client's retry loop could otherwise land its shard after the error (and race a
    re-run). Past ``CANCEL_WAIT_S`` the driver gives up waiting and says so."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
    if running:
        metrics.log.warning("%d cancelled shard task(s) still running after %.0f s; they stop at their next "
                            "step and a re-run keeps any shard they finish", len(running), CANCEL_WAIT_S)


def _results(refs_by_task: dict, ray) -> Iterator[tuple[ShardTask, int]]:
    pending = dict(refs_by_task)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(ready[0])
        try:
            yield task, ray.get(ready[0])
        except ray.exceptions.RayError as exc:  # a task error, or its node/worker lost past the retries
            _stop(list(pending), ray)
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, RoomtoneError):
                raise cause from None
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise RoomtoneError(f"shard {task.relpath} failed: {type(cause).__name__}: {detail}",
                                "see the Ray logs, then re-run: finished shards are kept and skipped") from None


def require_gpus(address: str | None) -> None:
    """device='cuda': the cluster has a GPU, or gains one from its autoscaler, before any work starts
    (the machine running the driver, e.g. a head without GPUs, need not have one)."""
    connect(address)
    if not scale_to([{"GPU": 1}]).get("GPU"):
        raise RoomtoneError("device='cuda' but the Ray cluster has no GPU",
                            f"use device='auto' (GPUs where the cluster has them) or 'cpu'; an autoscaling "
                            f"cluster is waited for up to {SCALE_UP_ENV} seconds (default {SCALE_UP_DEFAULT_S:.0f})")


def run_sharded(catalog: Catalog, run: DatasetRun, tasks: list[ShardTask],
                make_rows: Callable[[ShardTask], Iterable[dict]], *, address: str | None = None,
                description: str | None = None, writer_options: dict | None = None,
                use_gpus: bool = False, show_progress: bool = True) -> Snapshot:
    """Write every missing shard on Ray, then publish the run as one snapshot."""
    import ray

    resources = connect(address)
    run.ray_job_id = run.ray_job_id or ray.get_runtime_context().get_job_id()
    done = run.finished_shards()
    todo = [t for t in tasks if t.relpath not in done]
    tags = metrics.tags_for(run.name, run.run_id)
    args = [(run.location.join(t.relpath).uri, run.features, t, make_rows, writer_options or {}, tags)
            for t in todo]
    gpus = int(resources.get("GPU", 0)) if use_gpus else 0
    if gpus:
        actors = [ray.remote(num_gpus=1, num_cpus=1)(_GpuWriter).remote() for _ in range(min(gpus, len(todo)))]
        refs = {actors[i % len(actors)].write.remote(*a): t for i, (a, t) in enumerate(zip(args, todo))}
    else:
        remote = ray.remote(write_task).options(num_cpus=1, max_retries=3)
        refs = {remote.remote(*a): t for a, t in zip(args, todo)}
    with progress_bar("shards", show=show_progress and bool(todo)) as progress:  # no bar when nothing is left
        bar = progress.add_task(description or f"writing {run.name}", total=len(tasks),
                                completed=len(tasks) - len(todo), note=" · 0 rows")
        kept = {t.relpath: done[t.relpath] for t in tasks if t.relpath in done}
        rows = sum(s.rows for s, _ in run.shard_stats(kept).values()) if todo else 0
        progress.update(bar, note=f" · {rows} rows")  # a resumed run counts the rows it keeps
        for _, n in _results(refs, ray):
            rows += n
            progress.update(bar, advance=1, note=f" · {rows} rows")
    expected = {t.split: t.count for t in tasks}
    return catalog.publish(run, expected_shards=expected)
