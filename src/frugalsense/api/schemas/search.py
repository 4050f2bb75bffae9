"""Bodies of the search routes: indexing outcomes, items, hits with their reasons, duplicates (the JSON
`search.ingest`, `search.storage` and `search.query` write)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body
from frugalsense.api.schemas.analysis import CostReceipt, Face, Label, Moderation, TextLine, Transcript
from frugalsense.api.schemas.gallery import IdentifiedFace

__all__ = [
    "DuplicateGroups",
    "FaceLink",
    "FaceSighting",
    "IndexFailure",
    "IndexOutcome",
    "IndexedAnalysis",
    "IndexedPage",
    "Item",
    "ItemDeletion",
    "ItemDetail",
    "ItemList",
    "MatchReason",
    "SearchHit",
    "SearchResults",
]


class IndexFailure(Body):
    code: str | None
    message: str


class IndexOutcome(Body):
    """What indexing did with the upload (201: added or updated; 200: unchanged)."""

    source: str
    status: Literal["added", "updated", "unchanged", "failed", "removed"]
    item_id: str | None
    modality: str | None = None
    error: IndexFailure | None = None
    receipt: CostReceipt | None = Field(default=None, description="absent when nothing was analysed")


class FaceSighting(IdentifiedFace):
    """A face stored for an item and, in a video, when it is seen: ``spans`` of (first, last) seconds over the
    sampled frames and ``frames`` how many of them show it."""

    first_seen_s: float | None = None
    last_seen_s: float | None = None
    spans: list[list[float]] | None = None
    frames: int | None = None


class IndexedPage(Body):
    """A page of an item's stored analysis: its faces are sightings once identified, else detections."""

    width: int
    height: int
    page: int | None = None
    time_s: float | None = None
    faces: list[FaceSighting | Face] | None = None
    labels: list[Label] | None = None
    moderation: Moderation | None = None
    text: list[TextLine] | None = None


class IndexedAnalysis(Body):
    """The analysis stored with an item."""

    name: str
    kind: str
    mime: str
    sha256: str
    features: list[str]
    pages: list[IndexedPage]
    transcript: Transcript | None = None
    receipt: CostReceipt


class Item(Body):
    """One indexed file or upload."""

    id: str
    source: str
    sha256: str
    modality: str
    mime: str
    byte_size: int
    pages: int
    duration_s: float | None
    captured_at: str
    indexed_at: str
    nsfw: float | None
    flagged: bool
    encoder: str


class ItemList(Body):
    items: list[Item]


class FaceLink(Body):
    """A face seen in an item, with whom the gallery says it is (a person, or an unknown-face cluster)."""

    face_id: str
    page: int
    person_id: str | None
    person_name: str | None
    cluster_id: str | None


class ItemDetail(Item):
    """An item with its full analysis and its faces."""

    result: IndexedAnalysis
    faces: list[FaceLink]


class ItemDeletion(Body):
    deleted: str = Field(description="the deleted item's id")
    faces: int


class MatchReason(Body):
    """Why an item matched: ``kind`` is "meaning", "words", "face", "label" or "look"."""

    kind: str
    field: str
    detail: str
    score: float | None = None
    words: list[str] | None = None
    face_id: str | None = None
    person_id: str | None = None


class SearchHit(Body):
    item: Item
    url: str
    score: float
    reasons: list[MatchReason]
    persons: list[str]


class SearchResults(Body):
    query: str
    mode: str
    took_ms: float
    hits: list[SearchHit]
    receipt: CostReceipt | None = Field(default=None, description="present when a model ran (search by picture)")


class DuplicateGroups(Body):
    """Groups of items whose first pictures are the same picture, resized or recompressed."""

    groups: list[list[Item]]
