"""One call from a room, an array and an event library to a labelled SELD clip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..api import simulate
from ..arrays import MicArray
from ..rooms import Room
from ..trajectory import trajectory_rirs
from .grid import RirGrid, grid_rirs
from .labels import FrameLabel, caption, frame_labels
from .plan import Box, LibraryItem, PlanConfig, ScenePlan, plan_scene
from .render import AmbienceBank, RirBank, render_scene

__all__ = ["Scene", "room_region", "scene_rirs", "synthesize_scene"]


@dataclass(frozen=True)
class Scene:
    """audio (channels, samples) float32 at fs, its recipe, frame labels, caption and the peak gain applied;
    the clip SNR and, per plan event, its dry level, SNR and power in `audio` in dB (see `render_scene`)."""

    audio: np.ndarray
    plan: ScenePlan
    labels: list[FrameLabel]
    caption: str
    gain: float
    snr_db: float | None = None
    event_level_db: tuple[float, ...] = ()
    event_snr_db: tuple[float | None, ...] = ()
    event_power_db: tuple[float, ...] = ()


def room_region(room: Room, margin: float = 0.5) -> Box:
    """The room shrunk by `margin` m on every side: where sources may go."""
    if not all(2 * margin < d for d in room.dims):
        raise ValueError(f"margin must be below half the smallest room dimension {min(room.dims) / 2} m; got {margin}")
    return Box((margin,) * 3, tuple(d - margin for d in room.dims))


def scene_rirs(plan: ScenePlan, room: Room, array: MicArray, fs: float, *, rir_duration: float = 0.5,
               mode: Literal["ism", "hybrid"] = "hybrid", **simulate_options: Any) -> list[np.ndarray]:
    """RIRs for every plan event, float64: (M, L) static; (F, M, L) moving at onset + k hop, k = 0..frames.

    All static events go to one batched `simulate` call; each moving event to one
    `trajectory_rirs` call (one batched simulation over its frames).
    """
    options = dict(fs=fs, duration=rir_duration, mode=mode, **simulate_options)
    out: list[np.ndarray | None] = [None] * len(plan.events)
    static = [i for i, e in enumerate(plan.events) if not e.moving]
    if static:
        points = np.stack([plan.events[i].position_at(plan.events[i].onset, plan.center) for i in static])
        rirs = simulate(room, points, array, **options)[0].double().cpu().numpy()
        for k, i in enumerate(static):
            out[i] = rirs[k]
    for i, event in enumerate(plan.events):
        if event.moving:
            frames = int(round((event.offset - event.onset) / plan.hop))
            path = event.position_at(event.onset + np.arange(frames + 1) * plan.hop, plan.center)
            out[i] = trajectory_rirs(room, path, array, frame_period=plan.hop, **options)[1].double().cpu().numpy()
    return [r for r in out if r is not None]


def synthesize_scene(room: Room, array: MicArray, seed: int, library: Sequence[LibraryItem],
                     signals: Mapping[str, np.ndarray], fs: float, *, config: PlanConfig = PlanConfig(),
                     region: Box | None = None, rir_duration: float = 0.5, mode: Literal["ism", "hybrid"] = "hybrid",
                     phrases: Mapping[str, str] | None = None, peak: float = 0.5,
                     noise_color: Literal["white", "pink"] = "pink",
                     stored: tuple[RirGrid, RirBank | np.ndarray] | None = None, bank: AmbienceBank | None = None,
                     rt60: float | None = None, **simulate_options: Any) -> Scene:
    """Plan (seeded), get RIRs, render, label and caption one clip.

    array: tetra_mic or foa (or any MicArray) already placed in `room`; its centre is
    the label origin. signals: dry mono arrays at fs keyed by library item id.
    region: where sources may be (default: the room less 0.5 m on every side).
    stored: (grid, rirs (G, M, L)) of RIRs stored around this array: sources sit on the
    grid and nothing is simulated (a RirBank of them keeps their spectra for the next scenes).
    Otherwise RIRs are simulated for the planned positions: rir_duration s, mode and
    `simulate_options` go to the engine. bank: an `ambience_bank` to take the ambience from
    (default: synthesised per clip). rt60: the room's RT60 (s) the caption's reverberance
    words use (default: the Sabine estimate; see `caption`).
    """
    missing = sorted({item.id for item in library} - set(signals))
    if missing:
        raise ValueError(f"signals has no dry signal for library ids {missing}")
    grid = stored[0] if stored is not None else None
    plan = plan_scene(seed, library, array.center, region or room_region(room), config, grid=grid)
    if stored is not None:
        rirs = grid_rirs(plan, grid, stored[1])
    else:
        rirs = scene_rirs(plan, room, array, fs, rir_duration=rir_duration, mode=mode, **simulate_options)
    rendered = render_scene(plan, signals, rirs, fs, array, c=room.c, peak=peak, noise_color=noise_color, bank=bank)
    return Scene(rendered.audio, plan, frame_labels(plan), caption(plan, room, phrases, rt60=rt60), rendered.gain,
                 rendered.snr_db, rendered.event_level_db, rendered.event_snr_db, rendered.event_power_db)
