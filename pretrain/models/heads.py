"""Supervised objectives on the patch encoder: audio tagging (multi-label BCE) and SELD (multi-ACCDOA, ADPIT).

SELD targets are the ADPIT layout of `simulation.seld.adpit_target` batched:
(B, label_frames, 6, 4, classes) with slots A0 | B0 B1 | C0 C1 C2 and (activity, x, y, z);
`predict` returns multi-ACCDOA (B, label_frames, 3 tracks, 3, classes), the layout of
`simulation.seld.multi_accdoa_target`, which `decode_multi_accdoa` turns back into events.
Label frames are 100 ms; the encoder's time patches are pooled over frequency and linearly
resampled onto them.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from catalog.errors import RoomtoneError

from .encoder import EncoderConfig, PatchEncoder

__all__ = ["TaggingConfig", "Tagging", "SeldConfig", "Seld", "adpit_loss"]


class TaggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: EncoderConfig
    num_classes: int = Field(527, gt=0)
    seed: int = 0  # initial weights when given to create_model


class Tagging(nn.Module):
    """forward(batch) -> {"loss"}: BCE of clip logits against batch["target"] (B, classes), multi-hot or mixed."""

    def __init__(self, config: TaggingConfig):
        super().__init__()
        self.config = config
        self.encoder = PatchEncoder(config.encoder)
        self.head = nn.Sequential(nn.LayerNorm(config.encoder.dim), nn.Linear(config.encoder.dim, config.num_classes))

    def predict(self, fbank: Tensor) -> Tensor:
        """Clip logits (B, classes)."""
        return self.head(self.encoder.embed(fbank))

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        logits = self.predict(batch["fbank"])
        target = batch["target"]
        if target.shape != logits.shape:
            raise RoomtoneError(f"tagging target has shape {tuple(target.shape)}, expected {tuple(logits.shape)}",
                                f"pass multi-hot targets (batch, {self.config.num_classes})")
        loss = F.binary_cross_entropy_with_logits(logits.float(), target.float())
        return {"loss": loss}


class SeldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: EncoderConfig
    num_classes: int = Field(13, gt=0)
    frames_per_label: int = Field(10, gt=0)  # feature frames per 100 ms label frame (hop 240 at 24 kHz)
    seed: int = 0  # initial weights when given to create_model


class Seld(nn.Module):
    """forward(batch) -> {"loss"}: ADPIT loss of multi-ACCDOA outputs against batch["target"] (see module doc)."""

    def __init__(self, config: SeldConfig):
        super().__init__()
        self.config = config
        self.encoder = PatchEncoder(config.encoder)
        self.fc = nn.Linear(config.encoder.dim, 3 * 3 * config.num_classes)

    def predict(self, features: Tensor, label_frames: int | None = None) -> Tensor:
        """Multi-ACCDOA (B, label_frames, 3, 3, classes) from (B, 7, frames, mels); tanh-bounded."""
        label_frames = label_frames or -(-features.shape[-2] // self.config.frames_per_label)
        x, grid = self.encoder.patchify(features)
        x = self.encoder.transform(x, grid)
        b, _, d = x.shape
        x = x.reshape(b, grid[0], grid[1], d).mean(1).transpose(1, 2)  # (B, dim, time patches)
        x = F.interpolate(x, size=label_frames, mode="linear", align_corners=False).transpose(1, 2)
        return torch.tanh(self.fc(x)).reshape(b, label_frames, 3, 3, self.config.num_classes)

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        target = batch["target"]
        c = self.config.num_classes
        if target.ndim != 5 or target.shape[2:] != (6, 4, c):
            raise RoomtoneError(f"SELD target has shape {tuple(target.shape)}, expected (batch, frames, 6, 4, {c})",
                                "build it with simulation.seld.adpit_target(labels, n_classes) and stack")
        out = self.predict(batch["fbank"], target.shape[1])
        return {"loss": adpit_loss(out.float(), target.float())}


def _adpit_permutations() -> list[tuple[int, int, int]]:
    """The 13 track assignments over slots A0=0 | B0=1 B1=2 | C0=3 C1=4 C2=5."""
    b = [p for p in itertools.product((1, 2), repeat=3) if len(set(p)) == 2]  # both of B's events on 3 tracks
    return [(0, 0, 0), *b, *itertools.permutations((3, 4, 5))]


_PERMS = _adpit_permutations()


def adpit_loss(output: Tensor, target: Tensor) -> Tensor:
    """Auxiliary-duplicating permutation-invariant MSE (Shimada et al., 2022), the DCASE baseline's.

    output (B, T, 3, 3, C) multi-ACCDOA; target (B, T, 6, 4, C) ADPIT. For every frame and class
    the best of 13 assignments of the A/B/C slots to the 3 tracks is scored; the slots of the other
    polyphony levels (zero when inactive) are added, so one target tensor covers every case.
    """
    slots = target[:, :, :, :1] * target[:, :, :, 1:]  # (B, T, 6, 3, C) activity-weighted vectors
    level = [slots[:, :, [0, 0, 0]], slots[:, :, [1, 1, 2]], slots[:, :, [3, 4, 5]]]
    losses = []
    for i, perm in enumerate(_PERMS):
        own = 0 if i == 0 else (1 if i < 7 else 2)
        tgt = slots[:, :, list(perm)] + sum(level[j] for j in range(3) if j != own)
        losses.append((output - tgt).pow(2).mean((2, 3)))  # (B, T, C)
    return torch.stack(losses).min(0).values.mean()

