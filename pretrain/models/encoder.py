"""Patch-based audio transformer (the SSAST / AST backbone: a DeiT with a spectrogram patch embedding).

Input (B, frames, mels), or (B, channels, frames, mels) when `in_chans > 1`, is read as an image
(B, C, mels, frames), so frequency is the conv height and token index = f * time_patches + t,
as SSAST does. Two leading tokens (CLS and distillation, as the DeiT that SSAST builds on) and a
learned positional table sized for `max_frames`; shorter inputs use its first time columns, so
one model takes any clip length up to `max_frames`. Parameter names follow timm's ViT, so the
official SSAST layout is this module's state dict under `module.v.`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from catalog.errors import RoomtoneError

__all__ = ["EncoderConfig", "PatchEncoder", "SIZES", "adapt_input_channels"]

# (dim, depth, heads). tiny is a CI size (the official SSAST tiny is 192-d, 12 layers); small and
# base are the DeiT sizes SSAST uses.
SIZES: dict[str, tuple[int, int, int]] = {"tiny": (128, 3, 4), "small": (384, 12, 6), "base": (768, 12, 12)}


class EncoderConfig(BaseModel):
    """Hyperparameters of a `PatchEncoder`; `size` names the (dim, depth, heads) preset it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: str = "custom"
    dim: int = Field(128, gt=0)
    depth: int = Field(3, gt=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    n_mels: int = Field(128, gt=0)
    max_frames: int = Field(1024, gt=0)
    patch: tuple[int, int] = (16, 16)  # (frequency, time); (128, 2) gives SSAST's frame patches
    in_chans: int = Field(1, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)

    @classmethod
    def sized(cls, size: str, **overrides) -> EncoderConfig:
        if size not in SIZES:
            raise RoomtoneError(f"unknown model size {size!r}", f"use one of {sorted(SIZES)}")
        dim, depth, heads = SIZES[size]
        return cls(**{"size": size, "dim": dim, "depth": depth, "heads": heads, **overrides})

    @property
    def grid(self) -> tuple[int, int]:
        """(frequency patches, time patches) at `max_frames`."""
        return self.n_mels // self.patch[0], self.max_frames // self.patch[1]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise RoomtoneError(f"dim {dim} is not divisible by heads {heads}", "pick heads that divide dim")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)  # fused q, k, v along dim 0, as timm stores it
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (timm ViT names: norm1, attn, norm2, mlp)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, patch: tuple[int, int]):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class PatchEncoder(nn.Module):
    """`encoder(fbank) -> (B, tokens, dim)` patch outputs; `embed(fbank) -> (B, dim)` their mean."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = c = config
        fp, tp = c.grid
        if fp < 1 or tp < 1:
            raise RoomtoneError(f"patch {c.patch} does not fit n_mels={c.n_mels}, max_frames={c.max_frames}",
                                "use a smaller patch or more mel bins / frames")
        self.patch_embed = PatchEmbed(c.in_chans, c.dim, c.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, fp * tp + 2, c.dim))
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        for p in (self.cls_token, self.dist_token, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.apply(_init_linear)

    def image(self, fbank: Tensor) -> Tensor:
        """(B, [C,] frames, mels) -> (B, C, mels, frames), checking the shape against the config."""
        c = self.config
        want = "(batch, frames, mels)" if c.in_chans == 1 else f"(batch, {c.in_chans}, frames, mels)"
        ok = fbank.ndim == 3 if c.in_chans == 1 else fbank.ndim == 4 and fbank.shape[1] == c.in_chans
        if not ok or fbank.shape[-1] != c.n_mels:
            raise RoomtoneError(f"encoder input has shape {tuple(fbank.shape)}, expected {want} with mels={c.n_mels}",
                                "compute features with pretrain.features (fbank or seld_features) for this model")
        frames = fbank.shape[-2]
        if not c.patch[1] <= frames <= c.max_frames:
            raise RoomtoneError(f"input has {frames} frames; this model takes {c.patch[1]} to {c.max_frames}",
                                "crop the clip or build the model with a larger max_frames")
        x = fbank.unsqueeze(1) if fbank.ndim == 3 else fbank
        return x.transpose(2, 3)

    def patchify(self, fbank: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Embedded patches (B, N, dim), before positions, and their (freq, time) grid."""
        x = self.patch_embed(self.image(fbank))
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])

    def patches(self, fbank: Tensor) -> Tensor:
        """Raw input patches (B, N, C * pf * pt) in token order: the SSAST reconstruction targets."""
        x = self.image(fbank)
        return F.unfold(x, self.config.patch, stride=self.config.patch).transpose(1, 2)

    def transform(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """Add positions and run the blocks on embedded patches (B, N, dim); patch outputs only."""
        fp, tp = grid
        full_fp, full_tp = self.config.grid
        pos = self.pos_embed[:, 2:].reshape(1, full_fp, full_tp, -1)[:, :fp, :tp].reshape(1, fp * tp, -1)
        b = x.shape[0]
        lead = torch.cat([self.cls_token, self.dist_token], 1).expand(b, -1, -1) + self.pos_embed[:, :2]
        x = torch.cat([lead, x + pos], 1)
        x = F.dropout(x, self.config.dropout, self.training)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 2:]

    def forward(self, fbank: Tensor) -> Tensor:
        x, grid = self.patchify(fbank)
        return self.transform(x, grid)

    def embed(self, fbank: Tensor) -> Tensor:
        return self(fbank).mean(1)

    def load_pretrained(self, state: dict[str, Tensor], source_grid: tuple[int, int] | None = None) -> None:
        """Strictly load another encoder's weights of the same width and depth, adapting the input.

        A mono patch embedding is spread over this encoder's channels (PSELDNets' trick), and
        a larger positional grid `source_grid` (freq, time patches, e.g. (8, 64) for 128 mels x
        1024 frames) is cut to this one's lowest frequency rows and first time columns.
        """
        state = dict(state)
        w = state.get("patch_embed.proj.weight")
        if w is not None and w.shape[1] == 1 and self.config.in_chans > 1:
            state["patch_embed.proj.weight"] = adapt_input_channels(w, self.config.in_chans)
        pos = state.get("pos_embed")
        fp, tp = self.config.grid
        if pos is not None and pos.shape[1] != fp * tp + 2:
            grid = source_grid or (0, 0)
            if grid[0] * grid[1] != pos.shape[1] - 2:
                raise RoomtoneError(f"checkpoint has {pos.shape[1] - 2} patch positions, this model {fp * tp}",
                                    "pass source_grid=(freq patches, time patches) of the checkpoint's input")
            if grid[0] < fp or grid[1] < tp:
                raise RoomtoneError(f"checkpoint positions cover a {grid} patch grid, smaller than this model's {(fp, tp)}",
                                    "build the model with fewer mels or max_frames")
            body = pos[:, 2:].reshape(1, grid[0], grid[1], -1)[:, :fp, :tp].reshape(1, fp * tp, -1)
            state["pos_embed"] = torch.cat([pos[:, :2], body], 1)
        self.load_state_dict(state)


def adapt_input_channels(weight: Tensor, in_chans: int) -> Tensor:
    """PSELDNets' trick: a mono-pretrained first conv (D, 1, kh, kw) repeated over channels, divided by their count."""
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise RoomtoneError(f"expected a mono patch-embedding weight (D, 1, kh, kw), got {tuple(weight.shape)}",
                            "pass the first conv of a single-channel encoder")
    return weight.repeat(1, in_chans, 1, 1) / in_chans


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
