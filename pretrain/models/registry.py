"""Model registry: `create_model("ssast-tiny", **overrides)` builds an objective module by name.

A name is `<family>-<size>`; each family's builder turns the size and the overrides into its
config (encoder fields such as `max_frames` or `patch` go to the encoder, the rest to the
objective), so configs stay validated pydantic models and every model has `.config`.
Initial weights: with a `seed` override they come from that seed on a forked RNG (the global
random state is untouched); without one, from the caller's torch RNG (seed it, as training does).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
from pydantic import ValidationError

from catalog.errors import RoomtoneError

from .beats import BeatsConfig, BeatsPretrain, BeatsPretrainConfig
from .encoder import SIZES, EncoderConfig
from .heads import Seld, SeldConfig, Tagging, TaggingConfig
from .ssast import SSAST, SSASTConfig
from .tokenizer import BeatsTokenizerConfig, BeatsTokenizerTraining

__all__ = ["create_model", "list_models", "register_family"]

_FAMILIES: dict[str, Callable[..., nn.Module]] = {}


def register_family(family: str):
    """Register `builder(size, **overrides) -> nn.Module` under `<family>-<size>` for every size."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _FAMILIES[family] = builder
        return builder

    return wrap


def list_models() -> list[str]:
    return [f"{family}-{size}" for family in _FAMILIES for size in SIZES]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; None-valued overrides are dropped so optional settings pass through."""
    family, _, size = name.rpartition("-")
    if family not in _FAMILIES or size not in SIZES:
        raise RoomtoneError(f"unknown model {name!r}", f"use one of {', '.join(list_models())}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        if "seed" in overrides:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(overrides["seed"])
                model = _FAMILIES[family](size, **overrides)
        else:
            model = _FAMILIES[family](size, **overrides)
    except ValidationError as e:
        raise RoomtoneError(f"invalid settings for {name}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}",
                            "fix or drop that override") from e
    except TypeError as e:
        raise RoomtoneError(f"invalid settings for {name}: {e}", "fix or drop that override") from e
    model.registry_name = name  # saved in checkpoints, so errors can name both models
    return model


def split_encoder(size: str, overrides: dict, config=EncoderConfig, **defaults):
    """The encoder config (size preset + encoder-field overrides) and the remaining overrides."""
    fields = set(config.model_fields) - {"size"}
    enc = {**defaults, **{k: v for k, v in overrides.items() if k in fields}}
    return config.sized(size, **enc), {k: v for k, v in overrides.items() if k not in fields}


@register_family("ssast")
def _ssast(size: str, **overrides) -> SSAST:
    enc, rest = split_encoder(size, overrides)
    return SSAST(SSASTConfig(encoder=enc, **rest))


@register_family("tagging")
def _tagging(size: str, **overrides) -> Tagging:
    enc, rest = split_encoder(size, overrides)
    return Tagging(TaggingConfig(encoder=enc, **rest))


@register_family("seld")
def _seld(size: str, **overrides) -> Seld:
    enc, rest = split_encoder(size, overrides, in_chans=7, n_mels=64, max_frames=1008)
    return Seld(SeldConfig(encoder=enc, **rest))


def _beats_encoder(size: str, overrides: dict) -> tuple[BeatsConfig, dict]:
    """BEATs encoder config; the generic `dim`, `depth`, `heads` overrides map to the released names."""
    alias = {"dim": "encoder_embed_dim", "depth": "encoder_layers", "heads": "encoder_attention_heads"}
    overrides = {alias.get(k, k): v for k, v in overrides.items()}
    if "encoder_embed_dim" in overrides:
        overrides.setdefault("encoder_ffn_embed_dim", 4 * overrides["encoder_embed_dim"])
    return split_encoder(size, overrides, BeatsConfig)


@register_family("beats")
def _beats(size: str, tokenizer: nn.Module | None = None, **overrides) -> BeatsPretrain:
    """Iteration 1 (random-projection labels) by default; pass `tokenizer=` a trained BeatsTokenizer for 2+."""
    enc, rest = _beats_encoder(size, overrides)
    kind = "random-projection" if tokenizer is None else "distilled"
    return BeatsPretrain(BeatsPretrainConfig(encoder=enc, tokenizer=kind, **rest), tokenizer)


@register_family("beats-tokenizer")
def _beats_tokenizer(size: str, teacher: nn.Module | None = None, **overrides) -> BeatsTokenizerTraining:
    """Tokenizer distillation from `teacher` (the previous iteration's BEATs encoder)."""
    enc, rest = _beats_encoder(size, overrides)
    return BeatsTokenizerTraining(BeatsTokenizerConfig(encoder=enc, **rest), teacher)
