"""Seeded, batched patch masks: SSAST's clustered blocks and uniform random picks (SSAST frames, BEATs).

Masks are drawn on the generator's device (a CPU generator gives the same masks on any
accelerator) and returned as sorted-by-draw token indices (B, count) on that device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mask_count", "random_mask", "cluster_mask"]


def mask_count(tokens: int, ratio: float) -> int:
    """How many of `tokens` to mask: round(tokens * ratio), at least 1 and leaving one visible."""
    return min(max(round(tokens * ratio), 1), tokens - 1)


def random_mask(batch: int, tokens: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` distinct token indices per example, uniformly at random."""
    scores = torch.rand(batch, tokens, generator=generator, device=generator.device)
    return scores.argsort(1)[:, :count]


def cluster_mask(batch: int, grid: tuple[int, int], count: int, generator: torch.Generator,
                 sizes: tuple[int, ...] = (3, 4, 5)) -> Tensor:
    """SSAST's patch masking: square blocks at random corners until `count` tokens are hit.

    Tokens are indexed f * time_patches + t. As the official code, each example draws one
    block side from `sizes` per call and uses it for all its blocks. Unlike it, blocks are
    clipped at the grid edge instead of wrapping into the next row, the batch is drawn at
    once, and the first `count` tokens in order of masking are kept (ties within a block at
    random) where the official truncation of a Python set favours low token indices.
    """
    fp, tp = grid
    dev = generator.device
    first = torch.full((batch, fp, tp), float("inf"), device=dev)
    f_idx = torch.arange(fp, device=dev)[None, :, None]
    t_idx = torch.arange(tp, device=dev)[None, None, :]
    side = torch.tensor(sizes, device=dev)[torch.randint(len(sizes), (batch,), generator=generator, device=dev)]
    side = side[:, None, None]
    tie = torch.rand(batch, fp, tp, generator=generator, device=dev)
    rounds = 0
    while (first.isfinite().flatten(1).sum(1) < count).any():
        corner = torch.randint(fp * tp, (batch,), generator=generator, device=dev)
        f0, t0 = (corner // tp)[:, None, None], (corner % tp)[:, None, None]
        block = (f_idx >= f0) & (f_idx < f0 + side) & (t_idx >= t0) & (t_idx < t0 + side)
        first = torch.where(block & first.isinf(), rounds + tie, first)
        rounds += 1
    return first.flatten(1).argsort(1)[:, :count]
