"""The storage seam: the `Store` and `SearchStore` Protocols and the typed rows `Store` returns (the search
index's rows are in `frugalsense.store.items`).

Every method that touches tenant data takes ``tenant_id`` first and treats an id owned by another tenant exactly
like a missing one (``NotFoundError``), so callers cannot learn that foreign objects exist. Every write is one
transaction, committed (and durable) before the method returns.

    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(":memory:")
    >>> acme = store.create_tenant("acme")
    >>> store.create_collection(acme.id, "staff").name
    'staff'

Callers hold a `Store` or a `SearchStore`, never a backend's class, so a PostgreSQL backend drops in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from frugalsense.results import Box
from frugalsense.store.items import FaceLink, Filters, Item, NewItem, StoredVectors, WriteOutcome
from frugalsense.store.validation import Limits

__all__ = [
    "ApiKey",
    "Collection",
    "Correction",
    "CorrectionKind",
    "Erased",
    "FaceRecord",
    "FaceVectors",
    "NewApiKey",
    "NewFace",
    "Person",
    "Role",
    "SearchStore",
    "Store",
    "Tenant",
]

Role = Literal["admin", "user"]
CorrectionKind = Literal["is", "is_not"]


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


@dataclass(frozen=True)
class ApiKey:
    """A key's record. The secret itself is never stored, only its SHA-256."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    role: Role
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``key`` is the only time the plain secret is available; show it once."""

    record: ApiKey
    key: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "key": self.key}


@dataclass(frozen=True)
class Collection:
    id: str
    tenant_id: str
    name: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


@dataclass(frozen=True)
class Person:
    id: str
    tenant_id: str
    collection_id: str
    name: str
    metadata: dict[str, Any]
    created_at: str
    #: enrolled (reference) faces; sightings attributed to the person are not counted
    face_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection_id": self.collection_id,
            "name": self.name,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "face_count": self.face_count,
        }


@dataclass(frozen=True)
class NewFace:
    """A face to store: where it came from, where it is, and its identity embedding (unit length)."""

    embedding: npt.NDArray[np.float32] = field(repr=False)
    model: str
    box: Box
    landmarks: list[tuple[float, float]]
    det_score: float
    source_sha256: str
    source_name: str
    collection_id: str | None = None
    person_id: str | None = None
    enrolled: bool = False
    cluster_id: str | None = None
    crop_path: str | None = None  # relative to the data folder
    id: str | None = None  # chosen by the store when None


@dataclass(frozen=True)
class FaceRecord:
    """A stored face. ``enrolled`` faces are a person's references; the others are sightings, attributed to a
    person (``person_id``) when identify decided so, else unknown and grouped into a cluster."""

    id: str
    tenant_id: str
    collection_id: str | None
    person_id: str | None
    enrolled: bool
    source_sha256: str
    source_name: str
    box: Box
    landmarks: list[tuple[float, float]]
    det_score: float
    embedding: npt.NDArray[np.float32] = field(repr=False)
    model: str
    crop_path: str | None
    cluster_id: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection_id": self.collection_id,
            "person_id": self.person_id,
            "enrolled": self.enrolled,
            "source_sha256": self.source_sha256,
            "source_name": self.source_name,
            "box": self.box.to_dict(),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "det_score": round(self.det_score, 4),
            "model": self.model,
            "has_crop": self.crop_path is not None,
            "cluster_id": self.cluster_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class FaceVectors:
    """All of one tenant's faces for one embedding model, column-wise, as the vector index loads them."""

    ids: list[str]
    collection_ids: list[str | None]
    person_ids: list[str | None]
    enrolled: list[bool]
    cluster_ids: list[str | None]
    matrix: npt.NDArray[np.float32]  # (n, dim)


@dataclass(frozen=True)
class Correction:
    id: str
    tenant_id: str
    face_id: str
    person_id: str
    kind: CorrectionKind
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "face_id": self.face_id,
            "person_id": self.person_id,
            "kind": self.kind,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Erased:
    """What one erasure removed; ``crop_paths`` (relative to the data folder) are for the caller to unlink."""

    face_ids: list[str] = field(default_factory=list)
    crop_paths: list[str] = field(default_factory=list)
    persons: int = 0
    collections: int = 0
    corrections: int = 0

    def plus(self, other: Erased) -> Erased:
        """Both erasures' counts together (the chunks of one erasure)."""
        return Erased(
            self.face_ids + other.face_ids,
            self.crop_paths + other.crop_paths,
            self.persons + other.persons,
            self.collections + other.collections,
            self.corrections + other.corrections,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": len(self.face_ids),
            "persons": self.persons,
            "collections": self.collections,
            "corrections": self.corrections,
        }


class Store(Protocol):
    """What the service needs from storage. `SQLiteStore` and `PostgresStore` implement it."""

    #: where the data is: the SQLite file, or the ``postgresql://`` address (tables with connections of their
    #: own, such as console sessions and the batch-job journal, open it again)
    path: str

    def close(self) -> None: ...

    def data_version(self) -> int:
        """Changes whenever another connection (another process) commits."""
        ...

    def face_version(self, tenant_id: str) -> int:
        """Goes up by exactly one with every write to the tenant's faces or corrections (whichever process makes
        it): a loaded face index is current while this matches what it saw."""
        ...

    def checkpoint(self) -> bool:
        """Fold the write-ahead log into the database file and empty it (after an erasure); False when readers
        of older snapshots kept it from finishing."""
        ...

    def search_store(self) -> SearchStore:
        """The search index's tables in the same database, on a connection of their own: close it when done."""
        ...

    # tenants and keys
    def create_tenant(self, name: str) -> Tenant: ...
    def get_tenant(self, tenant_id: str) -> Tenant: ...
    def list_tenants(self) -> list[Tenant]: ...
    def delete_tenant(self, tenant_id: str) -> Erased: ...
    def erase_tenant_faces(
        self, tenant_id: str, limit: int = ..., before_delete: Callable[[list[str]], None] | None = None
    ) -> Erased:
        """Delete up to ``limit`` of a tenant's faces in one transaction (the chunks of its erasure)."""
        ...

    def create_api_key(self, tenant_id: str, name: str, role: Role = "user") -> NewApiKey: ...
    def verify_api_key(self, key: str) -> ApiKey | None: ...
    def list_api_keys(self, tenant_id: str) -> list[ApiKey]: ...
    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey: ...

    # collections and persons
    def create_collection(self, tenant_id: str, name: str) -> Collection: ...
    def get_collection(self, tenant_id: str, collection_id: str) -> Collection: ...
    def list_collections(self, tenant_id: str) -> list[Collection]: ...
    def delete_collection(self, tenant_id: str, collection_id: str) -> Erased: ...
    def begin_collection_erasure(self, tenant_id: str, collection_id: str) -> None:
        """Hide the collection, its persons and faces from every read and blank their names (one transaction)."""
        ...

    def erase_collection_chunk(
        self,
        tenant_id: str,
        collection_id: str,
        limit: int = ...,
        before_delete: Callable[[list[str]], None] | None = None,
    ) -> Erased:
        """Delete up to ``limit`` faces of a collection being erased, or its persons and itself once no face is
        left (``collections`` is then 1), in one transaction."""
        ...

    def erasing_collections(self) -> list[tuple[str, str]]:
        """(tenant, collection) of every erasure begun and not finished (a crash interrupted it)."""
        ...

    def create_person(
        self, tenant_id: str, collection_id: str, name: str, metadata: Mapping[str, Any] | None = None
    ) -> Person: ...
    def create_persons(self, tenant_id: str, collection_id: str, names: Sequence[str]) -> list[Person]: ...
    def get_person(self, tenant_id: str, person_id: str) -> Person: ...
    def get_persons(self, tenant_id: str, person_ids: Sequence[str]) -> dict[str, Person]: ...
    def list_persons(self, tenant_id: str, collection_id: str | None = None) -> list[Person]: ...
    def delete_person(self, tenant_id: str, person_id: str) -> Erased: ...

    # faces
    def add_face(self, tenant_id: str, face: NewFace) -> FaceRecord: ...
    def add_faces(self, tenant_id: str, faces: Sequence[NewFace]) -> list[FaceRecord]: ...
    def get_face(self, tenant_id: str, face_id: str) -> FaceRecord: ...
    def add_face_embedding(self, tenant_id: str, face_id: str, model: str, vector: npt.ArrayLike) -> None: ...
    def person_embeddings(
        self, tenant_id: str, person_ids: Sequence[str], model: str
    ) -> dict[str, npt.NDArray[np.float32]]: ...
    def get_faces(self, tenant_id: str, face_ids: Sequence[str]) -> dict[str, FaceRecord]: ...
    def list_faces(
        self,
        tenant_id: str,
        *,
        person_id: str | None = None,
        collection_id: str | None = None,
        cluster_id: str | None = None,
        unknown_only: bool = False,
    ) -> list[FaceRecord]: ...
    def face_vectors(self, tenant_id: str, model: str) -> FaceVectors: ...
    def delete_face(self, tenant_id: str, face_id: str) -> Erased: ...
    def set_clusters(self, tenant_id: str, assignments: Mapping[str, str | None]) -> None: ...
    def correct_face(self, tenant_id: str, face_id: str, person_id: str, kind: CorrectionKind) -> Correction:
        """Record a correction and apply it in the same transaction: "is" makes the face an enrolled face of the
        person (in the person's collection, out of any cluster); "is_not" takes it away from that person if it
        was attributed to them."""
        ...

    def list_corrections(self, tenant_id: str, kind: CorrectionKind | None = None) -> list[Correction]: ...
    def promote_cluster(self, tenant_id: str, cluster_id: str, collection_id: str, name: str) -> Person:
        """Create a person from a cluster's faces (all become its enrolled faces) in one transaction."""
        ...


class SearchStore(Protocol):
    """What the search index needs from storage: items with their labels, face links, vectors, full text and
    picture hashes. Each write is one transaction per call; deleting an item takes everything it owns with it."""

    #: what callers may store (source keys and names are checked before any work)
    limits: Limits

    def close(self) -> None: ...
    def checkpoint(self) -> bool: ...

    # writes
    def put_item(self, tenant_id: str, new: NewItem) -> WriteOutcome:
        """Insert an item, replacing the tenant's record of the same source (its faces are returned for the
        gallery to erase)."""
        ...

    def put_items(self, tenant_id: str, items: Sequence[NewItem]) -> list[WriteOutcome]:
        """Many `put_item`s in one transaction (bulk loads)."""
        ...

    def delete_item(self, tenant_id: str, item_id: str) -> WriteOutcome: ...
    def delete_tenant_items(self, tenant_id: str, limit: int) -> int:
        """Delete up to ``limit`` of a tenant's items in one transaction; 0 once none is left."""
        ...

    def purge_deleted_text(self) -> None:
        """Make the words of deleted items unrecoverable from the stored full-text index (after erasures)."""
        ...

    # items
    def get_item(self, tenant_id: str, item_id: str) -> Item: ...
    def find_source(self, tenant_id: str, source: str) -> Item | None: ...
    def set_phash(self, tenant_id: str, item_id: str, phash: int) -> None: ...
    def items_by_rowid(self, tenant_id: str, rowids: Sequence[int]) -> dict[int, Item]: ...
    def list_items(
        self, tenant_id: str, *, source_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]: ...
    def sources(self, tenant_id: str, source_prefix: str) -> dict[str, str]: ...
    def faces_of(self, tenant_id: str, item_ids: Sequence[str]) -> dict[str, list[FaceLink]]: ...
    def unlinked_faces(self, tenant_id: str, face_ids: Sequence[str]) -> set[str]:
        """Those of ``face_ids`` that no item links to (sightings left by an index run that died mid-file)."""
        ...

    def tenant_counts(self, tenant_id: str) -> dict[str, int]: ...
    def resolve_person(self, tenant_id: str, who: str) -> list[str]: ...

    # vectors
    def version(self, tenant_id: str, encoder: str) -> int:
        """Goes up with every write of the tenant's items for ``encoder``: a loaded vector index is current
        while this matches what it saw."""
        ...

    def vectors(self, tenant_id: str, encoder: str) -> StoredVectors: ...
    def vector_rows(self, rows: Sequence[int]) -> StoredVectors: ...

    # words, filters and picture hashes: ``phrases`` are lower-case words or runs of words, any of which matches;
    # each backend writes its own query language (FTS5 MATCH, tsquery) from them
    def keyword(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]: ...
    def keyword_inside(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]: ...
    def words_inside(
        self, tenant_id: str, words: Sequence[str], rowids: Sequence[int]
    ) -> dict[int, list[str]]: ...
    def snippets(
        self, tenant_id: str, phrases: Sequence[str], rowids: Sequence[int]
    ) -> dict[int, dict[str, str]]: ...
    def filter_rowids(self, tenant_id: str, filters: Filters) -> set[int]: ...
    def recent_rowids(self, tenant_id: str, rowids: set[int] | None, limit: int) -> list[int]: ...
    def phashes(self, tenant_id: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]: ...
