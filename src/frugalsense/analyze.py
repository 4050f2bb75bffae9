"""The path of one request: decode, run each requested feature, return a typed record with its receipt.

>>> from frugalsense import analyze
>>> result = analyze("samples/receipt.png", features=["text"])   # doctest: +SKIP
>>> result.pages[0].full_text                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from frugalsense.errors import InvalidRequestError
from frugalsense.ladder.ledger import Meter
from frugalsense.media.types import Decoded, Frame
from frugalsense.models.registry import ModelZoo
from frugalsense.results import AnalysisResult, Face, Moderation, PageResult, TextLine
from frugalsense.settings import Settings

__all__ = ["FEATURES", "Analyzer", "Pipeline", "analyze", "default_features"]

FEATURES = ("faces", "labels", "moderation", "text", "speech")

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "image": ("faces", "labels", "moderation", "text"),
    "document": ("text",),
    "audio": ("speech",),
    "video": ("faces", "labels", "moderation", "speech"),
}


def default_features(kind: str) -> tuple[str, ...]:
    return _DEFAULTS[kind]


@dataclass(frozen=True)
class Pipeline:
    """Which model serves each step. The cost engine's profiles choose these; here are the defaults."""

    face_detector: str = "yunet-int8"
    face_embedder: str = "sface"
    labeler: str = "efficientnet-lite0-int8"
    moderator: str = "opennsfw"
    text_gate: str = "text-gate"
    scene_ocr: str = "ppocr-v4"
    document_ocr: str = "tesseract-eng"
    speech: str = "whisper-tiny-en"
    top_k: int = 5
    nsfw_threshold: float = 0.8
    text_gate_threshold: float = 0.2
    ocr_confidence_threshold: float = 0.75


class Analyzer:
    """Holds the loaded models of one process and analyses inputs with them. Thread-safe."""

    def __init__(self, settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> None:
        self.settings = settings or Settings()
        self.pipeline = pipeline or Pipeline()
        self.zoo = ModelZoo(self.settings)

    def analyze(
        self,
        source: str | os.PathLike[str] | bytes,
        features: Iterable[str] | None = None,
        *,
        name: str | None = None,
    ) -> AnalysisResult:
        """Decode `source` and run `features` on it (default: what suits its kind)."""
        from frugalsense.media import load

        requested = _check_features(features)
        meter = Meter(self.settings.price_per_cpu_hour)
        with meter.stage("decode"):
            decoded = load(source, self.settings, name=name)
        return self.analyze_decoded(decoded, requested, meter)

    def analyze_decoded(self, decoded: Decoded, features: Sequence[str] | None, meter: Meter) -> AnalysisResult:
        chosen = list(features) if features else list(default_features(decoded.kind))
        pages = [self._analyze_frame(frame, decoded.kind, chosen, meter) for frame in decoded.frames]
        transcript = None
        if "speech" in chosen and decoded.audio is not None:
            transcript = self.zoo.get(self.pipeline.speech).predict([decoded.audio], meter)[0]
        return AnalysisResult(
            name=decoded.name,
            kind=decoded.kind,
            mime=decoded.mime,
            sha256=decoded.sha256,
            features=chosen,
            pages=pages,
            receipt=meter.receipt,
            transcript=transcript,
        )

    def _analyze_frame(self, frame: Frame, kind: str, features: Sequence[str], meter: Meter) -> PageResult:
        page = PageResult(width=frame.width, height=frame.height, page=frame.page, time_s=frame.time_s)
        if "faces" in features:
            page.faces = self.faces(frame, meter)
        if "labels" in features:
            from frugalsense.models.labels import top_labels

            probs = self.zoo.get(self.pipeline.labeler).predict([frame], meter)[0]
            page.labels = top_labels(probs, self.pipeline.top_k)
        if "moderation" in features:
            nsfw = self.zoo.get(self.pipeline.moderator).predict([frame], meter)[0]
            threshold = self.pipeline.nsfw_threshold
            page.moderation = Moderation(nsfw=nsfw, flagged=nsfw >= threshold, threshold=threshold)
        if "text" in features:
            page.text = self.text(frame, kind, meter)
        return page

    def faces(self, frame: Frame, meter: Meter, *, embed: bool = True) -> list[Face]:
        """Detect faces and (by default) attach each one's identity embedding."""
        faces: list[Face] = self.zoo.get(self.pipeline.face_detector).predict([frame], meter)[0]
        if embed and faces:
            embedder = self.zoo.get(self.pipeline.face_embedder)
            bgr = frame.bgr()
            vectors = embedder.predict([(bgr, f) for f in faces], meter)
            for face, vector in zip(faces, vectors, strict=True):
                face.embedding = vector
                face.embedding_model = embedder.name
        return faces

    def text(self, frame: Frame, kind: str, meter: Meter) -> list[TextLine]:
        """Read text. Photos pass the cheap text gate first; scans go to the document engine, photos of
        scenes to the scene engine, and a low-confidence reading climbs to the other engine."""
        is_scan = kind == "document"
        if not is_scan:
            with meter.stage("route"):
                is_scan = looks_like_scan(frame)
            if not is_scan:
                score = self.zoo.get(self.pipeline.text_gate).predict([frame], meter)[0]
                if score < self.pipeline.text_gate_threshold:
                    return []
        order = [self.pipeline.document_ocr, self.pipeline.scene_ocr]
        if not is_scan:
            order.reverse()
        best: list[TextLine] = []
        best_confidence = -1.0
        for engine in order:
            lines: list[TextLine] = self.zoo.get(engine).predict([frame], meter)[0]
            confidence = mean_confidence(lines)
            if confidence > best_confidence:
                best, best_confidence = lines, confidence
            if confidence >= self.pipeline.ocr_confidence_threshold:
                break
        return best

    def warm_up(self, features: Iterable[str] = FEATURES) -> None:
        """Load the models behind `features` now rather than on the first request."""
        names = {
            "faces": [self.pipeline.face_detector, self.pipeline.face_embedder],
            "labels": [self.pipeline.labeler],
            "moderation": [self.pipeline.moderator],
            "text": [self.pipeline.text_gate, self.pipeline.scene_ocr, self.pipeline.document_ocr],
            "speech": [self.pipeline.speech],
        }
        for feature in _check_features(features) or []:
            for model in names[feature]:
                self.zoo.get(model).load()


def mean_confidence(lines: Sequence[TextLine]) -> float:
    """Character-weighted mean confidence; no text at all counts as no confidence."""
    chars = sum(len(line.text) for line in lines)
    if chars == 0:
        return 0.0
    return sum(line.confidence * len(line.text) for line in lines) / chars


def looks_like_scan(frame: Frame) -> bool:
    """A scan or screenshot of a document: mostly near-white paper and almost no colour."""
    small = frame.pixels[:: max(1, frame.height // 128), :: max(1, frame.width // 128)].astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    luminance = small.mean(axis=2)
    return bool((luminance > 190).mean() > 0.5 and (spread < 40).mean() > 0.9)


def _check_features(features: Iterable[str] | None) -> list[str] | None:
    if features is None:
        return None
    chosen = [f.strip().lower() for f in features if f.strip()]
    unknown = sorted(set(chosen) - set(FEATURES))
    if unknown:
        raise InvalidRequestError(f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(FEATURES)}")
    return list(dict.fromkeys(chosen)) or None


_default: Analyzer | None = None


def analyze(
    source: str | os.PathLike[str] | bytes,
    features: Iterable[str] | None = None,
    *,
    settings: Settings | None = None,
    name: str | None = None,
) -> AnalysisResult:
    """Analyse one input with a process-wide `Analyzer` (created on first call)."""
    global _default
    if settings is not None:
        return Analyzer(settings).analyze(source, features, name=name)
    if _default is None:
        _default = Analyzer()
    return _default.analyze(source, features, name=name)
