"""BEATs encoder (Chen et al., 2023) and its masked label-prediction pretraining.

Encoder: 16x16 patches of (B, 1, frames, mels), so token index = t * 8 + f; LayerNorm and a
projection to the transformer width; a weight-normed grouped conv position encoder; post-LN
layers with DeepNorm residual scaling, T5-style bucketed relative position bias (one table,
shared by every layer) gated per head from the query (`grep_linear`, `grep_a`). Parameter and
config names follow the released `BEATs.py`, so `export_beats` is a key-for-key copy.

Pretraining (the release has none; this follows the paper and ESPnet's reproduction): 75 % of
patches are masked at random, the encoder sees the kept 25 % (its relative bias uses their true
positions), a light transformer predictor fills in mask tokens and predicts each masked
patch's discrete label by cross-entropy (label smoothing 0.1). Iteration 1 labels come from a
frozen random projection of the patch onto a random 1024 x 256 codebook (cosine nearest);
later iterations from a `BeatsTokenizer` distilled from the previous model (tokenizer.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from catalog.errors import RoomtoneError

from .encoder import SIZES
from .masking import mask_count, random_mask

__all__ = ["BeatsConfig", "BeatsEncoder", "BeatsTransformer", "BeatsPretrain", "BeatsPretrainConfig",
           "RandomProjectionTokenizer"]


class BeatsConfig(BaseModel):
    """Encoder hyperparameters; names follow the released `BEATsConfig` where one exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: str = "custom"
    n_mels: int = Field(128, gt=0)
    input_patch_size: int = Field(16, gt=0)
    embed_dim: int = Field(512, gt=0)
    encoder_layers: int = Field(3, gt=0)
    encoder_embed_dim: int = Field(128, gt=0)
    encoder_ffn_embed_dim: int = Field(512, gt=0)
    encoder_attention_heads: int = Field(4, gt=0)
    conv_pos: int = Field(128, gt=0)
    conv_pos_groups: int = Field(16, gt=0)
    deep_norm: bool = True
    relative_position_embedding: bool = True
    gru_rel_pos: bool = True
    num_buckets: int = Field(320, gt=1)
    max_distance: int = Field(800, gt=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    attention_dropout: float = Field(0.0, ge=0, lt=1)
    dropout_input: float = Field(0.0, ge=0, lt=1)
    layer_wise_gradient_decay_ratio: float = Field(1.0, gt=0, le=1)

    @classmethod
    def sized(cls, size: str, **overrides) -> BeatsConfig:
        if size not in SIZES:
            raise RoomtoneError(f"unknown model size {size!r}", f"use one of {sorted(SIZES)}")
        dim, depth, heads = SIZES[size]
        embed = 512 if size != "tiny" else 64
        base = dict(size=size, embed_dim=embed, encoder_layers=depth, encoder_embed_dim=dim,
                    encoder_ffn_embed_dim=4 * dim, encoder_attention_heads=heads)
        return cls(**{**base, **overrides})

    def official(self) -> dict:
        """The released `cfg` dict for these weights (pretrained, not fine-tuned)."""
        mine = self.model_dump(exclude={"size", "n_mels"})
        return {**mine, "conv_bias": False, "activation_fn": "gelu", "layer_norm_first": False,
                "activation_dropout": 0.0, "encoder_layerdrop": 0.0, "finetuned_model": False,
                "predictor_dropout": 0.1, "predictor_class": 527}


class _GradMultiply(torch.autograd.Function):
    """Identity forward, gradient scaled by `scale` backward (layer-wise gradient decay)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


class WeightNormConv1d(nn.Module):
    """Conv1d with weight = g * v / ||v|| (norm over all but the kernel axis), named `weight_g`/`weight_v`
    as the old `torch.nn.utils.weight_norm(..., dim=2)` that released BEATs files use."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        if dim % groups:
            raise RoomtoneError(f"conv_pos_groups {groups} does not divide width {dim}", "pick a divisor")
        v = torch.randn(dim, dim // groups, kernel) * math.sqrt(4.0 / (kernel * dim))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.padding, self.groups = kernel // 2, groups

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        out = F.conv1d(x, w, self.bias, padding=self.padding, groups=self.groups)
        return out[..., : x.shape[-1]]  # even kernels give one extra frame (SamePad)


def _buckets(relative: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5 bidirectional buckets: exact up to a quarter of the buckets, then logarithmic to max_distance."""
    half = num_buckets // 2
    out = (relative > 0).long() * half
    n = relative.abs()
    exact = half // 2
    far = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (half - exact)).long()
    return out + torch.where(n < exact, n, far.clamp(max=half - 1))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, c: BeatsConfig, bias_table: nn.Embedding | None):
        super().__init__()
        self.heads, self.dropout, self.c = heads, c.attention_dropout, c
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        if c.gru_rel_pos:
            self.grep_linear = nn.Linear(dim // heads, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if bias_table is not None:
            self.relative_attention_bias = bias_table

    def position_bias(self, positions: Tensor) -> Tensor:
        """(B, heads, N, N) bias for tokens at `positions` (B, N) of the full patch sequence."""
        rel = positions[:, None, :] - positions[:, :, None]  # key minus query
        return self.relative_attention_bias(_buckets(rel, self.c.num_buckets, self.c.max_distance)).permute(0, 3, 1, 2)

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        b, n, d = x.shape
        split = lambda t: t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        if bias is not None and self.c.gru_rel_pos:
            gate_a, gate_b = torch.sigmoid(self.grep_linear(split(x)).reshape(b, self.heads, n, 2, 4).sum(-1)).chunk(2, -1)
            bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class Layer(nn.Module):
    """Post-LN transformer layer; DeepNorm scales both residuals by (2 * layers) ** 0.25."""

    def __init__(self, dim: int, ffn: int, heads: int, c: BeatsConfig, layers: int, bias_table: nn.Embedding | None):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads, c, bias_table)
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.alpha = (2 * layers) ** 0.25 if c.deep_norm else 1.0
        self.dropout = c.dropout

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        x = self.self_attn_layer_norm(x * self.alpha + F.dropout(self.self_attn(x, bias), self.dropout, self.training))
        h = F.dropout(self.fc2(F.gelu(self.fc1(x))), self.dropout, self.training)
        return self.final_layer_norm(x * self.alpha + h)


class BeatsTransformer(nn.Module):
    """Conv position encoding, LayerNorm, then the layers; relative bias from one table in layer 0."""

    def __init__(self, c: BeatsConfig, dim: int, layers: int, heads: int, ffn: int):
        super().__init__()
        self.c = c
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, c.conv_pos, c.conv_pos_groups), nn.GELU())
        table = nn.Embedding(c.num_buckets, heads) if c.relative_position_embedding else None
        self.layers = nn.ModuleList(Layer(dim, ffn, heads, c, layers, table) for _ in range(layers))
        self.layer_norm = nn.LayerNorm(dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        if c.deep_norm:
            beta = (8 * layers) ** -0.25
            for layer in self.layers:
                a = layer.self_attn
                for lin, gain in ((a.k_proj, 1), (a.q_proj, 1), (a.v_proj, beta), (a.out_proj, beta),
                                  (layer.fc1, beta), (layer.fc2, beta)):
                    nn.init.xavier_normal_(lin.weight, gain=gain)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """x (B, N, dim); positions (B, N) of the tokens in the full sequence (default 0..N-1)."""
        x = self.layer_norm(x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2))
        x = F.dropout(x, self.c.dropout, self.training)
        bias = None
        if self.c.relative_position_embedding:
            if positions is None:
                positions = torch.arange(x.shape[1], device=x.device)[None]
            bias = self.layers[0].self_attn.position_bias(positions)
        for layer in self.layers:
            if self.c.layer_wise_gradient_decay_ratio != 1.0:
                x = _GradMultiply.apply(x, self.c.layer_wise_gradient_decay_ratio)
            x = layer(x, bias)
        return x


class BeatsEncoder(nn.Module):
    """`encoder(fbank) -> (B, tokens, dim)`, `embed(fbank) -> (B, dim)`; fbank (B, frames, mels), BEATs preset."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = c = config
        if c.n_mels % c.input_patch_size:
            raise RoomtoneError(f"n_mels {c.n_mels} is not a multiple of the patch size {c.input_patch_size}",
                                "use 128 mel bins (the BEATs preset)")
        p = c.input_patch_size
        self.patch_embedding = nn.Conv2d(1, c.embed_dim, kernel_size=p, stride=p, bias=False)
        self.layer_norm = nn.LayerNorm(c.embed_dim)
        if c.embed_dim != c.encoder_embed_dim:  # the release has no projection when the widths agree
            self.post_extract_proj = nn.Linear(c.embed_dim, c.encoder_embed_dim)
        self.encoder = BeatsTransformer(c, c.encoder_embed_dim, c.encoder_layers, c.encoder_attention_heads,
                                        c.encoder_ffn_embed_dim)

    def image(self, fbank: Tensor) -> Tensor:
        c = self.config
        if fbank.ndim != 3 or fbank.shape[-1] != c.n_mels or fbank.shape[1] < c.input_patch_size:
            raise RoomtoneError(f"BEATs input has shape {tuple(fbank.shape)}, expected (batch, frames >= "
                                f"{c.input_patch_size}, {c.n_mels})", "compute it with pretrain.features.fbank(..., 'beats')")
        return fbank.unsqueeze(1)  # (B, 1, T, F): time is the conv height

    def patches(self, fbank: Tensor) -> Tensor:
        """Raw input patches (B, N, 256) in token order (t * freq_patches + f)."""
        p = self.config.input_patch_size
        return F.unfold(self.image(fbank), p, stride=p).transpose(1, 2)

    def patchify(self, fbank: Tensor) -> Tensor:
        """Projected patch features (B, N, dim), before the transformer."""
        x = self.patch_embedding(self.image(fbank)).flatten(2).transpose(1, 2)
        x = self.layer_norm(x)
        if hasattr(self, "post_extract_proj"):
            x = self.post_extract_proj(x)
        return F.dropout(x, self.config.dropout_input, self.training)

    def forward(self, fbank: Tensor) -> Tensor:
        return self.encoder(self.patchify(fbank))

    def embed(self, fbank: Tensor) -> Tensor:
        return self(fbank).mean(1)


class RandomProjectionTokenizer(nn.Module):
    """Iteration-1 labels: a frozen random projection of each raw patch, nearest random code by cosine."""

    def __init__(self, patch_dim: int, codebook: int, code_dim: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(patch_dim, code_dim, generator=g) / math.sqrt(patch_dim))
        self.register_buffer("codebook", F.normalize(torch.randn(codebook, code_dim, generator=g), dim=-1))

    @torch.no_grad()
    def labels(self, patches: Tensor) -> Tensor:
        z = F.normalize(patches.float() @ self.projection, dim=-1)
        return (z @ self.codebook.T).argmax(-1)


class BeatsPretrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: BeatsConfig
    mask_ratio: float = Field(0.75, gt=0, lt=1)
    codebook_size: int = Field(1024, gt=1)
    code_dim: int = Field(256, gt=0)
    decoder_layers: int = Field(3, gt=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    tokenizer: str = "random-projection"  # or "distilled" when a trained BeatsTokenizer is passed
    seed: int = 0  # seeds the random-projection tokenizer and the model's own mask generator


class BeatsPretrain(nn.Module):
    """forward(batch, generator=None) -> {"loss", "acc"}: masked label prediction on batch["fbank"].

    Pass `tokenizer=` a trained `BeatsTokenizer` (iteration 2+); masks come from `generator` or,
    when none is passed, the model's own generator seeded with `config.seed`.
    """

    def __init__(self, config: BeatsPretrainConfig, tokenizer: nn.Module | None = None):
        super().__init__()
        self.config = c = config
        e = c.encoder
        self.encoder = BeatsEncoder(e)
        if tokenizer is None:
            p = e.input_patch_size
            self.tokenizer = RandomProjectionTokenizer(p * p, c.codebook_size, c.code_dim, c.seed)
        else:
            self.tokenizer = tokenizer.eval().requires_grad_(False)
        dim = e.encoder_embed_dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder_proj = nn.Linear(dim, dim)
        self.decoder = BeatsTransformer(e, dim, c.decoder_layers, e.encoder_attention_heads, e.encoder_ffn_embed_dim)
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, c.codebook_size)
        self.generator = torch.Generator().manual_seed(c.seed)

    def train(self, mode: bool = True) -> BeatsPretrain:
        super().train(mode)
        if isinstance(self.tokenizer, nn.Module) and self.config.tokenizer != "random-projection":
            self.tokenizer.eval()  # a distilled tokenizer stays frozen
        return self

    def labels(self, fbank: Tensor) -> Tensor:
        """One discrete label per patch (B, N)."""
        if isinstance(self.tokenizer, RandomProjectionTokenizer):
            return self.tokenizer.labels(self.encoder.patches(fbank))
        with torch.no_grad():
            return self.tokenizer.labels(fbank)

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        fbank = batch["fbank"]
        tokens = self.encoder.patchify(fbank)
        b, n, d = tokens.shape
        target = self.labels(fbank)
        m = mask_count(n, self.config.mask_ratio)
        # a random permutation, drawn on the host; copied without waiting for the GPU's queue
        order = random_mask(b, n, n, generator or self.generator).to(tokens.device, non_blocking=True)
        masked, kept = order[:, :m], order[:, m:].sort(1).values
        visible = self.encoder.encoder(tokens.gather(1, kept[..., None].expand(-1, -1, d)), kept)
        full = self.mask_token.to(visible.dtype).expand(b, n, d).scatter(1, kept[..., None].expand(-1, -1, d),
                                                                          self.decoder_proj(visible))
        logits = self.head(self.decoder_norm(self.decoder(full)))
        logits = logits.gather(1, masked[..., None].expand(-1, -1, logits.shape[-1])).float()
        labels = target.gather(1, masked)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), label_smoothing=self.config.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(-1) == labels).float().mean()}
