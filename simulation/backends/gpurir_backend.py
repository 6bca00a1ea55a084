"""gpuRIR (CUDA) behind roomtone's interface.

gpuRIR negates every reflection coefficient inside its kernel; this backend
passes -beta so that reflections keep roomtone's positive sign. Its image set is
a cube of `nb_img` images per axis, not an L1 order ball, so `order` >= 0 maps
to 2 * order + 1 images per axis (a superset); its tail is unseeded logistic
noise. Omni and one shared cardioid-family pattern per array are supported.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..arrays import MicArray
from ..rooms import Room
from ..tail import default_transition
from ._registry import register_backend

_PATTERNS = {1.0: "omni", 0.75: "subcard", 0.5: "card", 0.25: "hypcard", 0.0: "bidir"}
INSTALL_HINT = ("gpuRIR is not installed. It has no PyPI wheel: on a machine with CUDA, nvcc and CMake >= 3.23 run "
                "`pip install https://github.com/DavidDiazGuerra/gpuRIR/zipball/master` "
                "(source: github.com/DavidDiazGuerra/gpuRIR), or use backend='torch' with device='cuda'.")


@register_backend("gpurir")
class GpuRIRBackend:
    name = "gpurir"

    def simulate(self, rooms: Sequence[Room], sources: Sequence[np.ndarray], arrays: Sequence[MicArray], *,
                 fs: float, nsample: int, order: int, mode: str, transition: float | None, taps: int,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        try:
            import gpuRIR
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        out = []
        for room, src, array in zip(rooms, sources, arrays):
            if room.uses_bands or len(set(array.patterns)) != 1 or array.patterns[0] not in _PATTERNS:
                raise ValueError("backend='gpurir' needs a broadband room and one shared pattern in "
                                 f"{sorted(_PATTERNS)} per array")
            t_max = nsample / fs
            t_diff = None
            if mode == "hybrid":  # images only up to the transition, as ours; gpuRIR's diffuse model after it
                t_diff = transition if transition is not None else default_transition(room, src, array, fs, taps)
            # images arriving before t_diff (hybrid) or the end: sizing the cube by t_max in hybrid mode
            # asked for every image of the whole RIR and ran an H200 out of memory at 72 sources
            n_img = gpuRIR.t2n(t_diff or t_max, list(room.dims), c=room.c)
            if order >= 0:
                n_img = [min(int(n), 2 * order + 1) for n in n_img]
            rirs = gpuRIR.simulateRIR(
                list(room.dims), -np.asarray(room.beta), np.asarray(src), np.asarray(array.positions), n_img, t_max,
                fs, Tdiff=t_diff, mic_pattern=_PATTERNS[array.patterns[0]], orV_rcv=np.asarray(array.orientations),
                c=room.c)
            block = np.zeros((len(src), len(array), nsample), dtype=np.float32)
            block[..., : min(nsample, rirs.shape[-1])] = rirs[..., :nsample]
            out.append(torch.from_numpy(block))
        return torch.stack(out).to(dtype=dtype, device=device)
