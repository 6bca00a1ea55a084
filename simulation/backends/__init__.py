"""Interchangeable RIR engines behind one interface (torch is the default)."""

from . import gpurir_backend, pyroomacoustics_backend, torch_backend  # noqa: F401  (registration)
from ._registry import Backend, create_backend, list_backends, register_backend

__all__ = ["Backend", "create_backend", "list_backends", "register_backend"]
