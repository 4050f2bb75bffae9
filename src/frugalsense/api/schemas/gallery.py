"""Bodies of the gallery routes: collections, persons, stored faces, enrolment, identification, face search,
corrections, clusters and erasures (the JSON the `store.base` rows and `faces.results` write)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body, Point
from frugalsense.api.schemas.analysis import Box, CostReceipt

__all__ = [
    "Candidate",
    "Cluster",
    "ClusterList",
    "Collection",
    "CollectionList",
    "Correction",
    "CorrectionOutcome",
    "Enrolment",
    "Erasure",
    "FaceMatch",
    "FaceSearch",
    "Identification",
    "IdentifiedFace",
    "Person",
    "PersonList",
    "PersonWithFaces",
    "StoredFace",
]


class Collection(Body):
    id: str
    name: str
    created_at: str


class CollectionList(Body):
    collections: list[Collection]


class Person(Body):
    id: str
    collection_id: str
    name: str
    metadata: dict[str, Any]
    created_at: str
    face_count: int = Field(description="enrolled (reference) faces; sightings are not counted")


class PersonList(Body):
    persons: list[Person]


class StoredFace(Body):
    """A stored face: an enrolled reference of a person, or a sighting (attributed to a person, or unknown and
    grouped into a cluster)."""

    id: str
    collection_id: str | None
    person_id: str | None
    enrolled: bool
    source_sha256: str
    source_name: str
    box: Box
    landmarks: list[Point]
    det_score: float
    model: str
    has_crop: bool
    cluster_id: str | None
    created_at: str


class PersonWithFaces(Person):
    """A person and their faces."""

    faces: list[StoredFace]


class Erasure(Body):
    """How much an erasure removed."""

    faces: int
    persons: int
    collections: int
    corrections: int


class Enrolment(Body):
    person: Person
    face: StoredFace
    faces_found: int = Field(description="faces detected in the picture")
    receipt: CostReceipt


class Candidate(Body):
    person_id: str
    name: str
    similarity: float


class IdentifiedFace(Body):
    """One face of the probe picture and the decision about it: a person id, or "unknown"."""

    box: Box
    det_score: float
    decision: str = Field(description='a person id, or "unknown"')
    name: str | None
    similarity: float = Field(description="the best candidate's score (0 when there is none)")
    candidates: list[Candidate]
    face_id: str | None = Field(description="the stored sighting (null when the faces were not kept)")
    cluster_id: str | None
    excluded: list[str] = Field(description='persons ruled out by "is not" corrections')
    climbed: bool = Field(description="the candidates were re-scored by the identification ladder")


class Identification(Body):
    collection_id: str
    source_name: str
    source_sha256: str
    threshold: float
    faces: list[IdentifiedFace]
    receipt: CostReceipt


class FaceMatch(Body):
    face_id: str
    similarity: float
    person_id: str | None
    enrolled: bool
    source_name: str
    created_at: str
    cluster_id: str | None
    same_person: bool = Field(description="the similarity clears the identify threshold")


class FaceSearch(Body):
    """The stored faces most like the largest face of the picture."""

    box: Box
    matches: list[FaceMatch]
    receipt: CostReceipt


class Correction(Body):
    id: str
    face_id: str
    person_id: str
    kind: Literal["is", "is_not"]
    created_at: str


class CorrectionOutcome(Body):
    face: StoredFace
    corrections: list[Correction]


class Cluster(Body):
    """Unknown faces that look like one person, most recent last."""

    id: str
    size: int
    face_ids: list[str]
    first_seen: str
    last_seen: str
    sources: list[str]


class ClusterList(Body):
    clusters: list[Cluster]
