"""One module per capability (faces, labels, moderation, ocr, speech, text), a registry and model cards."""

from frugalsense.models.base import Model, ModelCard
from frugalsense.models.registry import ModelZoo, register, registry

__all__ = ["Model", "ModelCard", "ModelZoo", "register", "registry"]
