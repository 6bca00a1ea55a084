"""features_on="device": the loader stops at cropped waves and each rank featurises its own
batches; the rank must see the same model inputs and targets as when the loader featurises."""

import math

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from pretrain.config import TrainConfig
from pretrain.data import InputSpec, model_inputs, open_source
from pretrain.train import run_training
from tests.pretrain.test_data import ingest_sonic_pi

TINY = dict(batch_size=3, steps=3, checkpoint_every=3, warmup_steps=1, cpus_per_worker=0.5, max_failures=0,
            log_checkpoints="none", model_overrides={"dim": 64, "depth": 1, "heads": 2})
STEPS = [{"name": "gain", "p": 0.5}, {"name": "noise", "p": 0.5}, {"name": "shift"}]


@pytest.fixture(scope="module")
def events(tmp_path_factory, ray_cluster):
    return ingest_sonic_pi(tmp_path_factory.mktemp("device"), per_label=4, labels=2, max_seconds=3.0)


def seen_batches(catalog, cfg: TrainConfig, folder) -> tuple[list[dict], list[float]]:
    """Every micro-batch the rank hands the model, in order, and the run's logged losses."""
    folder.mkdir()

    def keep(step, micro, rank, batch):
        torch.save(batch, folder / f"{step:03d}-{micro}.pt")
        return batch

    result = run_training(cfg, catalog, hook=keep)
    history = MlflowClient(result.tracking_uri).get_metric_history(result.mlflow_run_id, "loss")
    return [torch.load(p, weights_only=True) for p in sorted(folder.iterdir())], [m.value for m in history]


@pytest.mark.parametrize("family", ["tagging", "seld"])
def test_the_rank_sees_the_same_batches_whichever_side_featurises(family, events, scenes, tmp_path):
    """Bit for bit on CPU (features, SELD targets turned and shifted with the audio, SpecAugment),
    and the device-side run trains: its logged losses are finite."""
    # 8 tagging rows (6 scenes) in batches of 3 (4): one batch straddles the end of epoch 0,
    # so the device side must key each item by its own epoch
    if family == "tagging":
        catalog, base = events, dict(TINY, method="supervised", model="tagging-tiny", dataset="events",
                                     clip_seconds=0.64, augment=STEPS)
    else:
        catalog, base = scenes, dict(TINY, method="supervised", model="seld-tiny", dataset="scenes", batch_size=4,
                                     steps=2, checkpoint_every=2, clip_seconds=1.0, augment=[*STEPS, {"name": "rotate"}],
                                     spec_augment=True)
    loader, _ = seen_batches(catalog, TrainConfig(**base, run_name=f"{family}-loader"), tmp_path / "loader")
    device, losses = seen_batches(catalog, TrainConfig(**base, features_on="device", run_name=f"{family}-device"),
                                  tmp_path / "device")
    assert len(device) == len(loader) == base["steps"]
    assert sum(len(b["id"]) for b in loader) > open_source(catalog, base["dataset"], "train", family).rows
    for a, b in zip(loader, device):
        assert a["id"] == b["id"] and a.keys() == b.keys()
        torch.testing.assert_close(b["fbank"], a["fbank"], rtol=0, atol=0)
        for key in {"target", "reference"} & a.keys():
            assert torch.equal(a[key], b[key])
    assert len(losses) == base["steps"] and all(math.isfinite(v) for v in losses)


def waves(family: str) -> tuple[torch.Tensor, InputSpec]:
    rng = np.random.default_rng(0)
    if family == "seld":
        spec = InputSpec("seld", 1.0, 24_000, 5, ("a", "b"), augment=(*STEPS, {"name": "rotate"}), spec_augment=True)
        return torch.from_numpy(rng.standard_normal((4, 4, spec.samples), dtype=np.float32) * 0.1), spec
    spec = InputSpec("tagging", 1.0, 16_000, 5, ("a", "b"), augment=(*STEPS, {"name": "speed"}), spec_augment=True)
    return torch.from_numpy(rng.standard_normal((4, spec.samples), dtype=np.float32) * 0.1), spec


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("family", ["tagging", "seld"])
def test_features_on_cuda_match_the_cpu(family):
    wave, spec = waves(family)
    ids, epochs = [f"c{i}" for i in range(len(wave))], [0, 0, 1, 1]
    cpu = model_inputs(wave, ids, epochs, spec)
    cuda = model_inputs(wave, ids, epochs, spec, "cuda")
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=0, atol=1e-3)


def test_features_on_is_checked_at_the_door():
    with pytest.raises(ValidationError, match=r"features_on\n.*'loader' or 'device'"):
        TrainConfig(features_on="gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loader_batches_are_pinned_on_a_gpu_worker():
    """From pinned memory the loop's non_blocking copy overlaps the device's work; from pageable
    memory it waited for the previous step's kernels."""
    from pretrain.data import _collate_class

    batch = _collate_class()()({"id": np.array(["a", "b"]), "fbank": np.zeros((2, 4, 8), np.float32)})
    assert batch["id"] == ["a", "b"] and batch["fbank"].is_pinned()
