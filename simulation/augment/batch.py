"""The training-time path: draw and apply recipes to a (B, C, T) batch, on CPU or CUDA.

Each item's recipe comes from its own generator (the caller derives it from seed, epoch
and item id), and mixing partners come from a fixed pool keyed by id, not from the rest
of the batch: an item's output does not depend on which items share its batch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .recipe import Context, Recipe, Resources, Spec, apply_recipe_batch, draw_recipe, sometimes_upmixed

__all__ = ["BatchAugment"]


class BatchAugment(torch.nn.Module):
    """specs: `Spec`s or their dicts. pool: id -> (C, T) mixing partners; rirs: id -> (Cr, L).
    fmt: 'foa' / 'mic' for rotations; hop: label hop in s (time offsets snap to it)."""

    def __init__(self, specs: Sequence[Spec | Mapping], rate: int, *, fmt: str | None = None,
                 hop: float | None = None, pool: Mapping[str, torch.Tensor] | None = None,
                 rirs: Mapping[str, torch.Tensor] | None = None, seed: int = 0):
        super().__init__()
        self.specs = [s if isinstance(s, Spec) else Spec.from_dict(s) for s in specs]
        self.rate, self.fmt, self.hop, self.seed = rate, fmt, hop, seed
        self.resources = Resources(partners=dict(pool or {}), rirs=dict(rirs or {}))
        self._partners = sorted((k, int(v.shape[-1])) for k, v in self.resources.partners.items())
        self._upmixing_step = sometimes_upmixed(self.specs, (int(r.shape[0]) for r in self.resources.rirs.values()))

    def draw(self, ids: Sequence[str], rngs: Sequence[np.random.Generator], length: int,
             epoch: int | Sequence[int] = 0) -> list[Recipe]:
        """epoch: one for the batch, or one per item (a training batch can straddle the end of an epoch)."""
        epochs = [epoch] * len(ids) if isinstance(epoch, (int, np.integer)) else epoch
        return [draw_recipe(self.specs, rng, Context(i, length, self.rate, self.fmt, self.hop, self._partners,
                                                     sorted(self.resources.rirs)),
                            seed=self.seed, epoch=e) for i, rng, e in zip(ids, rngs, epochs)]

    def forward(self, x: torch.Tensor, ids: Sequence[str], rngs: Sequence[np.random.Generator],
                epoch: int | Sequence[int] = 0) -> tuple[torch.Tensor, list[Recipe]]:
        """x (B, C, T) -> augmented (B, C', T) and each item's resolved recipe."""
        if x.ndim != 3 or len(ids) != x.shape[0] or len(rngs) != x.shape[0]:
            raise ValueError(f"need x (B, C, T) with one id and one generator per item; got {tuple(x.shape)}, "
                             f"{len(ids)} ids, {len(rngs)} generators")
        if x.shape[1] == 1 and self._upmixing_step is not None:
            raise ValueError("reverb with p < 1 on mono audio and multichannel RIRs would make a batch of mono and "
                             "multichannel items; set the reverb step's p to 1, or use single-channel RIRs")
        return apply_recipe_batch(self.draw(ids, rngs, x.shape[-1], epoch), x, self.rate, self.resources)
