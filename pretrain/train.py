"""Pretraining and supervised training on Ray Train (DDP), streamed from the catalog.

`run_training(cfg, catalog)` checks everything cheap first (dataset columns and split, model
name, checkpoint compatibility, cluster CPUs), opens the MLflow run, then starts a
TorchTrainer: gloo on CPU, NCCL on GPU, bf16 autocast on CUDA, gradient accumulation, AdamW
with a warm-up + cosine schedule, mixup for tagging when asked (recipes, features and
SpecAugment run in the data stream, `pretrain.data`, or with features_on="device" on each
rank's device). Rank 0 writes a checkpoint to the run folder (local or s3://) every
`checkpoint_every` steps; every (re)start of the loop resumes from the newest readable one,
so a resumed run and a worker group restarted by Ray Train's FailureConfig replay the same
batches, masks and dropout as an uninterrupted run: data position, mask generators and the
torch seed all derive from (seed, step, rank). A non-finite loss stops
every rank at that step without stepping the optimizer; the driver reports the step, the
micro-batch and its item ids, and the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from catalog import Location
from catalog.cluster import SCALE_UP_DEFAULT_S, SCALE_UP_ENV, scale_to
from catalog.errors import RoomtoneError
from pretrain import tracking
from pretrain.config import TrainConfig
from pretrain.data import InputSpec, Source, iter_batches, lanes_for_rank, model_inputs, open_source, plan_segments, \
    started
from pretrain.features import mixup
from simulation.seeding import item_seed

if TYPE_CHECKING:
    from catalog.catalog import Catalog

# A test-only hook called on every worker before each micro-batch: (step, micro, rank, batch) -> batch;
# the batch holds the model input ("fbank") whichever features_on computed it.
BatchHook = Callable[[int, int, int, dict], dict]


@dataclass
class TrainResult:
    run_name: str
    run_dir: str
    mlflow_run_id: str
    tracking_uri: str
    checkpoint: str
    steps: int
    model_version: str | None
    reused: bool = False  # the run had already finished: nothing was trained or registered again


# -- models and checkpoints ----------------------------------------------------------------

def build_model(cfg: TrainConfig, classes: tuple[str, ...]) -> torch.nn.Module:
    """The objective module; the same seed gives the same initial weights on every rank."""
    from pretrain.models import create_model

    kwargs = dict(cfg.model_overrides)
    if cfg.method == "supervised":
        kwargs.setdefault("num_classes", len(classes))
    if cfg.teacher:  # BEATs tokenizer distillation: the previous iteration's encoder, frozen
        kwargs["teacher"] = _trained_as(cfg.teacher, "beats", "teacher").encoder
    if cfg.tokenizer:  # BEATs iteration 2+: labels from a distilled tokenizer
        kwargs["tokenizer"] = _trained_as(cfg.tokenizer, "beats-tokenizer", "tokenizer").tokenizer
    with torch.random.fork_rng():
        torch.manual_seed(item_seed(cfg.seed, "init"))
        try:
            return create_model(cfg.model, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise RoomtoneError(f"cannot build model {cfg.model!r} with {kwargs}: {exc}",
                                "see `roomtone pretrain --help` for the model names") from None


def load_trained(checkpoint: str) -> tuple[torch.nn.Module, TrainConfig, Location]:
    """The model of a roomtone checkpoint (or of a run folder's newest one) and its training config."""
    from pretrain.checkpoints import load_checkpoint

    if checkpoint.startswith(("models:/", "runs:/")):
        raise RoomtoneError(f"{checkpoint} is an MLflow model URI; roomtone loads its own checkpoints",
                            "pass the training run's folder: the registered version's MLflow run records it "
                            "as the param run_dir")
    loc = Location.parse(checkpoint)
    if not loc.exists():
        raise RoomtoneError(f"checkpoint {loc.uri} does not exist",
                            "pass a step-*.pt file or a run folder (`roomtone pretrain` prints its run folder)")
    if not loc.name.endswith(".pt"):
        found = list_checkpoints(loc)
        if not found:
            raise RoomtoneError(f"{loc.uri} holds no checkpoint", "pass a step-*.pt file or a run folder")
        loc = found[0]
    ckpt = load_checkpoint(loc.uri)
    cfg = TrainConfig(**ckpt["extra"]["config"])
    model = build_model(cfg, tuple(ckpt["extra"].get("classes", ())))
    check_compatible(model, ckpt["model"], loc.uri, cfg.model)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, loc


def _trained_as(checkpoint: str, family: str, role: str) -> torch.nn.Module:
    model, cfg, loc = load_trained(checkpoint)
    if cfg.model.rpartition("-")[0] != family:
        raise RoomtoneError(f"the {role} {loc.uri} comes from a {cfg.model} run, not a {family}-* one",
                            f"pass a {family}-* run folder or checkpoint as {role}")
    return model


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def list_checkpoints(run_dir: Location) -> list[Location]:
    """The run's checkpoints, newest first."""
    return sorted(run_dir.join("checkpoints").list_files(".pt"), key=lambda l: l.name, reverse=True)


def check_compatible(model: torch.nn.Module, state: dict, where: str, model_name: str) -> None:
    """Refuse a checkpoint whose tensors do not fit the model (another size or family)."""
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    missing = [k for k in own if k not in state]
    if bad or missing:
        detail = (f"{bad[0]} is {tuple(state[bad[0]].shape)} there but {tuple(own[bad[0]].shape)} here" if bad
                  else f"it lacks {missing[0]}")
        raise RoomtoneError(f"checkpoint {where} does not fit model {model_name!r}: {detail}",
                            "use the model (and size) the checkpoint was trained with, or a new run_name")


def newest_checkpoint(run_dir: Location) -> tuple[dict | None, Location | None]:
    """The newest readable checkpoint of the run (a corrupt one is skipped) and where it lies."""
    from pretrain.checkpoints import load_checkpoint

    for loc in list_checkpoints(run_dir):
        try:
            return load_checkpoint(loc.uri), loc
        except RoomtoneError:
            continue  # truncated or corrupt: fall back to the one before
    return None, None


def load_latest(run_dir: Location, model: torch.nn.Module, model_name: str) -> tuple[dict | None, Location | None]:
    """`newest_checkpoint`, checked against the model."""
    ckpt, loc = newest_checkpoint(run_dir)
    if ckpt is not None:
        check_compatible(model, ckpt["model"], loc.uri, model_name)
    return ckpt, loc


# -- the loop on every Ray Train worker ------------------------------------------------------

def _schedule(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def _read_step(losses: list[torch.Tensor], sums: dict[str, torch.Tensor], world: int) -> tuple[bool, dict[str, float]]:
    """The step's one read of the device: whether any rank's loss was NaN/inf, and its scalar outputs
    averaged over the ranks, in one tensor (one all-reduce, one copy to the host).

    Reading each micro-batch's values as it ended held the host until the device caught up, so the
    next batch's fetch and masks waited on the device and the device then waited on them."""
    keys = sorted(sums)
    bad = (~torch.isfinite(torch.stack(losses))).any().double()
    t = torch.stack([bad] + [sums[k].reshape(()).double() for k in keys])
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t)
    flag, *values = t.tolist()
    return flag > 0, {k: v / world for k, v in zip(keys, values)}


def _quiet_reports() -> None:
    """Ray Train logs one INFO line per report under a logger named after its source file."""
    import importlib

    try:
        context = importlib.import_module("ray.train.v2._internal.execution.context")
    except ImportError:
        return
    for name in ("ray.train", context.__file__, context.__name__):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_loop(config: dict) -> None:
    """Ray Train's per-worker function (also the body of a restarted worker group)."""
    import ray.train
    import ray.train.torch as rtt
    import torch.distributed as dist

    from pretrain.checkpoints import save_checkpoint

    _quiet_reports()
    cfg, source, spec = TrainConfig(**config["cfg"]), config["source"], config["spec"]
    hook: BatchHook | None = config.get("hook")
    board = config.get("board")
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = rtt.get_device()
    run_dir = Location.parse(config["run_dir"])

    ckpt, ckpt_loc = newest_checkpoint(run_dir)
    start = int(ckpt["step"]) if ckpt is not None else 0
    micro, accum = cfg.micro_batch, cfg.grad_accum
    per_step = micro * accum
    segments = plan_segments(lanes_for_rank(source, rank, world), cfg.seed, rank, start * per_step,
                             (cfg.steps - start) * per_step)
    # the stream's tasks start (processes, imports, first reads) while this rank builds its model
    batches = started(iter_batches(segments, spec, batch_size=micro, data_cpus=cfg.data_cpus))

    model = build_model(cfg, source.classes)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
    if ckpt is not None:
        check_compatible(model, ckpt["model"], ckpt_loc.uri, cfg.model)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["extra"]["scheduler"])
    ddp = rtt.prepare_model(model)
    core = ddp.module if hasattr(ddp, "module") else ddp
    logger = tracking.StepLogger(config["tracking_uri"], config["mlflow_run_id"]) if rank == 0 else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    for step in range(start, cfg.steps):
        torch.manual_seed(item_seed(cfg.seed, "step", step, rank))  # dropout and any other torch draw
        opt.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        losses, items = [], []
        for m in range(accum):
            batch = next(batches)
            if cfg.features_on == "device":
                batch["fbank"] = model_inputs(batch.pop("wave"), batch["id"], batch.pop("epoch").tolist(), spec,
                                              device)
            if hook is not None:
                batch = hook(step, m, rank, batch)
            items.append(batch.pop("id"))
            if cfg.mixup_alpha:  # pairs within this rank's micro-batch: keyed by (seed, step, micro-batch, rank)
                batch["fbank"], batch["target"] = mixup(batch["fbank"], batch["target"], torch.Generator().manual_seed(
                    item_seed(cfg.seed, "mixup", step, m, rank)), alpha=cfg.mixup_alpha)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            gen = torch.Generator().manual_seed(item_seed(cfg.seed, "mask", step, m, rank))
            sync = ddp.no_sync() if world > 1 and m < accum - 1 else contextlib.nullcontext()
            with sync:
                with autocast:
                    out = ddp(batch, generator=gen)
                loss = out["loss"].float()
                (loss / accum).backward()
            losses.append(loss.detach())
            for k, v in out.items():
                if v.numel() == 1:
                    sums[k] = sums.get(k, 0.0) + v.detach().double() / accum
        if cfg.grad_clip:  # before the NaN check, so that its norm travels in the same read
            sums["grad_norm"] = torch.nn.utils.clip_grad_norm_(ddp.parameters(), cfg.grad_clip)
        any_bad, metrics = _read_step(losses, sums, world)
        if any_bad:  # every rank stops here together: no optimizer step on a NaN
            finite = torch.isfinite(torch.stack(losses)).tolist()
            if not all(finite):
                m = finite.index(False)
                bad = {"step": step + 1, "micro_batch": m, "rank": rank, "ids": [str(i) for i in items[m]]}
                run_dir.join(f"nan-rank{rank}.json").write_bytes(json.dumps(bad).encode())
            if logger is not None:
                logger.flush()
            ray.train.report({"step": step + 1, "nan": 1.0})
            return
        opt.step()
        metrics["lr"] = sched.get_last_lr()[0]
        sched.step()
        done = step + 1
        at_checkpoint = done % cfg.checkpoint_every == 0 or done == cfg.steps
        if at_checkpoint:
            if rank == 0:
                _save(save_checkpoint, run_dir, core, opt, sched, done, cfg, source, logger,
                      final=done == cfg.steps)
            if world > 1:
                dist.barrier()
        if logger is not None:
            logger.log(done, metrics, cfg.batch_size)
            if board is not None:
                board.post.remote(done, metrics.get("loss"))  # fire and forget: never waits on the driver
        if at_checkpoint:
            if logger is not None:
                logger.flush()  # every step up to the checkpoint is in MLflow before it counts as reached
            # Only here: a report is a barrier the Ray Train controller settles on its 2 s poll, so
            # reporting every step held training to 0.5 steps/s. MLflow gets every step's metrics.
            ray.train.report({**metrics, "step": done})


def _save(save_checkpoint, run_dir: Location, model, opt, sched, step: int, cfg: TrainConfig, source: Source,
          logger, final: bool) -> None:
    """Write the checkpoint atomically, log it to MLflow when asked, keep the newest few.

    It carries the run config and class map, so evaluation rebuilds the model from this file alone."""
    extra = {"scheduler": sched.state_dict(), "model_name": cfg.model, "config": cfg.model_dump(mode="json"),
             "classes": list(source.classes), "source": source.ref}
    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / checkpoint_name(step))
        save_checkpoint(local, model, opt, step, extra)
        if logger is not None and (cfg.log_checkpoints == "all" or (final and cfg.log_checkpoints == "final")):
            logger.log_artifact(local, "checkpoints")
        run_dir.join("checkpoints", checkpoint_name(step)).upload_from(local)
    for old in list_checkpoints(run_dir)[cfg.keep_checkpoints:]:
        old.filesystem.delete_file(old.path)


# -- the driver ------------------------------------------------------------------------------

# Settings a run may change when it is resumed: they do not change what it learns (a resumed run
# with more steps trains on; the worker count keeps the global batch, and so the loss).
RESUMABLE = frozenset({"steps", "run_name", "tracking_uri", "experiment", "register_as", "storage", "checkpoint_every",
                       "keep_checkpoints", "log_checkpoints", "max_failures", "num_workers", "cpus_per_worker",
                       "data_cpus", "use_gpu", "features_on"})


def _check_same_run(latest: dict, cfg: TrainConfig, source: Source, run_dir: Location) -> None:
    """A run folder resumes only the training it holds: other settings or another snapshot under the
    same run_name would continue its weights on a different task and leave MLflow describing the old one."""
    saved = TrainConfig(**latest["extra"]["config"]).model_dump(mode="json", exclude=RESUMABLE)
    now = cfg.model_dump(mode="json", exclude=RESUMABLE)
    changed = [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in now if saved.get(k) != now[k]]
    if latest["extra"].get("source", source.ref) != source.ref:
        changed.append(f"dataset snapshot: {latest['extra']['source']} -> {source.ref}")
    if changed:
        raise RoomtoneError(f"run folder {run_dir.uri} holds a run trained with other settings ({'; '.join(changed)})",
                            "give another run_name (or none: the default name is one per config and snapshot), "
                            "or restore these settings to resume it")


def default_run_name(cfg: TrainConfig, source: Source) -> str:
    """Same config on the same snapshot -> same name -> re-running resumes it."""
    import hashlib

    body = json.dumps({**cfg.model_dump(mode="json", exclude={"run_name", "tracking_uri"}), "source": source.ref},
                      sort_keys=True)
    what = cfg.model if cfg.model.startswith(f"{cfg.method}-") else f"{cfg.method}-{cfg.model}"  # not ssast-ssast-tiny
    return f"{what}-{source.name}-{hashlib.sha256(body.encode()).hexdigest()[:10]}"


def _artifact_root(catalog: Catalog) -> str:
    """Artifacts of a store without a server (SQLite, Postgres) go beside the datasets."""
    root = catalog.config.root_location
    return root.join("mlflow-artifacts").uri if root.is_s3 else Path(root.uri).resolve().joinpath(
        "mlflow-artifacts").as_uri()


def _check_resources(cfg: TrainConfig, resources: dict) -> bool:
    """Whether the workers train on GPUs, once the cluster holds what they need (an autoscaling
    cluster is asked for it first: idle, it may have no workers at all)."""
    use_gpu = bool(resources.get("GPU", 0)) if cfg.use_gpu is None else cfg.use_gpu
    worker = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    resources = scale_to([worker] * cfg.num_workers + ([{"CPU": cfg.data_cpus}] if cfg.data_cpus else []))
    grow = f"; an autoscaling cluster is waited for up to {SCALE_UP_ENV} seconds (default {SCALE_UP_DEFAULT_S:.0f})"
    gpus = int(resources.get("GPU", 0))
    if use_gpu and gpus < cfg.num_workers:
        raise RoomtoneError(f"{cfg.num_workers} GPU workers asked for but the cluster has {gpus} GPUs",
                            "lower num_workers or set use_gpu: false" + grow)
    cpus = resources.get("CPU", 0)
    if cfg.num_workers * cfg.cpus_per_worker + cfg.data_cpus > cpus:
        raise RoomtoneError(f"{cfg.num_workers} workers x {cfg.cpus_per_worker} CPUs plus {cfg.data_cpus} for Ray "
                            f"Data need more than the cluster's {cpus:g} CPUs (training would wait forever)",
                            "lower num_workers / cpus_per_worker / data_cpus" + grow)
    return use_gpu


def run_training(cfg: TrainConfig, catalog: Catalog, *, address: str | None = None,
                 hook: BatchHook | None = None, show_progress: bool = False) -> TrainResult:
    """Train ``cfg`` on Ray; resumes the run folder's newest checkpoint if there is one.

    show_progress: a progress bar (steps, loss, time left) fed by rank 0 while it trains."""
    import ray
    from ray.train import FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from catalog.cluster import connect

    # workers run in other folders: a relative teacher or tokenizer path must reach them absolute
    cfg = cfg.model_copy(update={k: Location.parse(v).uri for k in ("teacher", "tokenizer") if (v := getattr(cfg, k))})
    source = open_source(catalog, cfg.dataset, cfg.split, cfg.family)
    spec = InputSpec(cfg.family, cfg.clip_seconds, cfg.sample_rate, cfg.seed, source.classes,
                     augment=tuple(cfg.augment), spec_augment=bool(cfg.spec_augment), features_on=cfg.features_on)
    if cfg.family != "seld" and spec.preset().sample_rate != cfg.sample_rate:
        raise RoomtoneError(f"sample_rate={cfg.sample_rate} but the {cfg.family} features expect "
                            f"{spec.preset().sample_rate} Hz", f"set sample_rate: {spec.preset().sample_rate}")
    model = build_model(cfg, source.classes)
    run_name = cfg.run_name or default_run_name(cfg, source)
    storage = Location.parse(cfg.storage) if cfg.storage else catalog.config.root_location.join("runs")
    run_dir = storage.join(run_name)
    fresh = not run_dir.exists()
    run_dir.makedirs()
    run_dir.check_writable()
    latest, latest_loc = load_latest(run_dir, model, cfg.model)  # another model's fails here, before Ray
    if latest:
        _check_same_run(latest, cfg, source, run_dir)
    uri = tracking.check_reachable(tracking.tracking_uri(catalog.config, cfg.tracking_uri))
    done = tracking.finished_run(run_dir, uri) if latest and int(latest["step"]) >= cfg.steps else None
    if done:
        return TrainResult(run_name, run_dir.uri, done[0], uri, latest_loc.uri, int(latest["step"]), done[1],
                           reused=True)
    for old in run_dir.list_files(".json"):
        if old.name.startswith("nan-rank"):
            old.filesystem.delete_file(old.path)
    try:
        use_gpu = _check_resources(cfg, connect(address))
    except RoomtoneError:
        if fresh:  # a refused first attempt leaves no empty run folder behind
            run_dir.remove_empty()
        raise

    artifacts = None if uri.startswith(("http://", "https://")) else _artifact_root(catalog)  # a server keeps its own
    params = {**cfg.model_dump(mode="json"), "dataset_ref": source.ref, "run_dir": run_dir.uri,
              "model_config": _model_config(model)}
    run_id = tracking.open_run(uri, cfg.experiment, run_name, run_dir, params, [source], artifacts)
    if latest and latest["extra"]["config"].get("steps") != cfg.steps:  # the param keeps the first run's
        tracking.set_tags(uri, run_id, {"roomtone.steps": cfg.steps})

    board = ray.remote(num_cpus=0)(_Board).remote() if show_progress else None
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"cfg": cfg.model_dump(), "source": source, "spec": spec, "run_dir": run_dir.uri,
                           "tracking_uri": uri, "mlflow_run_id": run_id, "hook": hook, "board": board},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(name=run_name, storage_path=str(Path(tempfile.gettempdir()) / "roomtone-ray-train"),
                             failure_config=FailureConfig(max_failures=cfg.max_failures),
                             logging_config=LoggingConfig(log_level="WARNING")),  # no per-run INFO chatter
    )
    try:
        _fit(trainer, cfg, int(latest["step"]) if latest else 0, board)
    except (KeyboardInterrupt, SystemExit):  # Ray Train answers Ctrl-C by aborting the run and sys.exit()
        tracking.finish_run(uri, run_id, None, None, None, status="KILLED")
        kept = list_checkpoints(run_dir)
        raise RoomtoneError(f"training {run_name} was interrupted; "
                            + (f"its newest checkpoint is {kept[0].name}" if kept else "it wrote no checkpoint yet"),
                            f"run the same command again: it resumes from {run_dir.uri}") from None
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors; one message with the cause
        cause = _root_cause(exc)
        tracking.finish_run(uri, run_id, None, None, None, status="FAILED")
        if isinstance(cause, RoomtoneError):
            raise cause from None
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else ""
        raise RoomtoneError(f"training {run_name} failed: {type(cause).__name__}: {detail}",
                            f"fix the cause and run again: it resumes from the newest checkpoint in {run_dir.uri}"
                            ) from exc
    nan = [json.loads(l.read_bytes()) for l in run_dir.list_files(".json") if l.name.startswith("nan-rank")]
    if nan:
        first = min(nan, key=lambda n: (n["step"], n["rank"]))
        tracking.finish_run(uri, run_id, None, None, None, status="FAILED")
        last = list_checkpoints(run_dir)
        kept = f"the last good checkpoint is {last[0].uri}" if last else "no checkpoint was written before it"
        raise RoomtoneError(f"the loss became NaN/inf at step {first['step']} (rank {first['rank']}, micro-batch "
                            f"{first['micro_batch']}, items {', '.join(first['ids'][:8])}); training stopped and "
                            f"{kept}", "lower lr, raise warmup_steps or set grad_clip; check those items")
    ckpt, final = load_latest(run_dir, model, cfg.model)
    model.load_state_dict(ckpt["model"])
    version = tracking.finish_run(uri, run_id, model.encoder, cfg.register_as or f"roomtone-{cfg.model}", None)
    return TrainResult(run_name, run_dir.uri, run_id, uri, final.uri, int(ckpt["step"]), version)


class _Board:
    """Rank 0's newest (step, loss), read by the driver's progress bar (a zero-CPU Ray actor)."""

    def __init__(self):
        self.last: tuple[int, float | None] = (0, None)

    def post(self, step: int, loss: float | None) -> None:
        self.last = (step, loss)

    def read(self) -> tuple[int, float | None]:
        return self.last


def _fit(trainer, cfg: TrainConfig, start: int, board) -> None:
    """``trainer.fit()``; with a board, under a progress bar that a thread refreshes from it."""
    if board is None:
        trainer.fit()
        return
    import ray

    from catalog.progress import progress_bar

    stop = threading.Event()
    with progress_bar("steps") as progress:
        bar = progress.add_task(f"training {cfg.model}", total=cfg.steps, completed=start,
                                note=" · starting Ray Train workers")

        def refresh() -> None:
            while True:
                last = stop.wait(0.5)  # one more read after fit() returns: the bar ends on the final step
                try:
                    step, loss = ray.get(board.read.remote(), timeout=10)
                except Exception:  # noqa: BLE001 - the bar is a view: a lost board ends it, not the run
                    return
                if step:
                    progress.update(bar, completed=step, note=" · loss " + ("nan" if loss is None else f"{loss:.4g}"))
                if last:
                    return

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            trainer.fit()
        finally:
            stop.set()
            thread.join()
            ray.kill(board)


def _model_config(model) -> dict:
    conf = getattr(model, "config", None)
    if conf is None:
        return {}
    return conf.model_dump(mode="json") if hasattr(conf, "model_dump") else dict(vars(conf))


def _root_cause(exc: BaseException) -> BaseException:
    """The first worker's own exception (a RoomtoneError stays one), else the innermost cause."""
    failures = getattr(exc, "worker_failures", None)
    if failures:
        exc = failures[min(failures)]
    while getattr(exc, "cause", None) is not None or exc.__cause__ is not None:
        exc = getattr(exc, "cause", None) or exc.__cause__
    return exc
