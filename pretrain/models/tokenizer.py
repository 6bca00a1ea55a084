"""BEATs acoustic tokenizer for iteration 2+: distilled from the previous iteration's model.

`BeatsTokenizer` = a BEATs encoder, `quantize_layer` (Linear, Tanh, Linear to 256) and a
`NormEMAVectorQuantizer` (1024 x 256, L2-normalised inputs and codes, cosine k-means start, EMA
codebook updates with decay 0.99), names as the released `Tokenizers.py`. `BeatsTokenizerTraining`
trains it: a small transformer estimator reconstructs the frozen teacher's last-layer features
from the quantized codes (cosine loss) plus the commitment loss; then
`create_model("beats-<size>", tokenizer=trained.tokenizer)` pretrains the next iteration.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from catalog.errors import RoomtoneError

from .beats import BeatsConfig, BeatsEncoder, BeatsTransformer

__all__ = ["NormEMAVectorQuantizer", "BeatsTokenizer", "BeatsTokenizerConfig", "BeatsTokenizerTraining"]


def _all_reduce(x: Tensor) -> Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(x)
    return x


class _Codebook(nn.Module):
    """The codebook under the released names: `weight` (the codes), `cluster_size` (k-means counts),
    `embed_avg` and `initted` ([1], 1.0 once initialised). The release keeps `embed_avg` and this
    `cluster_size` for its checkpoint layout only; they are carried along, not used."""

    def __init__(self, n: int, dim: int):
        super().__init__()
        self.register_buffer("weight", F.normalize(torch.randn(n, dim), dim=-1))
        self.register_buffer("cluster_size", torch.zeros(n))
        self.register_buffer("embed_avg", torch.zeros(n, dim))
        self.register_buffer("initted", torch.zeros(1))


def _reread_initted(quantizer: NormEMAVectorQuantizer, incompatible_keys) -> None:
    quantizer._initted = None


class NormEMAVectorQuantizer(nn.Module):
    """Cosine vector quantizer (BEiT v2 / BEATs): L2-normalised inputs and codes, cosine k-means
    initialisation on the first training batch, then each used code moves by EMA towards the
    normalised mean of its batch members and is renormalised; `cluster_size` tracks code usage."""

    def __init__(self, n_embed: int = 1024, dim: int = 256, beta: float = 1.0, decay: float = 0.99,
                 kmeans_iters: int = 10, seed: int = 0):
        super().__init__()
        self.beta, self.decay, self.kmeans_iters, self.seed = beta, decay, kmeans_iters, seed
        self.embedding = _Codebook(n_embed, dim)
        self.register_buffer("cluster_size", torch.zeros(n_embed))
        # `initted` as the host knows it, so a training step does not read the device to ask; a
        # loaded state may hold either, so it is read again on the first step after a load
        self._initted: bool | None = None
        self.register_load_state_dict_post_hook(_reread_initted)

    @torch.no_grad()
    def _kmeans_init(self, z: Tensor) -> None:
        g = torch.Generator(device=z.device).manual_seed(self.seed)
        n = self.embedding.weight.shape[0]
        means = z[torch.randint(z.shape[0], (n,), generator=g, device=z.device)]
        for _ in range(self.kmeans_iters):
            assign = (z @ means.T).argmax(-1)
            counts = torch.bincount(assign, minlength=n)
            sums = torch.zeros_like(means).index_add_(0, assign, z)
            means = torch.where(counts[:, None] > 0, F.normalize(sums, dim=-1), means)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(means, 0)  # every rank starts from rank 0's codebook
            dist.broadcast(counts, 0)
        self.embedding.weight.copy_(means)
        self.embedding.cluster_size.copy_(counts)
        self.embedding.initted.fill_(1.0)

    def codes(self, z: Tensor) -> Tensor:
        """Nearest code index per vector of z (..., dim), by cosine similarity."""
        return (F.normalize(z.float(), dim=-1) @ self.embedding.weight.T).argmax(-1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(quantized with straight-through gradients, commitment loss, code indices)."""
        z = F.normalize(z.float(), dim=-1)
        flat = z.reshape(-1, z.shape[-1])
        if self.training and not self._initted:
            if not self.embedding.initted.item():
                self._kmeans_init(flat.detach())
            self._initted = True
        idx = self.codes(flat)
        q = self.embedding.weight[idx]
        if self.training:
            with torch.no_grad():
                onehot = F.one_hot(idx, self.embedding.weight.shape[0]).to(flat.dtype)
                bins = _all_reduce(onehot.sum(0))
                self.cluster_size.mul_(self.decay).add_(bins, alpha=1 - self.decay)
                means = F.normalize(_all_reduce(onehot.T @ flat), dim=-1)
                w = self.embedding.weight
                moved = F.normalize(self.decay * w + (1 - self.decay) * means, dim=-1)
                w.copy_(torch.where(bins[:, None] > 0, moved, w))
        loss = self.beta * F.mse_loss(q.detach(), flat)
        q = flat + (q - flat).detach()
        return q.reshape(z.shape), loss, idx.reshape(z.shape[:-1])


class BeatsTokenizer(nn.Module):
    """`labels(fbank) -> (B, N)` code per patch; `quantize(fbank)` for training."""

    def __init__(self, config: BeatsConfig, codebook_size: int = 1024, code_dim: int = 256, seed: int = 0):
        super().__init__()
        self.config = config
        self.encoder = BeatsEncoder(config)
        d = config.encoder_embed_dim
        self.quantize_layer = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, code_dim))
        self.quantize = NormEMAVectorQuantizer(codebook_size, code_dim, seed=seed)

    def quantize_fbank(self, fbank: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.quantize(self.quantize_layer(self.encoder(fbank)))

    @torch.no_grad()
    def labels(self, fbank: Tensor) -> Tensor:
        return self.quantize.codes(self.quantize_layer(self.encoder(fbank)))


class BeatsTokenizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: BeatsConfig
    codebook_size: int = Field(1024, gt=1)
    code_dim: int = Field(256, gt=0)
    estimator_layers: int = Field(3, gt=0)
    seed: int = 0


class BeatsTokenizerTraining(nn.Module):
    """forward(batch) -> {"loss", "cosine", "vq", "codes_used"}: distil the frozen `teacher` into the tokenizer.

    `teacher` maps fbank (B, frames, mels) to (B, N, dim) in the same patch order, e.g. the
    previous iteration's `create_model("beats-<size>").encoder` after pretraining.
    """

    def __init__(self, config: BeatsTokenizerConfig, teacher: nn.Module | None):
        super().__init__()
        if teacher is None:
            raise RoomtoneError("a BEATs tokenizer is distilled from a teacher, and none was given",
                                "pass teacher=<previous iteration's model>.encoder to create_model")
        self.config = c = config
        e = c.encoder
        self.tokenizer = BeatsTokenizer(e, c.codebook_size, c.code_dim, c.seed)
        self.teacher = teacher.eval().requires_grad_(False)
        self.encoder = self.tokenizer.encoder
        d = e.encoder_embed_dim
        self.estimator_proj = nn.Linear(c.code_dim, d)
        self.estimator = BeatsTransformer(e, d, c.estimator_layers, e.encoder_attention_heads, e.encoder_ffn_embed_dim)
        teacher_dim = getattr(getattr(teacher, "config", None), "encoder_embed_dim", None)
        if teacher_dim is None:
            raise RoomtoneError(f"teacher {type(teacher).__name__} is not a BEATs encoder",
                                "pass the previous iteration's BEATs model's .encoder")
        self.head = nn.Linear(d, teacher_dim)

    def train(self, mode: bool = True) -> BeatsTokenizerTraining:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        fbank = batch["fbank"]
        with torch.no_grad():
            target = self.teacher(fbank).float()
        q, vq, idx = self.tokenizer.quantize_fbank(fbank)
        pred = self.head(self.estimator(self.estimator_proj(q.to(self.estimator_proj.weight.dtype)))).float()
        if pred.shape != target.shape:
            raise RoomtoneError(f"teacher gives {tuple(target.shape)} features, the tokenizer {tuple(pred.shape)}",
                                "use a teacher with the same patch size and order (a BEATs encoder)")
        cosine = (1 - F.cosine_similarity(pred, target, dim=-1)).mean()
        # codes used in this batch, counted on the device (`unique` would wait for it to size its output)
        used = torch.zeros(self.config.codebook_size, device=idx.device).index_fill_(0, idx.flatten(), 1.0).sum()
        return {"loss": cosine + vq, "cosine": cosine.detach(), "vq": vq.detach(), "codes_used": used}
