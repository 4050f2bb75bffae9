"""Bodies of analysis and stateless face routes: the cost receipt, the analysis of a file, face detection and
comparison (the JSON `CostReceipt.to_dict`, `AnalysisResult.to_dict` and `CompareResult.to_dict` write)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body, Point

if TYPE_CHECKING:
    from frugalsense.api.schemas.fields import ReceiptFields  # built on Box and CostReceipt; Page is rebuilt

__all__ = [
    "Analysis",
    "Box",
    "ComparedFace",
    "CostReceipt",
    "Face",
    "FaceComparison",
    "FaceDetection",
    "Label",
    "Moderation",
    "Page",
    "PagePreview",
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


class PagePreview(Body):
    """A JPEG of the page or frame, asked for with ``previews``: a box at (x, y) of the page is at
    (x * scale, y * scale) on it."""

    jpeg_base64: str = Field(description="the JPEG's bytes, base64")
    width: int
    height: int
    scale: float = Field(description="the preview's pixels per pixel of the page as analysed (at most 1)")


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
    fields: ReceiptFields | None = Field(default=None, description="with the fields feature: a receipt's fields")
    preview: PagePreview | None = Field(default=None, description="with previews: the first pages' pictures")


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
    previews_omitted: int | None = Field(
        default=None, description="with previews: how many pages or frames past the cap got no picture"
    )


class FaceDetection(Body):
    """Every face found on every picture of the upload."""

    name: str
    faces: list[Face]
    receipt: CostReceipt


class ComparedFace(Body):
    """One face of the target picture against the source face."""

    index: int = Field(description="the face's place among the target's faces, as faces/detect lists them")
    box: Box
    det_score: float
    similarity: float = Field(description="SFace's cosine similarity to the source face")
    same: bool = Field(description="the decision: at the threshold, or by the fused score when it climbed")
    climbed: bool = Field(description="SFace was unsure: dlib embedded both faces and the fused score decided")


class FaceComparison(Body):
    """The source's largest face (or face ``source_face``) against every face of the target, as cloud
    CompareFaces calls answer. ``similarity``, ``same`` and ``box_b`` are those of the best match: the most
    similar target face that matches, else the most similar one."""

    similarity: float
    same: bool
    threshold: float
    box_a: Box = Field(description="the source face")
    box_b: Box = Field(description="the best-matching target face")
    source_face: int = Field(description="the source face's place among the source's faces (detection order)")
    faces_in_source: int
    best_match: int = Field(description="index of the best match in target_faces")
    target_faces: list[ComparedFace] = Field(description="every face of the target, in detection order")
    receipt: CostReceipt
