"""SSAST: joint discriminative and generative masked spectrogram patch modelling (Gong et al., 2022).

Two passes per step with independent masks, as the official joint pretraining: masked patch
embeddings are *replaced* by a learned `mask_embed` and every token goes through the encoder.
`cpredlayer` outputs are scored against the masked input patches with InfoNCE whose negatives
are the other masked patches of the same clip (log-softmax over the prediction axis, as the
official code; accuracy from its softmax over the target axis); `gpredlayer` reconstructs them
(MSE). loss = nce + mse_weight * mse. 16x16 patches use clustered masking, full-height frame
patches uniform masking; the masked share is 400/512 and scales with the token count.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from .encoder import EncoderConfig, PatchEncoder
from .masking import cluster_mask, mask_count, random_mask

__all__ = ["SSASTConfig", "SSAST", "info_nce"]


class SSASTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: EncoderConfig
    mask_ratio: float = Field(400 / 512, gt=0, lt=1)
    mse_weight: float = Field(10.0, ge=0)
    seed: int = 0  # seeds the model's own mask generator when forward gets none


def info_nce(targets: Tensor, preds: Tensor) -> tuple[Tensor, Tensor]:
    """SSAST's InfoNCE and accuracy over the M masked patches of each clip: targets, preds (B, M, P).

    Scores target i against prediction j; the loss takes log-softmax over predictions (the
    official code's axis), the accuracy an argmax over targets, as the official code does.
    """
    scores = targets @ preds.transpose(1, 2)
    nce = -F.log_softmax(scores.float(), -1).diagonal(dim1=1, dim2=2).mean()
    diag = torch.arange(scores.shape[1], device=scores.device)
    return nce, (scores.argmax(1) == diag).float().mean()


def _pred_head(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))


class SSAST(nn.Module):
    """forward(batch, generator=None) -> {"loss", "nce", "mse", "acc"} from batch["fbank"] (B, frames, mels).

    Masks come from `generator` (a CPU torch.Generator keeps them device-independent), or from
    the model's own generator seeded with `config.seed` when none is passed.
    """

    def __init__(self, config: SSASTConfig):
        super().__init__()
        self.config = config
        self.encoder = PatchEncoder(config.encoder)
        dim, (pf, pt) = config.encoder.dim, config.encoder.patch
        self.cpredlayer = _pred_head(dim, pf * pt)
        self.gpredlayer = _pred_head(dim, pf * pt)
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.xavier_normal_(self.mask_embed)
        self.generator = torch.Generator().manual_seed(config.seed)

    def _mask(self, batch: int, grid: tuple[int, int], generator: torch.Generator) -> Tensor:
        count = mask_count(grid[0] * grid[1], self.config.mask_ratio)
        if self.config.encoder.patch[0] == self.config.encoder.n_mels:
            return random_mask(batch, grid[0] * grid[1], count, generator)
        return cluster_mask(batch, grid, count, generator)

    def _masked_pass(self, tokens: Tensor, grid: tuple[int, int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Encoder outputs at the masked positions (B, M, dim) and those positions (B, M)."""
        b, _, d = tokens.shape
        idx = self._mask(b, grid, generator).to(tokens.device, non_blocking=True)  # no wait for the GPU's queue
        where = idx[..., None].expand(-1, -1, d)
        x = tokens.scatter(1, where, self.mask_embed.to(tokens.dtype).expand(b, idx.shape[1], d))
        return self.encoder.transform(x, grid).gather(1, where), idx

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        g = generator or self.generator
        fbank = batch["fbank"]
        tokens, grid = self.encoder.patchify(fbank)
        target = self.encoder.patches(fbank)
        p = target.shape[-1]

        out, idx = self._masked_pass(tokens, grid, g)
        pred = self.cpredlayer(out)
        nce, acc = info_nce(target.gather(1, idx[..., None].expand(-1, -1, p)).to(pred.dtype), pred)

        out, idx = self._masked_pass(tokens, grid, g)
        rec = self.gpredlayer(out).float()
        mse = F.mse_loss(rec, target.gather(1, idx[..., None].expand(-1, -1, p)).float())
        return {"loss": nce + self.config.mse_weight * mse, "nce": nce.detach(), "mse": mse.detach(), "acc": acc}
