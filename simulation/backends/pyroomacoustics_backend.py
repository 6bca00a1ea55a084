"""pyroomacoustics as a reference backend, brought to roomtone's conventions.

pyroomacoustics weights images by 1 / d (not 1 / (4 pi d)), delays everything by
frac_delay_length // 2 samples and high-passes at 10 Hz; this backend divides by
4 pi, removes the delay, turns the filter off and sets the speed of sound to the
room's. Its kernel is an 81-tap Hann sinc from a lookup table by default; a
longer `frac_delay_length` brings it closer to rir-generator's.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..arrays import MicArray
from ..rooms import Room
from ._registry import register_backend

_WALL_NAMES = ("west", "east", "south", "north", "floor", "ceiling")  # x0, x1, y0, y1, z0, z1


@register_backend("pyroomacoustics")
class PyroomacousticsBackend:
    name = "pyroomacoustics"

    def __init__(self, frac_delay_length: int = 81) -> None:
        if frac_delay_length < 3 or frac_delay_length % 2 == 0:
            raise ValueError(f"frac_delay_length must be an odd integer in [3, inf); got {frac_delay_length}")
        self.frac_delay_length = frac_delay_length

    def simulate(self, rooms: Sequence[Room], sources: Sequence[np.ndarray], arrays: Sequence[MicArray], *,
                 fs: float, nsample: int, order: int, mode: str, transition: float | None, taps: int,
                 dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        import pyroomacoustics as pra

        if mode != "ism":
            raise ValueError("mode must be 'ism' for backend='pyroomacoustics' (its hybrid is ray tracing)")
        saved = {k: pra.constants.get(k) for k in ("rir_hpf_enable", "frac_delay_length", "c")}
        out = np.zeros((len(rooms), len(sources[0]), len(arrays[0]), nsample))
        try:
            pra.constants.set("rir_hpf_enable", False)
            pra.constants.set("frac_delay_length", self.frac_delay_length)
            for b, (room, src, array) in enumerate(zip(rooms, sources, arrays)):
                if room.uses_bands or any(p != 1.0 for p in array.patterns):
                    raise ValueError("backend='pyroomacoustics' supports broadband rooms and omni capsules only; "
                                     "use backend='torch' for bands, air absorption or directivity")
                pra.constants.set("c", room.c)
                max_order = order if order >= 0 else math.ceil(nsample * room.c / fs / min(room.dims)) + 2
                materials = {w: pra.Material(energy_absorption=a) for w, a in zip(_WALL_NAMES, room.absorption)}
                shoebox = pra.ShoeBox(list(room.dims), fs=fs, materials=materials, max_order=max_order,
                                      air_absorption=False)
                for s in src:
                    shoebox.add_source(list(s))
                shoebox.add_microphone_array(np.asarray(array.positions).T)
                shoebox.compute_rir()
                delay = self.frac_delay_length // 2
                for m, per_source in enumerate(shoebox.rir):
                    for s, rir in enumerate(per_source):
                        kept = rir[delay : delay + nsample] / (4.0 * math.pi)
                        out[b, s, m, : len(kept)] = kept
        finally:
            for k, v in saved.items():
                pra.constants.set(k, v)
        return torch.from_numpy(out).to(dtype=dtype, device=device)
