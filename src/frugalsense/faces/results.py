"""What the gallery's calls return: plain dataclasses with ``to_dict()`` for the JSON edges.

>>> from frugalsense.faces.results import Candidate
>>> Candidate("per_1", "Ada", 0.71234).to_dict()
{'person_id': 'per_1', 'name': 'Ada', 'similarity': 0.7123}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frugalsense.ledger import CostReceipt
from frugalsense.results import Box
from frugalsense.store.base import Correction, FaceRecord, Person

__all__ = [
    "UNKNOWN",
    "Candidate",
    "CompareResult",
    "ComparedFace",
    "CorrectionResult",
    "EnrolResult",
    "FaceMatch",
    "IdentifiedFace",
    "IdentifyResult",
    "SearchResult",
]

#: the decision for a face that is nobody in the collection (or too close to call)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Candidate:
    person_id: str
    name: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "name": self.name, "similarity": round(self.similarity, 4)}


@dataclass(frozen=True)
class IdentifiedFace:
    """One face of the probe picture and the decision about it: a person id, or ``"unknown"``."""

    box: Box
    det_score: float
    decision: str
    name: str | None
    similarity: float  # the best candidate's score (0 when there is no candidate)
    candidates: list[Candidate]
    face_id: str | None = None  # the stored sighting; None when the caller opted out
    cluster_id: str | None = None
    excluded: list[str] = field(default_factory=list)  # persons ruled out by "is not" corrections
    climbed: bool = False  # the identification ladder re-scored the candidates with dlib (scores are fused)

    @property
    def known(self) -> bool:
        return self.decision != UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.to_dict(),
            "det_score": round(self.det_score, 4),
            "decision": self.decision,
            "name": self.name,
            "similarity": round(self.similarity, 4),
            "candidates": [c.to_dict() for c in self.candidates],
            "face_id": self.face_id,
            "cluster_id": self.cluster_id,
            "excluded": self.excluded,
            "climbed": self.climbed,
        }


@dataclass
class IdentifyResult:
    collection_id: str
    source_name: str
    source_sha256: str
    threshold: float
    faces: list[IdentifiedFace]
    receipt: CostReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection_id": self.collection_id,
            "source_name": self.source_name,
            "source_sha256": self.source_sha256,
            "threshold": self.threshold,
            "faces": [f.to_dict() for f in self.faces],
            "receipt": self.receipt.to_dict(),
        }


@dataclass
class EnrolResult:
    person: Person
    face: FaceRecord
    faces_found: int
    receipt: CostReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person.to_dict(),
            "face": self.face.to_dict(),
            "faces_found": self.faces_found,
            "receipt": self.receipt.to_dict(),
        }


@dataclass(frozen=True)
class ComparedFace:
    """One face of the target picture against the source face: its similarity and the decision about it."""

    index: int  # the face's place among the target's faces, in the order faces/detect lists them
    box: Box
    det_score: float
    similarity: float  # SFace's cosine similarity to the source face
    same: bool  # the decision: at the threshold, or by the fused score when the pair climbed to dlib
    climbed: bool = False  # SFace was unsure, so dlib embedded both faces and the fused score decided

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": self.box.to_dict(),
            "det_score": round(self.det_score, 4),
            "similarity": round(self.similarity, 4),
            "same": self.same,
            "climbed": self.climbed,
        }


@dataclass
class CompareResult:
    """One source face against every face of the target, as cloud CompareFaces calls answer; the top-level
    ``similarity``, ``same`` and ``box_b`` are those of the best match (the most similar face that matches, else
    the most similar face), so a caller of the one-face comparison reads the same fields as before.

    >>> from frugalsense.ledger import Meter
    >>> far = ComparedFace(0, Box(0, 0, 9, 9), 0.9, similarity=0.1, same=False)
    >>> near = ComparedFace(1, Box(9, 0, 5, 5), 0.8, similarity=0.6, same=True)
    >>> result = CompareResult(0.36, Box(1, 1, 9, 9), 0, 1, [far, near], Meter(0.05).receipt)
    >>> result.best_match, result.same, result.similarity, result.box_b.w
    (1, True, 0.6, 5)
    """

    threshold: float
    box_a: Box  # the source face
    source_face: int  # its place among the source's faces (detection order)
    faces_in_source: int
    target_faces: list[ComparedFace]  # every face of the target, in detection order
    receipt: CostReceipt

    def __post_init__(self) -> None:
        if not self.target_faces:
            raise ValueError("a comparison needs at least one target face")
        if [f.index for f in self.target_faces] != list(range(len(self.target_faces))):
            raise ValueError("target faces must be listed in detection order, indexed from 0")
        if not 0 <= self.source_face < self.faces_in_source:
            raise ValueError(f"source face {self.source_face} is not among {self.faces_in_source} faces")

    @property
    def best(self) -> ComparedFace:
        matched = [f for f in self.target_faces if f.same]
        return max(matched or self.target_faces, key=lambda f: f.similarity)

    @property
    def best_match(self) -> int:
        return self.best.index

    @property
    def similarity(self) -> float:
        return self.best.similarity

    @property
    def same(self) -> bool:
        return self.best.same

    @property
    def box_b(self) -> Box:
        return self.best.box

    @property
    def matches(self) -> list[ComparedFace]:
        """The target faces judged the source's person (AWS: FaceMatches; the others are UnmatchedFaces)."""
        return [f for f in self.target_faces if f.same]

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": round(self.similarity, 4),
            "same": self.same,
            "threshold": self.threshold,
            "box_a": self.box_a.to_dict(),
            "box_b": self.box_b.to_dict(),
            "source_face": self.source_face,
            "faces_in_source": self.faces_in_source,
            "best_match": self.best_match,
            "target_faces": [f.to_dict() for f in self.target_faces],
            "receipt": self.receipt.to_dict(),
        }


@dataclass(frozen=True)
class FaceMatch:
    face_id: str
    similarity: float
    person_id: str | None
    enrolled: bool
    source_name: str
    created_at: str
    cluster_id: str | None
    same_person: bool  # similarity clears the identify threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "similarity": round(self.similarity, 4),
            "person_id": self.person_id,
            "enrolled": self.enrolled,
            "source_name": self.source_name,
            "created_at": self.created_at,
            "cluster_id": self.cluster_id,
            "same_person": self.same_person,
        }


@dataclass
class SearchResult:
    box: Box
    matches: list[FaceMatch]
    receipt: CostReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.to_dict(),
            "matches": [m.to_dict() for m in self.matches],
            "receipt": self.receipt.to_dict(),
        }


@dataclass(frozen=True)
class CorrectionResult:
    face: FaceRecord
    corrections: list[Correction]

    def to_dict(self) -> dict[str, Any]:
        return {"face": self.face.to_dict(), "corrections": [c.to_dict() for c in self.corrections]}
