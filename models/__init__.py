"""LLaMA-style decoder (DESIGN §2) and the Lightning module that hosts it."""

from models.transformer import PRESETS, ModelConfig, Transformer, model_config

__all__ = ["PRESETS", "ModelConfig", "Transformer", "model_config"]
