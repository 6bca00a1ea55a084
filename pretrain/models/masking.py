"""Seeded, batched patch masks: SSAST's clustered blocks and uniform random picks (SSAST frames, BEATs).

Masks are drawn on the generator's device (a CPU generator gives the same masks on any
accelerator) and returned as sorted-by-draw token indices (B, count) on that device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mask_count", "random_mask", "cluster_mask"]

ROUNDS_AT_ONCE = 48  # cluster_mask's rounds per tensor op: SSAST-base grids need about 150


def mask_count(tokens: int, ratio: float) -> int:
    """How many of `tokens` to mask: round(tokens * ratio), at least 1 and leaving one visible."""
    return min(max(round(tokens * ratio), 1), tokens - 1)


def random_mask(batch: int, tokens: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` distinct token indices per example, uniformly at random."""
    scores = torch.rand(batch, tokens, generator=generator, device=generator.device)
    return scores.argsort(1)[:, :count]


def cluster_mask(batch: int, grid: tuple[int, int], count: int, generator: torch.Generator,
                 sizes: tuple[int, ...] = (3, 4, 5)) -> Tensor:
    """SSAST's patch masking: square blocks at random corners, round after round, until `count`
    tokens are hit.

    Tokens are indexed f * time_patches + t. As the official code, each example draws one
    block side from `sizes` per call and uses it for all its blocks. Unlike it, blocks are
    clipped at the grid edge instead of wrapping into the next row, the batch is drawn at
    once, and the first `count` tokens in order of masking are kept (ties within a block at
    random) where the official truncation of a Python set favours low token indices.

    Rounds are applied ROUNDS_AT_ONCE at a time with a few tensor ops (one round at a time, a
    batch of 64 SSAST-base grids took about 150 rounds and 36 ms of host time a pass, while a
    GPU waited); the generator is then set back to the draws of exactly the rounds needed, so
    the masks, and every draw after them, are those of the round-by-round rule.
    """
    fp, tp = grid
    dev = generator.device
    side = torch.tensor(sizes, device=dev)[torch.randint(len(sizes), (batch,), generator=generator, device=dev)]
    side = side[:, None, None]
    tie = torch.rand(batch, fp * tp, generator=generator, device=dev)
    f_idx, t_idx = torch.arange(fp, device=dev)[:, None], torch.arange(tp, device=dev)[:, None]
    first = torch.full((batch, fp * tp), float("inf"), device=dev)  # the round that first masks each token
    done = 0
    while True:
        state = generator.get_state()
        corner = torch.stack([torch.randint(fp * tp, (batch,), generator=generator, device=dev)
                              for _ in range(ROUNDS_AT_ONCE)], 1)   # (B, K): as K rounds draw them
        f0, t0 = (corner // tp)[:, None], (corner % tp)[:, None]
        rows = (f_idx >= f0) & (f_idx < f0 + side)   # (B, F, K): block k covers row f
        cols = (t_idx >= t0) & (t_idx < t0 + side)   # (B, T, K)
        hit = (rows[:, :, None] & cols[:, None]).view(torch.uint8).flatten(1, 2).max(-1)  # first k per token
        first = torch.where(hit.values.bool() & first.isinf(), (done + hit.indices).to(first.dtype), first)
        reached = first.kthvalue(count, 1).values   # the round in which each example reaches `count`
        if reached.isfinite().all():
            rounds = int(reached.max()) + 1
            generator.set_state(state)
            for _ in range(rounds - done):  # consume the draws of the rounds the rule runs, no more
                torch.randint(fp * tp, (batch,), generator=generator, device=dev)
            first = torch.where(first < rounds, first + tie, torch.full_like(first, float("inf")))
            return first.argsort(1)[:, :count]
        done += ROUNDS_AT_ONCE
