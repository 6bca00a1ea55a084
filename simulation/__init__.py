"""Spatial room impulse responses of shoebox rooms: pure compute (numpy and torch).

Output layout everywhere: (batch/rooms, sources, receivers/channels, samples),
float pressure per unit source strength (1 / (4 pi d) for a direct path).
"""

from .arrays import PATTERNS, MicArray, circular, custom, direction, foa, linear, tetra_mic
from .ism import image_source_rir
from .rooms import OCTAVE_BANDS, Room, air_absorption_coefficient, speed_of_sound

__all__ = [
    "OCTAVE_BANDS",
    "PATTERNS",
    "MicArray",
    "Room",
    "air_absorption_coefficient",
    "circular",
    "custom",
    "direction",
    "foa",
    "image_source_rir",
    "linear",
    "speed_of_sound",
    "tetra_mic",
]
