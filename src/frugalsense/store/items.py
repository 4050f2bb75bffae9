"""The typed rows of the search index: what a `SearchStore` takes and gives back, whatever the backend.

>>> Filters().active, Filters(labels=("dog",)).active
(False, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FaceLink", "Filters", "Item", "NewItem", "StoredVectors", "Vector", "WriteOutcome"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FaceLink:
    """A face seen in an item, with whom the gallery says it is (a person, or an unknown-face cluster)."""

    face_id: str
    page: int
    person_id: str | None
    person_name: str | None
    cluster_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "page": self.page,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "cluster_id": self.cluster_id,
        }


@dataclass(frozen=True)
class Item:
    """One indexed file or upload: where it came from, what it is, and what analysis found in it."""

    id: str
    rowid: int
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
    phash: int | None
    encoder: str
    result: dict[str, Any] = field(repr=False)

    def to_dict(self, *, with_result: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "sha256": self.sha256,
            "modality": self.modality,
            "mime": self.mime,
            "byte_size": self.byte_size,
            "pages": self.pages,
            "duration_s": self.duration_s,
            "captured_at": self.captured_at,
            "indexed_at": self.indexed_at,
            "nsfw": None if self.nsfw is None else round(self.nsfw, 4),
            "flagged": self.flagged,
            "encoder": self.encoder,
        }
        if with_result:
            out["result"] = self.result
        return out


@dataclass(frozen=True)
class NewItem:
    """Everything one item's write puts in the database, in one transaction."""

    source: str
    sha256: str
    modality: str
    mime: str
    byte_size: int
    pages: int
    duration_s: float | None
    captured_at: str
    nsfw: float | None
    flagged: bool
    phash: int | None
    encoder: str
    result: dict[str, Any]
    text: str
    transcript: str
    labels: dict[str, float]  # best score of each label over the item's pictures
    faces: list[tuple[str, int]]  # (face id, page)
    vectors: list[tuple[str, Vector]]  # (part, unit vector)


@dataclass(frozen=True)
class StoredVectors:
    """A tenant's vectors for one encoder, row-aligned, as the vector index loads them."""

    version: int
    item_rowids: npt.NDArray[np.int64]
    parts: list[str]
    matrix: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Filters:
    """Conditions every hit must meet; None means "any"."""

    person_ids: tuple[str, ...] = ()  # person or cluster ids; an item matches if it shows any of them
    labels: tuple[str, ...] = ()  # every label must be among the item's labels
    modalities: tuple[str, ...] = ()
    since: str | None = None  # ISO date or time, compared with captured_at
    until: str | None = None
    max_nsfw: float | None = None
    safe_only: bool = False  # leave out items the moderation model flagged
    source_prefix: str | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.person_ids
            or self.labels
            or self.modalities
            or self.since
            or self.until
            or self.max_nsfw is not None
            or self.safe_only
            or self.source_prefix
        )


@dataclass(frozen=True)
class WriteOutcome:
    """What one write did: the item, the faces of the record it replaced (for the gallery to erase), and the
    search-state versions before and after (so the in-memory index knows whether it saw every change)."""

    item: Item | None
    replaced_faces: list[str]
    replaced_rowid: int | None
    version_before: int
    version_after: int
    vector_rows: list[int]
