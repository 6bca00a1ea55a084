"""Pretraining and supervised objectives on patch transformers, built by name from a registry."""

from .beats import BeatsConfig, BeatsEncoder, BeatsPretrain, BeatsPretrainConfig
from .encoder import EncoderConfig, PatchEncoder, adapt_input_channels
from .heads import Seld, SeldConfig, Tagging, TaggingConfig, adpit_loss
from .registry import create_model, list_models
from .ssast import SSAST, SSASTConfig
from .tokenizer import BeatsTokenizer, BeatsTokenizerConfig, BeatsTokenizerTraining, NormEMAVectorQuantizer

__all__ = [
    "BeatsConfig",
    "BeatsEncoder",
    "BeatsPretrain",
    "BeatsPretrainConfig",
    "BeatsTokenizer",
    "BeatsTokenizerConfig",
    "BeatsTokenizerTraining",
    "NormEMAVectorQuantizer",
    "EncoderConfig",
    "PatchEncoder",
    "SSAST",
    "SSASTConfig",
    "Seld",
    "SeldConfig",
    "Tagging",
    "TaggingConfig",
    "adapt_input_channels",
    "adpit_loss",
    "create_model",
    "list_models",
]
