"""The native engine: exact image sources (`mode="ism"`) or images plus tail (`"hybrid"`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .._kernel import default_terms
from ..arrays import MicArray
from ..ism import DEFAULT_CHUNK, early_bands
from ..rooms import Room
from ..tail import default_transition, hybrid_rir
from ._registry import register_backend


@register_backend("torch")
class TorchBackend:
    """chunk_size: image-receiver pairs per step (bounds memory); terms: Chebyshev terms of the kernel."""

    name = "torch"

    def __init__(self, chunk_size: int = DEFAULT_CHUNK, terms: int | None = None) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer in [1, inf); got {chunk_size}")
        self.chunk_size = chunk_size
        self.terms = terms

    def simulate(self, rooms: Sequence[Room], sources: Sequence[np.ndarray], arrays: Sequence[MicArray], *,
                 fs: float, nsample: int, order: int, mode: str, transition: float | None, taps: int,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        terms = self.terms or default_terms(dtype)
        out = []
        for room, src, array in zip(rooms, sources, arrays):
            common = dict(fs=fs, nsample=nsample, order=order, taps=taps, terms=terms, dtype=dtype, device=device,
                          chunk_size=self.chunk_size)
            if mode == "ism":
                out.append(early_bands(room, src, array, limit=nsample, **common).sum(dim=2))
            else:
                split = transition if transition is not None else default_transition(room, src, array, fs, taps)
                out.append(hybrid_rir(room, src, array, transition=split, **common))
        return torch.stack(out)
