"""Evaluate a trained run on a labelled catalog dataset; results go to the run's MLflow run.

* probe: the frozen encoder's mean-pooled embeddings of every clip (one seeded-free crop
  from the start, so the result does not depend on the worker count), a linear classifier
  on the train split, accuracy (single-label data) or mAP (multi-label) on the test split;
* finetune: the encoder plus a linear head trained end to end on streamed train batches;
* seld: a supervised SELD run's multi-ACCDOA output decoded and scored with the DCASE2023
  (segment) metric of `simulation.seld`, and DCASE2024 (frame) when it predicts distances.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from catalog.errors import RoomtoneError
from catalog import Location
from pretrain import tracking
from pretrain.config import EvalConfig
from pretrain.data import InputSpec, Source, iter_batches, lanes_for_rank, open_source, plan_segments
from catalog.progress import progress_bar
from pretrain.train import load_trained
from simulation.seeding import item_seed

if TYPE_CHECKING:
    from catalog.catalog import Catalog


def _batches(source: Source, spec: InputSpec, batch_size: int):
    """Every clip of one split once, in batches."""
    segments = plan_segments(lanes_for_rank(source, 0, 1), spec.seed, 0, 0, source.rows)
    return iter_batches(segments, spec, batch_size=batch_size)


def _split(source: Source, spec: InputSpec, batch_size: int, progress, what: str):
    """`_batches`, counted on a bar."""
    return _tracked(_batches(source, spec, batch_size), progress, f"{what} {source.split}", source.rows)


def _tracked(batches, progress, what: str, total: int):
    """`batches`, counting their clips on a bar of `progress` (a disabled Progress shows nothing)."""
    task = progress.add_task(what, total=total, note="")
    for b in batches:
        yield b
        progress.advance(task, len(b["fbank"]))


@torch.no_grad()
def embed(encoder, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-pooled embeddings (N, dim) and targets (N, C) of every batch."""
    xs, ys = [], []
    for b in batches:
        xs.append(encoder.embed(b["fbank"]).float())
        ys.append(b["target"])
    return torch.cat(xs), torch.cat(ys)


def _scores(logits: torch.Tensor, target: torch.Tensor, single: bool) -> dict[str, float]:
    if single:
        return {"accuracy": float((logits.argmax(1) == target.argmax(1)).float().mean())}
    return {"map": mean_average_precision(logits, target)}


def mean_average_precision(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Average precision per class with at least one positive, averaged (AudioSet's mAP)."""
    aps = []
    for c in range(target.shape[1]):
        pos = target[:, c] > 0.5
        if pos.any():
            order = torch.argsort(scores[:, c], descending=True)
            hits = pos[order].float()
            precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
            aps.append(float((precision * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def linear_probe(train_x, train_y, test_x, test_y, *, steps: int, lr: float, weight_decay: float,
                 seed: int) -> dict[str, float | int]:
    """A linear classifier on standardised frozen embeddings; softmax for single-label data, else sigmoid.

    The clip counts come back with the scores: on a handful of test clips an accuracy says little."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    single = bool((train_y.sum(1) == 1).all() and (test_y.sum(1) == 1).all())
    g = torch.Generator().manual_seed(item_seed(seed, "probe"))
    head = torch.nn.Linear(train_x.shape[1], train_y.shape[1])
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.01)
        head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        logits = head(train_x)
        loss = F.cross_entropy(logits, train_y.argmax(1)) if single else \
            F.binary_cross_entropy_with_logits(logits, train_y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return {**_scores(head(test_x), test_y, single), "train_loss": float(loss), "train_clips": len(train_x),
                "test_clips": len(test_x)}


def _finetune(model, cfg: EvalConfig, train: Source, test: Source, spec: InputSpec,
              progress) -> dict[str, float | int]:
    """Encoder + linear head, trained on the streamed train split; scored on the test split, with the
    last step's loss and the test clip count beside the score."""
    encoder = model.encoder.train()
    with torch.random.fork_rng():
        torch.manual_seed(item_seed(cfg.seed, "finetune"))
        dim = encoder.embed(torch.zeros(1, spec.frames, spec.preset().num_mel_bins)).shape[-1]
        head = torch.nn.Linear(dim, len(train.classes))
    opt = torch.optim.AdamW([{"params": encoder.parameters(), "lr": cfg.lr / 10},
                             {"params": head.parameters(), "lr": cfg.lr}], weight_decay=cfg.weight_decay)
    segments = plan_segments(lanes_for_rank(train, 0, 1), cfg.seed, 0, 0, cfg.steps * cfg.batch_size)
    train_spec = InputSpec(**{**spec.__dict__, "random_crop": True})
    single = None
    for b in _tracked(iter_batches(segments, train_spec, batch_size=cfg.batch_size), progress, "fine-tuning",
                      cfg.steps * cfg.batch_size):
        single = bool((b["target"].sum(1) == 1).all()) if single is None else single
        opt.zero_grad()
        logits = head(encoder.embed(b["fbank"]))
        loss = F.cross_entropy(logits, b["target"].argmax(1)) if single else \
            F.binary_cross_entropy_with_logits(logits, b["target"])
        loss.backward()
        opt.step()
    encoder.eval()
    with torch.no_grad():
        outs, ys = [], []
        for b in _split(test, spec, cfg.batch_size, progress, "scoring"):
            outs.append(head(encoder.embed(b["fbank"])))
            ys.append(b["target"])
        return {**_scores(torch.cat(outs), torch.cat(ys), bool(single)), "train_loss": float(loss),
                "test_clips": sum(len(y) for y in ys)}


@torch.no_grad()
def seld_scores(model, batches, n_classes: int) -> dict[str, float]:
    """DCASE2023 (segment) SELD scores of a SELD model on labelled batches, plus DCASE2024 (frame)
    scores when the model also predicts distances (a fourth value per track)."""
    from simulation.seld import dcase2023_scores, dcase2024_scores, decode_multi_accdoa

    refs, preds = [], []
    for b in batches:
        frames = b["reference"].shape[1]
        out = model.predict(b["fbank"], frames).float().numpy()  # (B, frames, 3, 3, C) multi-ACCDOA
        for o, t in zip(out, b["reference"].numpy()):
            preds.append(decode_multi_accdoa(o))
            refs.append(decode_multi_accdoa(t))
    f23 = dcase2023_scores(refs, preds, n_classes)
    out = {"seld_2023": f23.seld, "er_2023": f23.er, "f_2023": f23.f, "le_2023": f23.le, "lr_2023": f23.lr}
    if all(p.distance is not None for p in preds) and all(r.distance is not None for r in refs):
        f24 = dcase2024_scores(refs, preds, n_classes)
        out.update({"seld_2024": f24.seld, "f_2024": f24.f, "doa_error_2024": f24.doa_error,
                    "rel_dist_error_2024": f24.rel_dist_error})
    return out


def run_eval(cfg: EvalConfig, catalog: Catalog, *, show_progress: bool = False) -> dict:
    """Run one evaluation; log it to the training run's MLflow run; return the metrics.

    The result is kept in the run folder (``evals/``), keyed by the settings, the checkpoint,
    the snapshots read and the MLflow run: the same evaluation again returns it with
    ``reused`` set, logging nothing twice, as an unchanged stage of a spec is reused.
    show_progress: bars counting the clips embedded, fine-tuned on and scored."""
    from catalog.cluster import connect

    model, train_cfg, ckpt = load_trained(cfg.checkpoint)
    if cfg.mode == "seld" and train_cfg.family != "seld":
        raise RoomtoneError(f"{ckpt.uri} is a {train_cfg.model} run, not a SELD one",
                            "probe its encoder instead: roomtone eval probe RUN (mode: probe in a spec)")
    clip = cfg.clip_seconds or train_cfg.clip_seconds
    family = "seld" if cfg.mode == "seld" else "tagging"
    splits = (cfg.test_split,) if cfg.mode == "seld" else (cfg.train_split, cfg.test_split)
    sources = {split: open_source(catalog, cfg.dataset, split, family, f"{cfg.mode} evaluation")
               for split in splits}  # before Ray starts
    test = sources[cfg.test_split]
    source = test if cfg.mode == "seld" else sources[cfg.train_split]  # whose class map the scores use
    run_id, uri = cfg.mlflow_run_id, cfg.tracking_uri  # where the scores go, checked before the work
    marker = ckpt.parent.parent.join(tracking.RUN_FILE)
    if run_id is None and marker.exists():
        saved = json.loads(marker.read_bytes())
        run_id, uri = saved["run_id"], uri or saved["tracking_uri"]
    if run_id:
        uri = tracking.check_reachable(uri or tracking.tracking_uri(catalog.config))
    kept = _kept_result(cfg, ckpt, [s.ref for s in sources.values()], run_id, uri)
    if kept is not None and kept.exists():
        return {**json.loads(kept.read_bytes()), "reused": True}
    connect()
    with progress_bar("clips", show=show_progress) as progress:
        if cfg.mode == "seld":
            spec = InputSpec("seld", clip, train_cfg.sample_rate, cfg.seed, source.classes, random_crop=False)
            metrics = seld_scores(model, _split(test, spec, cfg.batch_size, progress, "scoring"), len(source.classes))
        else:
            spec = InputSpec("tagging", clip, train_cfg.sample_rate, cfg.seed, source.classes, random_crop=False,
                             features="beats" if train_cfg.family == "beats" else "ssast")
            if cfg.mode == "probe":
                train_xy, test_xy = (embed(model.encoder, _split(s, spec, cfg.batch_size, progress, "embedding"))
                                     for s in (source, test))
                metrics = linear_probe(*train_xy, *test_xy, steps=cfg.steps, lr=cfg.lr,
                                       weight_decay=cfg.weight_decay, seed=cfg.seed)
            else:
                metrics = _finetune(model, cfg, source, test, spec, progress)
    name = f"eval/{cfg.mode}/{source.name}"
    out = {f"{name}/{k}": v for k, v in metrics.items()}
    if run_id:
        tracking.log_inputs(uri, run_id, list(sources.values()), f"eval/{cfg.mode}")
        tracking.log_eval(uri, run_id, out,
                          {f"{name}.dataset": source.ref, f"{name}.checkpoint": ckpt.uri,
                           f"{name}.config": cfg.model_dump(mode="json")})
    result = {"checkpoint": ckpt.uri, "dataset": source.ref, "mlflow_run_id": run_id, "metrics": out}
    if kept is not None:
        kept.write_bytes(json.dumps(result).encode())  # after the scores are logged: a failed log is redone
    return {**result, "reused": False}


def _kept_result(cfg: EvalConfig, ckpt: Location, refs: list[str], run_id: str | None, uri: str | None):
    """Where a run folder keeps this evaluation's result; None for a checkpoint outside a run folder."""
    if ckpt.parent.name != "checkpoints":
        return None
    settings = cfg.model_dump(mode="json", exclude={"checkpoint", "mlflow_run_id", "tracking_uri"})
    key = json.dumps([settings, ckpt.uri, refs, run_id, uri], sort_keys=True)
    return ckpt.parent.parent.join("evals", f"{cfg.mode}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json")
