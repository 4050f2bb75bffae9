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

A plain grey photo has no text: the gate stops it, and the receipt shows the gate was all that ran.

    >>> import numpy as np
    >>> from frugalsense.settings import Settings
    >>> from frugalsense.models.registry import ModelZoo
    >>> from frugalsense.ledger import Meter
    >>> ladder = text_ladder(ModelZoo(Settings()))
    >>> meter = Meter(0.05)
    >>> read_text(ladder, TextPage(Frame(np.full((240, 320, 3), 90, np.uint8)), "image"), meter)
    []
    >>> sorted({stage.model for stage in meter.receipt.stages if stage.model})
    ['text-gate']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalsense.errors import ConfigurationError
from frugalsense.ladder.core import Ladder, Outcome
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame
from frugalsense.models.base import Model
from frugalsense.models.ocr import PPOCRv4
from frugalsense.models.registry import ModelZoo
from frugalsense.profiles import Profile, load_profile
from frugalsense.results import TextLine

__all__ = [
    "TASK",
    "FullOCRRung",
    "GateRung",
    "LiteOCRRung",
    "RereadRung",
    "TesseractRung",
    "TextPage",
    "page_confidence",
    "read_text",
    "text_ladder",
]

TASK = "text"
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

    ppocr: PPOCRv4
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
            bgr = item.frame.bgr()
            with meter.stage("ocr", self.ppocr.name, items=len(unsure), note="re-read lines"):
                readings = self.ppocr.reread(bgr, [below[i].quad for i in unsure])
            for i, (text, score) in zip(unsure, readings, strict=True):
                if text and score > lines[i].confidence:
                    lines[i] = TextLine(text=text, quad=lines[i].quad, confidence=score, engine=self.ppocr.name)
        confidence = page_confidence([(ln.text, ln.confidence) for ln in lines], self.line_confidence)
        return Outcome(output=lines, confidence=confidence, extra={"reread": len(unsure)})


@dataclass(frozen=True)
class LiteOCRRung:
    """Documents: PP-OCR without its angle classifier (scans are upright), the detector on a copy whose longer
    side is at most `max_side`, the recogniser one line at a time. Photos skip it for the full pipeline."""

    ppocr: PPOCRv4
    line_confidence: float
    max_side: int | None
    min_width: int = 320
    name: str = "ppocr-lite"

    def run(self, item: TextPage, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[TextLine]]:
        if not item.is_document(meter):
            return Outcome(output=[], confidence=0.0, extra=_SKIPPED)
        self.ppocr.load(meter)
        with meter.stage("ocr", self.ppocr.name, note="lite: detector"):
            found = self.ppocr.detect_lines(item.frame.bgr(), self.max_side)
        with meter.stage("ocr", self.ppocr.name, items=len(found.crops), note="lite: recogniser"):
            readings = self.ppocr.recognise(found.crops, self.min_width)
        cut = self.ppocr.text_score
        lines = [
            TextLine(text=text, quad=quad, confidence=score, engine=self.ppocr.name)
            for quad, (text, score) in zip(found.quads, readings, strict=True)
            # RapidOCR's own cut: the full pipeline drops the same low-scoring readings.
            if text and score >= cut
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


def _line_reader(zoo: ModelZoo) -> PPOCRv4:
    """The PP-OCR model whose detector and recogniser the document rungs run apart."""
    model = zoo.get("ppocr-v4")
    if not isinstance(model, PPOCRv4):
        raise ConfigurationError(f"{model.name} has no detector and recogniser to run apart; it must be a PPOCRv4")
    return model


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
        "reread-lines": lambda: RereadRung(_line_reader(zoo), line_confidence),
        "ppocr-lite": lambda: LiteOCRRung(
            _line_reader(zoo), line_confidence, lite_side, int(params.get("lite_min_width", 320))
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
