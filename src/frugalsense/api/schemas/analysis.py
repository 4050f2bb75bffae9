"""Bodies of analysis and stateless face routes: the cost receipt, the analysis of a file, face detection and
comparison (the JSON `CostReceipt.to_dict`, `AnalysisResult.to_dict` and `CompareResult.to_dict` write)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body, Point

__all__ = [
    "Analysis",
    "Box",
    "CostReceipt",
    "Face",
    "FaceComparison",
    "FaceDetection",
    "Label",
    "Moderation",
    "Page",
    "StageCost",
    "TextLine",
    "Transcript",
    "TranscriptSegment",
]


class StageCost(Body):
    """One metered stage of the request."""

    stage: str
    model: str | None
    cpu_s: float
    wall_ms: float
    items: int
    clock: Literal["thread", "process"] = Field(
        description="thread: the calling thread's CPU time; process: the whole process's (CTranslate2)"
    )
    note: str


class CostReceipt(Body):
    """What the request cost: every stage, the CPU-seconds they add up to, and their price."""

    cpu_seconds: float
    wall_ms: float
    cost_usd: float
    price_per_cpu_hour: float
    models: list[str] = Field(description="models used, in the order they first ran")
    stages: list[StageCost]


class Box(Body):
    """An axis-aligned box in pixels of the decoded picture."""

    x: float
    y: float
    w: float
    h: float


class Face(Body):
    """A detected face: box, five landmarks (right eye, left eye, nose, mouth right, mouth left), score."""

    box: Box
    landmarks: list[Point]
    score: float


class Label(Body):
    name: str
    score: float
    index: int


class Moderation(Body):
    """Probability that the picture is not safe for work, and the decision at the configured threshold."""

    nsfw: float
    flagged: bool
    threshold: float


class TextLine(Body):
    """A line of text, its four corners clockwise from top-left, and the reader's confidence."""

    text: str
    quad: list[Point]
    confidence: float
    engine: str


class TranscriptSegment(Body):
    start_s: float
    end_s: float
    text: str


class Transcript(Body):
    text: str
    language: str
    duration_s: float
    speech_s: float = Field(description="seconds voice-activity detection kept")
    segments: list[TranscriptSegment]


class Page(Body):
    """One picture: the photo itself, one page of a document, or one video frame. A feature's field is there
    only when that feature ran."""

    width: int
    height: int
    page: int | None = Field(default=None, description="page number of a document (absent for a photo)")
    time_s: float | None = Field(default=None, description="time of a video frame (absent otherwise)")
    faces: list[Face] | None = None
    labels: list[Label] | None = None
    moderation: Moderation | None = None
    text: list[TextLine] | None = None


class Analysis(Body):
    """One input: what it was, what was found on each picture in it, its transcript, and the receipt."""

    name: str
    kind: str
    mime: str
    sha256: str
    features: list[str]
    pages: list[Page]
    transcript: Transcript | None = Field(default=None, description="present when speech was transcribed")
    receipt: CostReceipt


class FaceDetection(Body):
    """Every face found on every picture of the upload."""

    name: str
    faces: list[Face]
    receipt: CostReceipt


class FaceComparison(Body):
    """1:1 verification of the largest face of each picture."""

    similarity: float
    same: bool
    threshold: float
    box_a: Box
    box_b: Box
    receipt: CostReceipt
