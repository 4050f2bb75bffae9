"""The path of one request: decode, run each requested feature, return a typed record with its receipt.

```python
from frugalsense import analyze
result = analyze("samples/receipt.png", features=["text"])
result.pages[0].full_text
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from frugalsense.budget import reserve
from frugalsense.cache import ResultCache
from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import Meter
from frugalsense.media.frames import LazyFrames
from frugalsense.media.types import Decoded, Frame
from frugalsense.models.registry import ModelZoo
from frugalsense.results import AnalysisResult, Face, Label, Moderation, PageResult, TextLine
from frugalsense.settings import Settings

if TYPE_CHECKING:
    import numpy.typing as npt

    from frugalsense.fields.types import ReceiptFields
    from frugalsense.ladder.core import Ladder
    from frugalsense.ladder.text import TextPage

__all__ = ["FEATURES", "Analyzer", "Pipeline", "analyze", "default_features", "metered_frames"]

FEATURES = ("faces", "labels", "moderation", "text", "speech", "fields")

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
    labeler: str = "efficientnet-lite0-fp32"  # the int8 gate (int8-gate profile) keeps Lite0 in fp32
    #: labels climb the calibrated ladder of the "labels" profile; False runs `labeler` alone
    labels_ladder: bool = True
    moderator: str = "opennsfw"
    speech: str = "whisper-tiny-en"
    top_k: int = 5
    nsfw_threshold: float = 0.8


class Analyzer:
    """Holds the loaded models of one process and analyses inputs with them. Thread-safe."""

    def __init__(self, settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> None:
        self.settings = settings or Settings()
        self.pipeline = pipeline or Pipeline()
        self.zoo = ModelZoo(self.settings)
        self._labels_ladder: Ladder[Frame] | None = None
        # Ladders are built on first use from the calibrated profiles (settings.profile_dir or shipped ones).
        self._text_ladder: Ladder[TextPage] | None = None
        self._detect_ladder: Ladder[npt.NDArray[np.uint8]] | None = None
        self.cache = ResultCache.from_settings(self.settings)

    def analyze(
        self,
        source: str | os.PathLike[str] | bytes,
        features: Iterable[str] | None = None,
        *,
        name: str | None = None,
        tenant: str | None = None,
        meter: Meter | None = None,
        on_page: Callable[[int, Frame, PageResult], None] | None = None,
    ) -> AnalysisResult:
        """Decode `source` and run `features` on it (default: what suits its kind).

        `on_page` is called for each picture while it is decoded (`analyze_decoded`); with it the result cache is
        not used, since the pictures must be decoded anyway.

        `tenant` keeps the result cache apart per tenant: an answer computed for one is never served to another,
        and callers without a tenant share a namespace of their own. `meter` bills the work and stops it (its CPU
        budget, its cancel event); without one, the request gets the limits of the enclosing `request_limits`
        (the HTTP layer's), else ``settings.max_request_cpu_seconds``.

        >>> import threading
        >>> from frugalsense.ledger import Meter
        >>> analyzer = Analyzer()  # doctest: +SKIP
        >>> stop = threading.Event()
        >>> meter = Meter(0.05, cpu_budget_s=30.0, cancelled=stop)
        >>> analyzer.analyze("scan.pdf", ["text"], tenant="acme", meter=meter)  # doctest: +SKIP
        """
        from frugalsense.media import load

        requested = _check_features(features)
        metering = meter if meter is not None else self.meter()
        if self.cache is not None and on_page is None:
            result = self.cache.analyze(
                source,
                requested,
                metering,
                fingerprint=self.cache.fingerprint(self.pipeline, self.settings),
                decode=lambda: load(source, self.settings, name=name),
                run=lambda decoded: self.analyze_decoded(decoded, requested, metering),
                name=name,
                tenant=tenant,
            )
        else:
            with metering.stage("decode"):
                decoded = load(source, self.settings, name=name)
            result = self.analyze_decoded(decoded, requested, metering, on_page=on_page)
        metering.finish()
        return result

    def meter(self) -> Meter:
        """A request's meter: the limits the HTTP layer set around the work (`request_limits`), else the settings'
        CPU budget, so library calls are bounded too."""
        meter = Meter(self.settings.price_per_cpu_hour)
        if meter.cpu_budget_s is None:
            meter.cpu_budget_s = self.settings.max_request_cpu_seconds
        return meter

    def analyze_decoded(
        self,
        decoded: Decoded,
        features: Sequence[str] | None,
        meter: Meter,
        *,
        on_page: Callable[[int, Frame, PageResult], None] | None = None,
    ) -> AnalysisResult:
        """Run `features` on an input already decoded, its pages or frames one at a time.

        `on_page(number, frame, page)` is called for each picture while it is still decoded, so a caller that
        needs more from the pixels (the index: faces, vectors, a hash) does it in the same pass instead of
        decoding every page again.
        """
        chosen = list(features) if features else list(default_features(decoded.kind))
        if "fields" in chosen and "text" not in chosen and _has_fields(decoded.kind):
            chosen.insert(chosen.index("fields"), "text")  # the fields are read from the text: it runs once
        pages = []
        for number, frame in enumerate(metered_frames(decoded.frames, meter)):
            page = self._analyze_frame(frame, decoded.kind, chosen, meter)
            pages.append(page)
            if on_page is not None:
                on_page(number, frame, page)
            del frame  # the next page is decoded after this one is let go
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
            page.labels = self.labels(frame, meter)
        if "moderation" in features:
            nsfw = self.zoo.get(self.pipeline.moderator).predict([frame], meter)[0]
            threshold = self.pipeline.nsfw_threshold
            page.moderation = Moderation(nsfw=nsfw, flagged=nsfw >= threshold, threshold=threshold)
        if "text" in features:
            page.text = self.text(frame, kind, meter)
        if "fields" in features and _has_fields(kind):
            page.fields = self.fields(page.text or [], meter)
        return page

    def fields(self, lines: Sequence[TextLine], meter: Meter) -> ReceiptFields:
        """A receipt's or invoice's fields from a page's text (fields.receipts), left out when unsure."""
        from frugalsense.fields.receipts import extract_receipt_fields

        with meter.stage("fields", note="layout rules and the receipt field scorer"):
            return extract_receipt_fields(lines, profile_dir=self.settings.profile_dir)

    def labels(self, frame: Frame, meter: Meter) -> list[Label]:
        """ImageNet labels from the labels ladder: a cheap EfficientNet-Lite first, stronger ones when unsure."""
        from frugalsense.models.labels import top_labels

        if not self.pipeline.labels_ladder:
            probs = self.zoo.get(self.pipeline.labeler).predict([frame], meter)[0]
            return top_labels(probs, self.pipeline.top_k)
        from frugalsense.ladder.labels import run_labels

        return top_labels(run_labels(self.labels_ladder(), frame, meter), self.pipeline.top_k)

    def faces(self, frame: Frame, meter: Meter, *, embed: bool = True) -> list[Face]:
        """Detect faces (the face-detect ladder: small copy first) and by default attach identity embeddings."""
        from frugalsense.faces.detect import detect_faces

        bgr = frame.bgr()
        faces = detect_faces(self.detect_ladder(), bgr, meter)
        if embed and faces:
            embedder = self.zoo.get(self.pipeline.face_embedder)
            vectors = embedder.predict([(bgr, f) for f in faces], meter)
            for face, vector in zip(faces, vectors, strict=True):
                face.embedding = vector
                face.embedding_model = embedder.name
        return faces

    def text(self, frame: Frame, kind: str, meter: Meter) -> list[TextLine]:
        """Read text with the text profile's ladder: photos pass the cheap text gate first, then full PP-OCR;
        scans go to the profile's document rungs (shipped: the lite PP-OCR), and to full PP-OCR when unsure."""
        from frugalsense.ladder.text import TextPage, read_text

        small, scale_x, scale_y = ocr_copy(frame)
        release = reserve(
            OCR_BASE_BYTES + OCR_BYTES_PER_PIXEL * small.width * small.height, "reading its text needs"
        )
        try:
            lines = read_text(self.text_ladder(), TextPage(small, kind), meter)
        finally:
            release()
        if small is frame:
            return lines
        return [replace(line, quad=tuple((x * scale_x, y * scale_y) for x, y in line.quad)) for line in lines]

    # The ladders are built on first use from the calibrated profiles (settings.profile_dir or the shipped ones).

    def labels_ladder(self) -> Ladder[Frame]:
        if self._labels_ladder is None:
            from frugalsense.ladder.labels import labels_ladder
            from frugalsense.profiles import load_profile

            self._labels_ladder = labels_ladder(self.zoo, load_profile("labels", self.settings.profile_dir))
        return self._labels_ladder

    def detect_ladder(self) -> Ladder[npt.NDArray[np.uint8]]:
        if self._detect_ladder is None:
            from frugalsense.faces.detect import face_detect_ladder

            self._detect_ladder = face_detect_ladder(self.zoo)
        return self._detect_ladder

    def text_ladder(self) -> Ladder[TextPage]:
        if self._text_ladder is None:
            from frugalsense.ladder.text import text_ladder

            self._text_ladder = text_ladder(self.zoo)
        return self._text_ladder

    def warm_up(self, features: Iterable[str] = FEATURES) -> None:
        """Load the models behind `features` now rather than on the first request: the ones their ladders hold."""
        for feature in _check_features(features) or []:
            if feature == "faces":
                models = [*self.detect_ladder().models(), self.zoo.get(self.pipeline.face_embedder)]
            elif feature == "labels":
                labels_ladder = self.pipeline.labels_ladder
                models = self.labels_ladder().models() if labels_ladder else [self.zoo.get(self.pipeline.labeler)]
            elif feature in ("text", "fields"):
                models = self.text_ladder().models()
            else:
                name = self.pipeline.moderator if feature == "moderation" else self.pipeline.speech
                models = [self.zoo.get(name)]
            for model in models:
                model.load()


def metered_frames(frames: Sequence[Frame], meter: Meter) -> Iterator[Frame]:
    """The pictures in order, one at a time; decoding a page or video frame is billed as a "decode" stage, whose
    start checks the request's budget and cancel event (see `Meter.check`), so a long input stops between pages.

    Drop each picture before asking for the next, or two are alive at once.
    """
    if not isinstance(frames, LazyFrames):
        yield from frames  # decoded already: a single picture
        return
    pictures = iter(frames)
    for _ in range(len(frames)):
        with meter.stage("decode"):
            frame = next(pictures)
        yield frame
        del frame


#: PP-OCR (RapidOCR) shrinks every picture to at most this many pixels a side before it detects or reads a line
OCR_MAX_SIDE = 2000

#: PP-OCR's working memory beyond the picture itself, measured as the peak resident size over a warm process:
#: +281 MB on a 1,000 px square page, +532 MB at 1,984 px (its largest): about a base and a cost per pixel
OCR_BASE_BYTES = 200 * 1024 * 1024
OCR_BYTES_PER_PIXEL = 90


def ocr_copy(frame: Frame) -> tuple[Frame, float, float]:
    """The picture the text ladder reads, and the factors that take its coordinates back to `frame`'s.

    PP-OCR works on a copy of at most `OCR_MAX_SIDE` px (sides rounded to multiples of 32, bilinear), crops and
    all; making that copy here, the same way, gives the same lines while a huge page (a 7,700 px scan) never
    reaches the engine, which holds several float copies of what it is given. Smaller pictures pass unchanged.

    >>> import numpy as np
    >>> small, sx, sy = ocr_copy(Frame(np.zeros((3000, 1500, 3), np.uint8), page=1))
    >>> small.pixels.shape, round(sx, 4), round(sy, 4), small.page
    ((1984, 992, 3), 1.5121, 1.5121, 1)
    """
    height, width = frame.height, frame.width
    if max(height, width) <= OCR_MAX_SIDE:
        return frame, 1.0, 1.0
    import cv2

    ratio = OCR_MAX_SIDE / max(height, width)
    new_w, new_h = (round(int(side * ratio) / 32) * 32 for side in (width, height))
    resized = cv2.resize(np.ascontiguousarray(frame.pixels), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pixels = np.asarray(resized, dtype=np.uint8)
    pixels.flags.writeable = False
    small = Frame(pixels=pixels, page=frame.page, time_s=frame.time_s)
    return small, width / new_w, height / new_h


def looks_like_scan(frame: Frame) -> bool:
    """A scan or screenshot of a document (the text ladder's routing rule, kept here for callers)."""
    from frugalsense.ladder.text import looks_like_scan as rule

    return rule(frame)


def _has_fields(kind: str) -> bool:
    from frugalsense.fields.types import FIELD_KINDS

    return kind in FIELD_KINDS


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
