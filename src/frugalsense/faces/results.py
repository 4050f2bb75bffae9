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


@dataclass
class CompareResult:
    similarity: float
    same: bool
    threshold: float
    box_a: Box
    box_b: Box
    receipt: CostReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": round(self.similarity, 4),
            "same": self.same,
            "threshold": self.threshold,
            "box_a": self.box_a.to_dict(),
            "box_b": self.box_b.to_dict(),
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
