"""OpenCV DNN: plain networks by input name, plus OpenCV's own face detector and recogniser wrappers."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ModelUnavailableError
from frugalsense.runtimes.base import Array

__all__ = ["OpenCVFaceDetector", "OpenCVFaceRecognizer", "OpenCVSession"]


def _cv2(threads: int) -> Any:
    import cv2

    # OpenCV's own pool would run work outside the calling thread and hide it from the receipt's clock.
    cv2.setNumThreads(threads if threads > 1 else 0)
    return cv2


def _require(path: Path) -> str:
    if not Path(path).is_file():
        raise ModelUnavailableError(f"model file {path} is missing; reinstall the package that ships it")
    return str(path)


class OpenCVSession:
    """A network read with `cv2.dnn.readNetFromONNX` and fed its inputs by name."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        cv2 = _cv2(threads)
        self._net = cv2.dnn.readNetFromONNX(_require(path))
        self._outputs = list(self._net.getUnconnectedOutLayersNames())
        self._inputs: list[str] = []

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    def run(self, inputs: Mapping[str, Array]) -> list[Array]:
        for name, value in inputs.items():
            self._net.setInput(np.ascontiguousarray(value), name)
        return [np.asarray(o) for o in self._net.forward(self._outputs)]


class OpenCVFaceDetector:
    """YuNet through `cv2.FaceDetectorYN`: rows of x, y, w, h, five (x, y) landmarks, score. Thread-safe.

    A detector keeps its input size as state, so each thread gets its own (the int8 network is 0.1 MB): one
    request's detection on a large picture never holds up another request's photo.
    """

    def __init__(self, path: Path, *, score_threshold: float, nms_threshold: float = 0.3, threads: int = 1):
        cv2 = _cv2(threads)
        self._cv2: Any = cv2
        self._args = (_require(path), "", (320, 320), score_threshold, nms_threshold, 5000)
        self._own = threading.local()
        self._own.det = self._create()  # the model is checked (and read) now, not on a worker's first photo

    def _create(self) -> Any:
        return self._cv2.FaceDetectorYN.create(*self._args)

    def _detector(self) -> Any:
        det = getattr(self._own, "det", None)
        if det is None:
            det = self._own.det = self._create()
        return det

    def detect(self, bgr: Array) -> Array:
        height, width = bgr.shape[:2]
        det = self._detector()
        det.setInputSize((int(width), int(height)))
        _, faces = det.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else np.asarray(faces, np.float32)

    def detect_at(self, bgr: Array, max_side: int) -> Array:
        """`detect` on a copy whose longer side is at most `max_side` (never enlarged); rows in `bgr`'s pixels."""
        scale = min(1.0, max_side / max(bgr.shape[:2]))
        if scale >= 1.0:
            return self.detect(bgr)
        cv2 = self._cv2
        small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rows: npt.NDArray[np.float32] = np.array(self.detect(small), np.float32)  # a copy: scaled in place
        rows[:, :14] /= scale  # boxes and landmarks; the score stays
        return rows


class OpenCVFaceRecognizer:
    """SFace through `cv2.FaceRecognizerSF`: aligns a 112x112 crop from a YuNet row and embeds it."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        cv2 = _cv2(threads)
        self._rec = cv2.FaceRecognizerSF.create(_require(path), "")

    def align(self, bgr: Array, face_row: Array) -> Array:
        return np.asarray(self._rec.alignCrop(bgr, face_row))

    def embed(self, aligned: Array) -> Array:
        return np.asarray(self._rec.feature(aligned), np.float32).reshape(-1)
