"""Augmentation as replayable recipes: AudioGen-style mixing, reverb, noise, gain, time shift,
speed, and the 16 SELD channel-swap rotations, with the clip metadata updated to match.

Pure compute (numpy, torch): no files, no storage, no global random state.
"""

from .batch import BatchAugment
from .functional import add_noise, apply_gain, channel_swap, convolve_aligned, mix, mix_gains, rms, shift, speed
from .metadata import (MIN_EVENT_S, MIX_TEMPLATES, ONE_EVENT_KEYS, describe_events, merge_meta, one_event, room_ids,
                       rotate_meta, source_ids, speed_meta, time_shift_meta)
from .recipe import (STEPS, Context, Gain, Mix, Noise, Recipe, Resources, Reverb, Rotate, Shift, Spec, Speed, Step,
                     apply_recipe, apply_recipe_batch, apply_recipe_meta, draw_recipe, sometimes_upmixed)
from .spatial import NUM_PATTERNS, channel_map, pattern_angles, rotate_caption, valid_patterns

__all__ = [
    "MIN_EVENT_S", "MIX_TEMPLATES", "NUM_PATTERNS", "ONE_EVENT_KEYS", "STEPS", "BatchAugment", "Context", "Gain",
    "Mix", "Noise", "Recipe", "Resources", "Reverb", "Rotate", "Shift", "Spec", "Speed", "Step", "add_noise",
    "apply_gain", "apply_recipe", "apply_recipe_batch", "apply_recipe_meta", "channel_map", "channel_swap",
    "convolve_aligned", "describe_events", "draw_recipe", "merge_meta", "mix", "mix_gains", "one_event",
    "pattern_angles", "rms", "room_ids", "rotate_caption", "rotate_meta", "shift", "sometimes_upmixed", "source_ids",
    "speed",
    "speed_meta",
    "time_shift_meta", "valid_patterns",
]
