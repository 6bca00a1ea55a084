"""BEATs iterations from configs alone: iteration 1 -> a tokenizer distilled from it (`teacher`) ->
iteration 2 labelled by that tokenizer (`tokenizer`), each built from run folders as
`roomtone pretrain beats --set ...` builds them."""

from pathlib import Path

import pytest
import torch

from catalog import RoomtoneError
from pretrain.checkpoints import load_checkpoint
from pretrain.config import TrainConfig
from pretrain.train import build_model
from tests.pretrain.test_learning import random_init_checkpoint

SMALL = dict(method="beats", clip_seconds=0.64, model_overrides={"dim": 64, "depth": 1, "heads": 2})


def saved_run(folder: Path, cfg: TrainConfig) -> str:
    """A run folder holding one checkpoint of `cfg`'s model, as training leaves it."""
    random_init_checkpoint(cfg, folder)
    return str(folder)


def test_each_iteration_builds_from_the_previous_run(tmp_path):
    fbank = torch.randn(2, 64, 128)
    first = saved_run(tmp_path / "it1", TrainConfig(**SMALL))
    tok_cfg = TrainConfig(**SMALL, model="beats-tokenizer-tiny", teacher=first)
    distil = build_model(tok_cfg, ())
    out = distil({"fbank": fbank})
    assert torch.isfinite(out["loss"]) and out["cosine"] > 0
    assert not any(p.requires_grad for p in distil.teacher.parameters())  # the teacher stays frozen
    teacher_state = load_checkpoint(str(Path(first) / "checkpoints" / "step-00000000.pt"))["model"]
    assert torch.equal(distil.teacher.state_dict()["patch_embedding.weight"],
                       teacher_state["encoder.patch_embedding.weight"])

    tok_run = saved_run(tmp_path / "tok", tok_cfg)
    second = build_model(TrainConfig(**SMALL, tokenizer=tok_run), ())
    assert second.config.tokenizer == "distilled"
    saved = load_checkpoint(str(Path(tok_run) / "checkpoints" / "step-00000000.pt"))["model"]
    codebook = second.tokenizer.state_dict()["quantize.embedding.weight"]
    assert torch.equal(codebook, saved["tokenizer.quantize.embedding.weight"])
    assert torch.isfinite(second({"fbank": fbank})["loss"])

    with pytest.raises(RoomtoneError, match="comes from a beats-tokenizer-tiny run, not a beats-\\* one"):
        build_model(TrainConfig(**SMALL, model="beats-tokenizer-tiny", teacher=tok_run), ())
    with pytest.raises(RoomtoneError, match="comes from a beats-tiny run, not a beats-tokenizer-\\* one"):
        build_model(TrainConfig(**SMALL, tokenizer=first), ())
