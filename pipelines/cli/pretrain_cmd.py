"""``roomtone pretrain`` and ``roomtone eval``: training runs on Ray Train, tracked in MLflow."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
import yaml

from catalog.errors import RoomtoneError
from pipelines.cli.common import console, flag, print_json, state
from pipelines.configs import load_config


class Method(str, Enum):
    ssast = "ssast"
    beats = "beats"
    supervised = "supervised"


class Mode(str, Enum):
    probe = "probe"
    finetune = "finetune"
    seld = "seld"


def parse_sets(items: list[str] | None) -> dict:
    """``--set a=1 --set model_overrides.depth=2`` -> {"a": 1, "model_overrides": {"depth": 2}} (YAML values)."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RoomtoneError(f"--set {item!r} is not KEY=VALUE", "write e.g. --set steps=100")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def with_options(sets: dict, options: dict) -> dict:
    """--set values and the options actually given (an option left out must not erase its --set:
    `--set steps=6` without --steps trains 6 steps); one field given both ways, differently, is refused."""
    given = {k: v for k, v in options.items() if v is not None}
    twice = [f"{k} is {v} by its option or argument and {sets[k]} by --set" for k, v in given.items()
             if k in sets and sets[k] != v]
    if twice:
        raise RoomtoneError(f"given twice, differently: {'; '.join(twice)}", "give each field once")
    return {**sets, **given}


def pretrain(
    method: Method = typer.Argument(..., help="ssast, beats (self-supervised) or supervised (tagging-*/seld-*)."),
    dataset: str = typer.Option(None, "--dataset", "-d", metavar="NAME[@SNAPSHOT]", help="Catalog dataset."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with TrainConfig fields."),
    model: str = typer.Option(None, help="Registry name (default: ssast-tiny, beats-tiny or tagging-tiny; e.g. seld-small)."),
    steps: int = typer.Option(None, help="Optimizer steps (default 200)."),
    num_workers: int = typer.Option(None, help="Ray Train workers, one DDP rank each (default 1)."),
    sets: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Any TrainConfig field; repeatable."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the result as JSON."),
):
    """Pretrain (SSAST, BEATs) or train (tagging, SELD) a model on a catalog dataset with Ray Train.

    Streams the snapshot's shards through Ray Data, trains with DDP (gloo on CPU, NCCL + bf16
    on GPUs), checkpoints to <root>/runs/<run_name> (or --set storage=s3://...), logs params,
    metrics, the dataset snapshot and the final encoder to MLflow (default: SQLite under the
    root; MLFLOW_TRACKING_URI for a server). Re-running the same config resumes it.
    On-the-fly augmentation: --set 'augment=[{name: gain, p: 0.5}, ...]' (gain, noise, shift,
    speed; rotate for SELD), --set spec_augment=true (on by default for tagging), --set
    mixup_alpha=0.4 (tagging).

    Example: roomtone pretrain ssast --dataset scenes --steps 100 --set batch_size=8

    Example: roomtone pretrain supervised --model seld-tiny --dataset scenes --set 'augment=[{name: rotate}]'
    """
    from pretrain.config import TrainConfig
    from pretrain.train import run_training

    options = {"method": method.value, "dataset": dataset, "steps": steps, "num_workers": num_workers, "model": model}
    cfg = load_config(TrainConfig, config, **with_options(parse_sets(sets), options))
    result = run_training(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(result.__dict__)
    else:
        console.print(f"trained [bold]{result.run_name}[/] for {result.steps} steps; checkpoint {result.checkpoint}; "
                      f"MLflow run {result.mlflow_run_id}"
                      + (f"; registered encoder version {result.model_version}" if result.model_version else "")
                      + f"\nevaluate with: roomtone eval {'seld' if cfg.family == 'seld' else 'probe'} {result.run_dir} "
                        "--dataset DATASET", highlight=False)


def evaluate(
    mode: Mode = typer.Argument(..., help="probe (frozen encoder), finetune, or seld (SELD runs)."),
    checkpoint: str = typer.Argument(..., help="A run folder (its newest checkpoint) or a step-*.pt file."),
    dataset: str = typer.Option(None, "--dataset", "-d", metavar="NAME[@SNAPSHOT]",
                                help="Labelled catalog dataset with train and test splits."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with EvalConfig fields."),
    sets: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Any EvalConfig field; repeatable."),
    json_out: bool = flag("--json", help="Print the metrics as JSON."),
):
    """Evaluate a trained run; the metrics are logged to its MLflow run.

    The same evaluation again (settings, checkpoint and snapshots) returns the result kept in
    the run folder and logs nothing twice.

    Example: roomtone eval probe roomtone-home/runs/NAME --dataset events
    """
    from pretrain.config import EvalConfig
    from pretrain.evaluate import run_eval

    options = {"mode": mode.value, "checkpoint": checkpoint, "dataset": dataset}
    cfg = load_config(EvalConfig, config, **with_options(parse_sets(sets), options))
    result = run_eval(cfg, state.catalog(), show_progress=not json_out)
    if json_out:
        print_json(result)
    else:
        for k, v in result["metrics"].items():
            console.print(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}", highlight=False)
        if result["reused"]:
            console.print("reused: the same evaluation of this checkpoint on these snapshots was kept in its "
                          "run folder (evals/); nothing was computed or logged again", highlight=False)
        elif result["mlflow_run_id"]:
            console.print(f"logged to MLflow run {result['mlflow_run_id']}", highlight=False)
        else:
            console.print("not logged to MLflow: the checkpoint has no run; pass --set mlflow_run_id=ID",
                          highlight=False)
