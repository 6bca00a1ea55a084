"""Pretraining: model inputs (features), objectives (models), checkpoints; training and evaluation."""

from .checkpoints import encoder_state, export_beats, export_ssast, load_beats, load_checkpoint, load_ssast, save_checkpoint
from .features import PRESETS, FbankPreset, fbank, mixup, normalize_seld, seld_features, spec_augment
from .models import create_model, list_models

__all__ = [
    "PRESETS",
    "FbankPreset",
    "create_model",
    "encoder_state",
    "export_beats",
    "export_ssast",
    "fbank",
    "list_models",
    "load_beats",
    "load_checkpoint",
    "load_ssast",
    "mixup",
    "normalize_seld",
    "save_checkpoint",
    "seld_features",
    "spec_augment",
]
