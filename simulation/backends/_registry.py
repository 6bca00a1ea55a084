"""Name -> backend class registry, so `simulate(..., backend="name")` stays one function."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np
import torch

from ..arrays import MicArray
from ..rooms import Room

__all__ = ["Backend", "register_backend", "create_backend", "list_backends"]


class Backend(Protocol):
    """Renders a validated batch into a (B, S, M, nsample) tensor (units: 1 / (4 pi d) per direct path)."""

    name: str

    def simulate(self, rooms: Sequence[Room], sources: Sequence[np.ndarray], arrays: Sequence[MicArray], *,
                 fs: float, nsample: int, order: int, mode: str, transition: float | None, taps: int,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor: ...


_REGISTRY: dict[str, Callable[..., Backend]] = {}
B = TypeVar("B")


def register_backend(name: str) -> Callable[[B], B]:
    """Class decorator recording a backend under `name`."""

    def wrap(cls: B) -> B:
        if name in _REGISTRY:
            raise ValueError(f"backend {name!r} is already registered")
        _REGISTRY[name] = cls  # type: ignore[assignment]
        return cls

    return wrap


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate a registered backend; options left at None are dropped."""
    if name not in _REGISTRY:
        raise ValueError(f"backend must be one of {sorted(_REGISTRY)}; got {name!r}")
    return _REGISTRY[name](**{k: v for k, v in options.items() if v is not None})


def list_backends() -> list[str]:
    return sorted(_REGISTRY)
