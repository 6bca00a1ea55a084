"""Spatial room impulse responses of shoebox rooms: pure compute (numpy and torch).

Output layout everywhere: (batch/rooms, sources, receivers/channels, samples),
float pressure per unit source strength (1 / (4 pi d) for a direct path).
"""

from .acoustics import (decay_time, direct_path_labels, direct_to_reverberant_ratio, energy_decay_curve,
                        mid_decay_times, octave_band)
from .api import simulate
from .arrays import PATTERNS, MicArray, circular, custom, direction, foa, linear, tetra_mic
from .backends import create_backend, list_backends, register_backend
from .ism import image_source_rir
from .rooms import OCTAVE_BANDS, Room, air_absorption_coefficient, speed_of_sound
from .tail import lattice_moments
from .trajectory import trajectory_rirs

__all__ = [
    "OCTAVE_BANDS",
    "PATTERNS",
    "MicArray",
    "Room",
    "air_absorption_coefficient",
    "circular",
    "create_backend",
    "custom",
    "decay_time",
    "direct_path_labels",
    "direct_to_reverberant_ratio",
    "direction",
    "energy_decay_curve",
    "foa",
    "image_source_rir",
    "lattice_moments",
    "linear",
    "list_backends",
    "mid_decay_times",
    "octave_band",
    "register_backend",
    "simulate",
    "speed_of_sound",
    "tetra_mic",
    "trajectory_rirs",
]
