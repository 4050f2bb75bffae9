"""The text ladder: a cheap text-presence gate, then the OCR engine that suits the page, climbing when unsure.

Rungs, cheapest first (the shipped profile ``text.json`` names the ones it uses and holds their thresholds):

1. ``text-gate``: photos only. PP-OCR's text detector on a 320 px copy says whether there is text at all; most
   photos have none and stop here, for a few per cent of an OCR pass. Scans and document pages skip the gate.
2. ``tesseract-eng``: scans and document pages. Tesseract reads the page; it is sure when nearly all the
   characters sit in lines it read with high confidence.
3. ``reread-lines``: only Tesseract's unsure lines are read again by PP-OCR's recogniser (no detector), which
   costs a few hundredths of a second per line instead of a full PP-OCR pass.
4. ``ppocr-lite``: scans and document pages. PP-OCR's detector on a copy of at most ``lite_max_side`` px, no
   angle classifier, the recogniser line by line padded to ``lite_min_width`` px instead of 320. On SROIE and
   FUNSD it reads better than the full pipeline at about 55% of its CPU (bench/cost_quality.py).
5. ``ppocr-v4``: the full PP-OCR pipeline (detector, angle classifier, recogniser); scene photos go straight
   here, because Tesseract reads photos badly and text in photos is not always upright.

    >>> from frugalsense.settings import Settings
    >>> from frugalsense.models.registry import ModelZoo
    >>> from frugalsense.ledger import Meter
    >>> ladder = text_ladder(ModelZoo(Settings()))                          # doctest: +SKIP
    >>> lines = read_text(ladder, TextPage(frame, "image"), Meter(0.05))    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.ladder.core import Ladder, Outcome
from frugalsense.ladder.profiles import Profile, load_profile
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame
from frugalsense.models.base import Model
from frugalsense.models.registry import ModelZoo
from frugalsense.results import TextLine

__all__ = [
    "TASK",
    "DetectedLines",
    "FullOCRRung",
    "GateRung",
    "LiteOCRRung",
    "RereadRung",
    "TesseractRung",
    "TextPage",
    "detect_lines",
    "page_confidence",
    "read_text",
    "recognise",
    "reread_crops",
    "text_ladder",
]

TASK = "text"
Quad = Sequence[tuple[float, float]]
_SKIPPED = {"skipped": True}


def looks_like_scan(frame: Frame) -> bool:
    """A scan or screenshot of a document: mostly near-white paper and almost no colour."""
    small = frame.pixels[:: max(1, frame.height // 128), :: max(1, frame.width // 128)].astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    luminance = small.mean(axis=2)
    return bool((luminance > 190).mean() > 0.5 and (spread < 40).mean() > 0.9)


@dataclass
class TextPage:
    """One picture to read and the kind of input it came from ("image", "document", ...)."""

    frame: Frame
    kind: str
    _scan: bool | None = field(default=None, repr=False)

    def is_document(self, meter: Meter) -> bool:
        """Document pages and scans go to Tesseract; photos to the gate and PP-OCR. Decided once, metered."""
        if self._scan is None:
            if self.kind == "document":
                self._scan = True
            else:
                with meter.stage("route"):
                    self._scan = looks_like_scan(self.frame)
        return self._scan


def page_confidence(lines: Sequence[tuple[str, float]], line_confidence: float) -> float:
    """Share of a page's characters that sit in lines read with at least `line_confidence`.

    >>> round(page_confidence([("TOTAL 12.50", 0.95), ("x", 0.2)], 0.9), 3)
    0.917
    >>> page_confidence([], 0.9)
    0.0
    """
    chars = sum(len(text.strip()) for text, _ in lines)
    if chars == 0:
        return 0.0
    sure = sum(len(text.strip()) for text, conf in lines if conf >= line_confidence)
    return sure / chars


def _crop(bgr: npt.NDArray[np.uint8], quad: Quad) -> npt.NDArray[np.uint8]:
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    height = max(ys) - min(ys)
    # PP-OCR's recogniser was trained on detector crops, which carry a margin around the glyphs.
    pad = max(2.0, 0.2 * height)
    h, w = bgr.shape[:2]
    x0, x1 = int(max(0, min(xs) - pad)), int(min(w, max(xs) + pad))
    y0, y1 = int(max(0, min(ys) - pad)), int(min(h, max(ys) + pad))
    return np.ascontiguousarray(bgr[y0:y1, x0:x1])


def reread_crops(engine: Any, bgr: npt.NDArray[np.uint8], quads: Sequence[Quad]) -> list[tuple[str, float]]:
    """PP-OCR's recogniser (no detector) on the boxes `quads` of a BGR picture: (text, confidence) per box."""
    crops = [_crop(bgr, q) for q in quads]
    keep = [i for i, c in enumerate(crops) if c.shape[0] >= 2 and c.shape[1] >= 2]
    out = [("", 0.0)] * len(quads)
    if keep:
        results, _ = engine.text_rec([crops[i] for i in keep])
        for i, res in zip(keep, results, strict=True):
            out[i] = (str(res[0]), float(res[1]))
    return out


@dataclass(frozen=True)
class DetectedLines:
    """PP-OCR detector boxes in the picture's own pixels, and the upright crops the recogniser reads."""

    quads: list[Quad]
    crops: list[npt.NDArray[np.uint8]]


def detect_lines(engine: Any, bgr: npt.NDArray[np.uint8], max_side: int | None = None) -> DetectedLines:
    """PP-OCR's DB detector alone (RapidOCR's own pre- and post-processing), at its default input size or,
    with `max_side`, on a copy whose longer side is at most that many pixels."""
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    raw_h, raw_w = bgr.shape[:2]
    img, ratio_h, ratio_w = engine.preprocess(bgr)
    img, record = engine.maybe_add_letterbox(img, {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}})
    det = engine.text_det
    if max_side is None:
        prepare = det.get_preprocess(max(img.shape[:2]))
    else:
        prepare = DetPreProcess(max_side, "max", det.mean, det.std)
    tensor = prepare(img)
    if tensor is None:
        return DetectedLines([], [])
    boxes, _ = det.postprocess_op(det.infer(tensor)[0], img.shape[:2])
    boxes = det.filter_tag_det_res(boxes, img.shape[:2])
    if len(boxes) == 0:
        return DetectedLines([], [])
    boxes = engine.sorted_boxes(boxes)
    crops = engine.get_crop_img_list(img, boxes)
    points = engine._get_origin_points(boxes, record, raw_h, raw_w)
    quads: list[Quad] = [[(float(x), float(y)) for x, y in quad] for quad in points]
    return DetectedLines(quads, crops)


def recognise(
    engine: Any, crops: Sequence[npt.NDArray[np.uint8]], min_width: int = 320
) -> list[tuple[str, float]]:
    """PP-OCR's recogniser on each crop alone, padded to at least `min_width` px at its 48 px height.

    Alone, because batching pads every line to the widest of its batch, and on one thread the padding costs more
    than the batch saves (0.84 against 1.0 CPU-s per page). RapidOCR pads every line to 320 px; the network is
    convolutional with a CTC head, so a short word needs no more than its own width plus a margin.
    """
    rec = engine.text_rec
    height = int(rec.rec_image_shape[1])
    out = []
    for crop in crops:
        h, w = crop.shape[:2]
        ratio = max(min_width / height, w / max(1, h))
        tensor = np.ascontiguousarray(rec.resize_norm_img(crop, ratio)[None], np.float32)
        ((text, score),) = rec.postprocess_op(rec.session(tensor)[0], False)
        out.append((str(text), float(score)))
    return out


@dataclass(frozen=True)
class GateRung:
    """Photos: sure there is no text when the gate's score is low. Documents skip it (confidence 0)."""

    gate: Model[Frame, float]
    name: str = "text-gate"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        if item.is_document(meter):
            return Outcome(output=[], confidence=0.0, extra=_SKIPPED)
        score = float(self.gate.predict([item.frame], meter)[0])
        return Outcome(output=[], confidence=float(np.clip(1.0 - score, 0.0, 1.0)), extra={"score": score})


@dataclass(frozen=True)
class TesseractRung:
    """Documents: Tesseract, sure in proportion to the characters in lines above `line_confidence`."""

    engine: Model[Frame, list[TextLine]]
    line_confidence: float
    name: str = "tesseract-eng"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        if not item.is_document(meter):
            return Outcome(output=[], confidence=0.0, extra=_SKIPPED)
        lines = self.engine.predict([item.frame], meter)[0]
        confidence = page_confidence([(ln.text, ln.confidence) for ln in lines], self.line_confidence)
        return Outcome(output=lines, confidence=confidence)


@dataclass(frozen=True)
class RereadRung:
    """Tesseract's lines below `line_confidence` read again by PP-OCR's recogniser; the surer reading wins."""

    ppocr: Model[Frame, list[TextLine]]
    line_confidence: float
    name: str = "reread-lines"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        below = previous[-1].output if previous else []
        if not item.is_document(meter) or not below:
            return Outcome(output=[], confidence=0.0, extra=_SKIPPED)
        unsure = [i for i, ln in enumerate(below) if ln.confidence < self.line_confidence]
        lines = list(below)
        if unsure:
            self.ppocr.load(meter)
            engine = getattr(self.ppocr, "_engine", None)
            if engine is None:
                raise ConfigurationError(f"{self.ppocr.name} has no recogniser to re-read lines with")
            bgr = item.frame.bgr()
            # The recogniser is the PP-OCR model's own engine, so it shares that model's lock.
            with (
                meter.stage("ocr", self.ppocr.name, items=len(unsure), note="re-read lines"),
                self.ppocr._run_lock,
            ):
                readings = reread_crops(engine, bgr, [below[i].quad for i in unsure])
            for i, (text, score) in zip(unsure, readings, strict=True):
                if text and score > lines[i].confidence:
                    lines[i] = TextLine(text=text, quad=lines[i].quad, confidence=score, engine=self.ppocr.name)
        confidence = page_confidence([(ln.text, ln.confidence) for ln in lines], self.line_confidence)
        return Outcome(output=lines, confidence=confidence, extra={"reread": len(unsure)})


@dataclass(frozen=True)
class LiteOCRRung:
    """Documents: PP-OCR without its angle classifier (scans are upright), the detector on a copy whose longer
    side is at most `max_side`, the recogniser one line at a time. Photos skip it for the full pipeline."""

    ppocr: Model[Frame, list[TextLine]]
    line_confidence: float
    max_side: int | None
    min_width: int = 320
    name: str = "ppocr-lite"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        if not item.is_document(meter):
            return Outcome(output=[], confidence=0.0, extra=_SKIPPED)
        self.ppocr.load(meter)
        engine = getattr(self.ppocr, "_engine", None)
        if engine is None:
            raise ConfigurationError(f"{self.ppocr.name} has no detector and recogniser to run apart")
        # The parts are the PP-OCR model's own engine, so they share that model's lock.
        with self.ppocr._run_lock:
            with meter.stage("ocr", self.ppocr.name, note="lite: detector"):
                found = detect_lines(engine, item.frame.bgr(), self.max_side)
            with meter.stage("ocr", self.ppocr.name, items=len(found.crops), note="lite: recogniser"):
                readings = recognise(engine, found.crops, self.min_width)
        lines = [
            TextLine(text=text, quad=tuple(quad), confidence=score, engine=self.ppocr.name)
            for quad, (text, score) in zip(found.quads, readings, strict=True)
            # RapidOCR's own cut: the full pipeline drops the same low-scoring readings.
            if text and score >= float(engine.text_score)
        ]
        confidence = page_confidence([(ln.text, ln.confidence) for ln in lines], self.line_confidence)
        return Outcome(output=lines, confidence=confidence, extra={"boxes": len(found.quads)})


@dataclass(frozen=True)
class FullOCRRung:
    """The full PP-OCR pipeline: the last word on documents, the first (after the gate) on photos."""

    engine: Model[Frame, list[TextLine]]
    name: str = "ppocr-v4"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        lines = self.engine.predict([item.frame], meter)[0]
        return Outcome(output=lines, confidence=1.0)


def text_ladder(zoo: ModelZoo, profile: Profile | None = None) -> Ladder[TextPage]:
    """The text ladder of `profile` (default: the user's or the shipped ``text`` profile)."""
    chosen = profile or load_profile(TASK, zoo.settings.profile_dir)
    params = chosen.params
    line_confidence = float(params.get("line_confidence", 0.9))
    side = params.get("lite_max_side")
    lite_side = None if side is None else int(side)
    makers: dict[str, Any] = {
        "text-gate": lambda: GateRung(zoo.get(str(params.get("gate", "text-gate")))),
        "tesseract-eng": lambda: TesseractRung(zoo.get("tesseract-eng"), line_confidence),
        "reread-lines": lambda: RereadRung(zoo.get("ppocr-v4"), line_confidence),
        "ppocr-lite": lambda: LiteOCRRung(
            zoo.get("ppocr-v4"), line_confidence, lite_side, int(params.get("lite_min_width", 320))
        ),
        "ppocr-v4": lambda: FullOCRRung(zoo.get("ppocr-v4")),
    }
    unknown = [name for name in chosen.rungs if name not in makers]
    if unknown:
        raise ConfigurationError(f"text profile names unknown rungs {unknown}; known: {sorted(makers)}")
    return Ladder(TASK, [makers[name]() for name in chosen.rungs], chosen.thresholds)


def read_text(ladder: Ladder[TextPage], page: TextPage, meter: Meter) -> list[TextLine]:
    """Run the text ladder on one page; every model it runs lands on `meter`'s receipt."""
    lines: list[TextLine] = ladder.run(page, meter).output
    return lines
