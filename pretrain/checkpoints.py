"""Checkpoints: roomtone's own (hashed, `weights_only` loadable) and the official SSAST and BEATs layouts.

Own files: a `ROOMTONE-CKPT/1 <sha256>` header line, then a `torch.save` payload holding the
registry name, the config (`model.config.model_dump()`), the state dict, the optimizer state,
the step and `extra`. The hash covers the payload, so a truncated or corrupted file fails
loudly before unpickling, and loading uses `torch.load(weights_only=True)`. Local paths and
`s3://` URIs go through `catalog.Location`, which writes whole files only.

Official layouts (key names and shapes in `../shared/reference/pretrain.md`, section 4):
SSAST is a flat `nn.DataParallel` state dict (`module.v.*` for the DeiT, `module.cpredlayer`,
`module.gpredlayer`, `module.mask_embed`, the input size in `module.p_input_fdim`/`_tdim`, and the
DeiT's unused 1000-class heads, which the official model owns and a strict load needs);
BEATs is `{"cfg", "model"}` with the encoder's (or a tokenizer's) state dict.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle

import torch
import torch.nn as nn
from torch import Tensor

from catalog import Location
from catalog.errors import RoomtoneError

from .models.beats import BeatsConfig, BeatsEncoder, BeatsPretrain, BeatsPretrainConfig
from .models.encoder import SIZES, EncoderConfig
from .models.ssast import SSAST, SSASTConfig
from .models.tokenizer import BeatsTokenizer, BeatsTokenizerTraining

__all__ = ["save_checkpoint", "load_checkpoint", "encoder_state", "export_ssast", "load_ssast", "export_beats", "load_beats"]

_MAGIC = b"ROOMTONE-CKPT/1 "
_PAYLOAD_KEYS = ("name", "kind", "config", "model", "optimizer", "step", "extra")
_DEIT_CLASSES = 1000


def _describe(config: dict, name: str | None) -> str:
    enc = config.get("encoder", config)
    size = enc.get("size", "custom")
    dim = enc.get("dim", enc.get("encoder_embed_dim"))
    depth = enc.get("depth", enc.get("encoder_layers"))
    return f"{name or 'model'} (size {size}: dim {dim}, {depth} layers)"


def save_checkpoint(path_or_uri: str | os.PathLike | Location, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0, extra: dict | None = None) -> Location:
    """Write model, optimizer, step and `extra` (plain Python values and tensors) as one whole file."""
    payload = {
        "name": getattr(model, "registry_name", None),
        "kind": type(model).__name__,
        "config": model.config.model_dump(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    loc = Location.parse(path_or_uri)
    loc.write_bytes(_MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    return loc


def load_checkpoint(path_or_uri: str | os.PathLike | Location, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, *, map_location: str | torch.device = "cpu") -> dict:
    """Verify and read a checkpoint; load it into `model` (strictly) and `optimizer` when given.

    Returns the payload dict (`name`, `kind`, `config`, `model`, `optimizer`, `step`, `extra`).
    """
    loc = Location.parse(path_or_uri)
    raw = loc.read_bytes()
    head, sep, data = raw.partition(b"\n")
    if not head.startswith(_MAGIC) or not sep:
        raise RoomtoneError(f"{loc.uri} is not a roomtone checkpoint (no header)",
                            "pass a file written by save_checkpoint; official layouts load with load_ssast/load_beats")
    if hashlib.sha256(data).hexdigest().encode() != head[len(_MAGIC):]:
        raise RoomtoneError(f"checkpoint {loc.uri} is corrupt or truncated (content hash mismatch, {len(raw)} bytes)",
                            "resume from an earlier checkpoint")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:  # weights_only refuses other objects
        raise RoomtoneError(f"{loc.uri} has a roomtone header but no checkpoint under it "
                            f"({str(exc).strip().splitlines()[0]})", "pass a file written by save_checkpoint") from None
    missing = [k for k in _PAYLOAD_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise RoomtoneError(f"{loc.uri} has a roomtone header but lacks {', '.join(missing)}",
                            "pass a file written by save_checkpoint")
    if model is not None:
        mine = model.config.model_dump()
        theirs = payload["config"]
        if _shape_fields(mine) != _shape_fields(theirs) or type(model).__name__ != payload["kind"]:
            raise RoomtoneError(
                f"checkpoint {loc.uri} holds {_describe(theirs, payload['name'])}, "
                f"but the model is {_describe(mine, getattr(model, 'registry_name', None))}",
                "build the model with the checkpoint's name and size")
        model.load_state_dict(payload["model"])
    if optimizer is not None and payload["optimizer"] is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return payload


def encoder_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The encoder's part of an objective's state dict (keys under `encoder.`, prefix removed), for
    `model.encoder.load_pretrained(...)` when fine-tuning a supervised model from a pretraining run."""
    out = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not out:
        raise RoomtoneError("the state dict has no encoder weights (no 'encoder.' keys)",
                            "pass the 'model' entry of a roomtone checkpoint")
    return out


def _shape_fields(config: dict) -> dict:
    """The settings that decide parameter shapes (the encoder's, plus head sizes)."""
    enc = dict(config.get("encoder", {}))
    heads = {k: config[k] for k in ("num_classes", "codebook_size", "code_dim", "decoder_layers", "estimator_layers")
             if k in config}
    drop = {"dropout", "attention_dropout", "dropout_input", "layer_wise_gradient_decay_ratio"}
    return {**{k: v for k, v in enc.items() if k not in drop}, **heads}


# ---------------------------------------------------------------- SSAST


def export_ssast(model: SSAST) -> dict[str, Tensor]:
    """Our SSAST in the official flat `module.`-prefixed layout (loads strictly into the official model)."""
    if not isinstance(model, SSAST):
        raise RoomtoneError(f"export_ssast takes an SSAST model, got {type(model).__name__}",
                            "build it with create_model('ssast-<size>')")
    c = model.config.encoder
    out = {f"module.v.{k}": v.detach().clone() for k, v in model.encoder.state_dict().items()}
    for head in ("head", "head_dist"):  # the DeiT's classifier heads: unused, but part of the official model
        out[f"module.v.{head}.weight"] = torch.zeros(_DEIT_CLASSES, c.dim)
        out[f"module.v.{head}.bias"] = torch.zeros(_DEIT_CLASSES)
    for name in ("cpredlayer", "gpredlayer"):
        for k, v in getattr(model, name).state_dict().items():
            out[f"module.{name}.{k}"] = v.detach().clone()
    out["module.mask_embed"] = model.mask_embed.detach().clone()
    out["module.p_input_fdim"] = torch.tensor(c.n_mels)
    out["module.p_input_tdim"] = torch.tensor(c.max_frames)
    return out


def load_ssast(state_dict: dict[str, Tensor], size: str | None = None) -> SSAST:
    """Build our SSAST from an official-layout state dict; `size` (tiny/small/base) must match when given.

    The official file does not store the size: width, depth and patch shape are read from the
    weights and heads are width / 64, as the DeiTs have.
    """
    need = ("module.v.patch_embed.proj.weight", "module.p_input_fdim", "module.p_input_tdim", "module.v.pos_embed")
    missing = [k for k in need if k not in state_dict]
    if missing:
        raise RoomtoneError(f"not an official SSAST checkpoint: missing {', '.join(missing)}",
                            "pass the flat nn.DataParallel state dict (keys start with 'module.')")
    proj = state_dict["module.v.patch_embed.proj.weight"]
    dim, patch = proj.shape[0], (proj.shape[2], proj.shape[3])
    depth = len({k.split(".")[3] for k in state_dict if k.startswith("module.v.blocks.")})
    found = next((s for s, (d, n, _) in SIZES.items() if (d, n) == (dim, depth)), "custom")
    if size is not None and size != found:
        raise RoomtoneError(f"checkpoint is SSAST size {found} (dim {dim}, {depth} layers), not the requested {size}",
                            f"create the model as ssast-{found} or pass a {size} checkpoint")
    enc = EncoderConfig(size=found, dim=dim, depth=depth, heads=max(dim // 64, 1), n_mels=int(state_dict["module.p_input_fdim"]),
                        max_frames=int(state_dict["module.p_input_tdim"]), patch=patch)
    model = SSAST(SSASTConfig(encoder=enc))
    ours = {}
    for k, v in state_dict.items():
        if not k.startswith("module."):
            raise RoomtoneError(f"key {k!r} lacks the 'module.' prefix", "pass the official nn.DataParallel state dict")
        k = k[len("module."):]
        if k in ("p_input_fdim", "p_input_tdim") or k.startswith(("v.head.", "v.head_dist.")):
            continue
        ours[k.replace("v.", "encoder.", 1) if k.startswith("v.") else k] = v
    model.load_state_dict(ours)
    return model


# ---------------------------------------------------------------- BEATs

_FIXED_CFG = {"conv_bias": False, "activation_fn": "gelu", "layer_norm_first": False}


def export_beats(model: nn.Module) -> dict:
    """{"cfg", "model"} as the released files: a BEATs model's encoder, or a tokenizer with its quantizer."""
    if isinstance(model, (BeatsPretrain, BeatsTokenizerTraining)):
        model = model.tokenizer if isinstance(model, BeatsTokenizerTraining) else model.encoder
    if isinstance(model, BeatsTokenizer):
        state = {k.removeprefix("encoder."): v for k, v in model.state_dict().items() if k.startswith("encoder.")}
        state.update({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")})
        cfg = {**model.config.official(), "quant_n": model.quantize.embedding.weight.shape[0],
               "quant_dim": model.quantize.embedding.weight.shape[1]}
    elif isinstance(model, BeatsEncoder):
        state, cfg = model.state_dict(), model.config.official()
    else:
        raise RoomtoneError(f"export_beats takes a BEATs model, encoder or tokenizer, got {type(model).__name__}",
                            "build it with create_model('beats-<size>')")
    return {"cfg": cfg, "model": {k: v.detach().clone() for k, v in state.items()}}


def load_beats(ckpt: dict, size: str | None = None) -> nn.Module:
    """Our model from a released-layout `{"cfg", "model"}`: a `BeatsPretrain` (its encoder loaded, to
    continue pretraining or fine-tune) or, for tokenizer files, a `BeatsTokenizer`. A fine-tuned
    file's `predictor` is not part of either and is left out."""
    if not isinstance(ckpt, dict) or not {"cfg", "model"} <= set(ckpt):
        raise RoomtoneError("not a BEATs checkpoint: expected a dict with 'cfg' and 'model'",
                            "pass torch.load(<BEATs .pt file>, weights_only=True)")
    cfg, state = ckpt["cfg"], dict(ckpt["model"])
    for k, v in _FIXED_CFG.items():
        if cfg.get(k, v) != v:
            raise RoomtoneError(f"BEATs cfg {k}={cfg[k]!r} is not supported (only {v!r})", "use a released BEATs config")
    fields = set(BeatsConfig.model_fields) - {"size", "n_mels"}
    values = {k: cfg[k] for k in fields if k in cfg}
    dim, depth = values.get("encoder_embed_dim", 768), values.get("encoder_layers", 12)
    found = next((s for s, (d, n, _) in SIZES.items() if (d, n) == (dim, depth)), "custom")
    if size is not None and size != found:
        raise RoomtoneError(f"checkpoint is BEATs size {found} (dim {dim}, {depth} layers), not the requested {size}",
                            f"create the model as beats-{found} or pass a {size} checkpoint")
    config = BeatsConfig(size=found, **values)
    state = {k: v for k, v in state.items() if not k.startswith("predictor.")}
    if any(k.startswith("quantize") for k in state):
        tok = BeatsTokenizer(config, int(cfg.get("quant_n", 1024)), int(cfg.get("quant_dim", 256)))
        enc = {("encoder." + k if not k.startswith("quantize") else k): v for k, v in state.items()}
        tok.load_state_dict(enc)
        return tok
    model = BeatsPretrain(BeatsPretrainConfig(encoder=config))
    model.encoder.load_state_dict(state)
    return model
