"""Pretraining: model inputs (features), objectives (models), checkpoints; training and evaluation."""

from .features import PRESETS, FbankPreset, fbank, mixup, seld_features, spec_augment
from .models import create_model, list_models

__all__ = [
    "PRESETS",
    "FbankPreset",
    "create_model",
    "fbank",
    "list_models",
    "mixup",
    "seld_features",
    "spec_augment",
]
