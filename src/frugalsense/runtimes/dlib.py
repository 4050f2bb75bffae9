"""dlib: its 5-point shape predictor places a face, its ResNet turns the placed face into 128 numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ModelUnavailableError
from frugalsense.runtimes.base import Array

__all__ = ["DlibFaceEmbedder"]


class DlibFaceEmbedder:
    """dlib's `shape_predictor` and `face_recognition_model_v1`, computed in the calling thread."""

    def __init__(self, shape_predictor: Path, network: Path) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ModelUnavailableError("dlib is not installed: pip install dlib-bin") from exc
        for path in (shape_predictor, network):
            if not Path(path).is_file():
                raise ModelUnavailableError(f"model file {path} is missing; reinstall the package that ships it")
        self._dlib: Any = dlib
        self._shape = dlib.shape_predictor(str(shape_predictor))
        self._net = dlib.face_recognition_model_v1(str(network))

    def embed(self, rgb: Array, square: tuple[int, int, int, int]) -> npt.NDArray[np.float32]:
        """The 128-d descriptor of the face inside `square` (left, top, right, bottom) of an RGB picture."""
        shape = self._shape(rgb, self._dlib.rectangle(*square))
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)
