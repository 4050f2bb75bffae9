"""Typed results. Every field is plain data so results serialise to JSON the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from frugalsense.ledger import CostReceipt

if TYPE_CHECKING:
    from frugalsense.fields.types import ReceiptFields

__all__ = [
    "AnalysisResult",
    "Box",
    "Face",
    "Label",
    "Moderation",
    "PageResult",
    "TextLine",
    "Transcript",
    "TranscriptSegment",
]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the decoded picture."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        if self.w < 0 or self.h < 0:
            raise ValueError(f"box width and height must be >= 0, got {self.w}x{self.h}")

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"x": round(self.x, 1), "y": round(self.y, 1), "w": round(self.w, 1), "h": round(self.h, 1)}


@dataclass
class Face:
    """A detected face: box, five landmarks (right eye, left eye, nose, mouth right, mouth left), score."""

    box: Box
    landmarks: list[tuple[float, float]]
    score: float
    #: unit-length identity embedding when the "faces" feature embedded it (not serialised by default)
    embedding: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    embedding_model: str | None = None

    def __post_init__(self) -> None:
        if len(self.landmarks) != 5:
            raise ValueError(f"a face has 5 landmarks, got {len(self.landmarks)}")

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": self.box.to_dict(),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
        }
        if with_embedding and self.embedding is not None:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
            out["embedding_model"] = self.embedding_model
        return out


@dataclass(frozen=True)
class Label:
    name: str
    score: float
    index: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "index": self.index}


@dataclass(frozen=True)
class Moderation:
    """Probability that the picture is not safe for work, and the decision at the configured threshold."""

    nsfw: float
    flagged: bool
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"nsfw": round(self.nsfw, 4), "flagged": self.flagged, "threshold": self.threshold}


@dataclass(frozen=True)
class TextLine:
    """A line of text with its quadrilateral (four (x, y) corners clockwise from top-left) and confidence."""

    text: str
    quad: tuple[tuple[float, float], ...]
    confidence: float
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad],
            "confidence": round(self.confidence, 4),
            "engine": self.engine,
        }


@dataclass(frozen=True)
class TranscriptSegment:
    start_s: float
    end_s: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 2), "end_s": round(self.end_s, 2), "text": self.text}


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    segments: list[TranscriptSegment]
    duration_s: float
    speech_s: float  # what voice-activity detection kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "duration_s": round(self.duration_s, 2),
            "speech_s": round(self.speech_s, 2),
            "segments": [s.to_dict() for s in self.segments],
        }


@dataclass
class PageResult:
    """Results for one picture: the photo itself, one page of a document, or one video frame."""

    width: int
    height: int
    page: int | None = None
    time_s: float | None = None
    faces: list[Face] | None = None
    labels: list[Label] | None = None
    moderation: Moderation | None = None
    text: list[TextLine] | None = None
    fields: ReceiptFields | None = None  # the "fields" feature: a receipt's or invoice's fields (fields.types)

    @property
    def full_text(self) -> str:
        return "\n".join(line.text for line in self.text or [])

    def to_dict(self, *, with_embeddings: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"width": self.width, "height": self.height}
        if self.page is not None:
            out["page"] = self.page
        if self.time_s is not None:
            out["time_s"] = round(self.time_s, 3)
        if self.faces is not None:
            out["faces"] = [f.to_dict(with_embedding=with_embeddings) for f in self.faces]
        if self.labels is not None:
            out["labels"] = [label.to_dict() for label in self.labels]
        if self.moderation is not None:
            out["moderation"] = self.moderation.to_dict()
        if self.text is not None:
            out["text"] = [line.to_dict() for line in self.text]
        if self.fields is not None:
            out["fields"] = self.fields.to_dict()
        return out


@dataclass
class AnalysisResult:
    """One input's record: what it was, what was found on each picture in it, its transcript, and the receipt."""

    name: str
    kind: str
    mime: str
    sha256: str
    features: list[str]
    pages: list[PageResult]
    receipt: CostReceipt
    transcript: Transcript | None = None

    def to_dict(self, *, with_embeddings: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "mime": self.mime,
            "sha256": self.sha256,
            "features": self.features,
            "pages": [p.to_dict(with_embeddings=with_embeddings) for p in self.pages],
        }
        if self.transcript is not None:
            out["transcript"] = self.transcript.to_dict()
        out["receipt"] = self.receipt.to_dict()
        return out
