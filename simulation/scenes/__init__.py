"""SELD scene synthesis: seeded plans, rendering from RIRs, DCASE frame labels, captions.

Pure compute (numpy, scipy, torch through the engine): no files, no storage.
"""

from .grid import RirGrid, grid_rirs
from .labels import FrameLabel, caption, direction_words, frame_labels, to_dcase_rows, to_seld_labels
from .plan import Box, LibraryItem, PlanConfig, PlannedEvent, ScenePlan, plan_scene, stepped_azimuth
from .render import (AmbienceBank, Rendered, RirBank, ambience_bank, convolve_event, convolve_events, diffuse_noise,
                     event_signal, render_scene)
from .synth import Scene, room_region, scene_rirs, synthesize_scene

__all__ = [
    "AmbienceBank",
    "Box",
    "FrameLabel",
    "LibraryItem",
    "PlanConfig",
    "PlannedEvent",
    "Rendered",
    "RirBank",
    "RirGrid",
    "Scene",
    "ScenePlan",
    "ambience_bank",
    "caption",
    "convolve_event",
    "convolve_events",
    "diffuse_noise",
    "direction_words",
    "event_signal",
    "frame_labels",
    "grid_rirs",
    "plan_scene",
    "render_scene",
    "room_region",
    "scene_rirs",
    "stepped_azimuth",
    "synthesize_scene",
    "to_dcase_rows",
    "to_seld_labels",
]
