"""Paged reads for screens: one page of a tenant's persons, clusters or faces at a time, with totals, so a
screen stays fast at 10,000 persons and 100,000 items (the `Store` list methods return whole tables).

Like every store read, an id of another tenant reads as missing and rows of a collection being erased are
hidden.

    >>> import tempfile
    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/frugalsense.db")
    >>> acme = store.create_tenant("acme")
    >>> staff = store.create_collection(acme.id, "staff")
    >>> _ = store.create_persons(acme.id, staff.id, ["Ann", "Bob", "Cy"])
    >>> page = open_paged_reads(store.path).persons(acme.id, staff.id, limit=2)
    >>> [p.name for p in page.rows], page.total
    (['Ann', 'Bob'], 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from frugalsense.errors import NotFoundError
from frugalsense.store._database import Database
from frugalsense.store._tables import LIVE_FACE, LIVE_PERSON
from frugalsense.store.postgres_db import PgDatabase, is_postgres_url

__all__ = [
    "ClusterRow",
    "FaceThumb",
    "Page",
    "PagedReads",
    "PersonErasure",
    "PersonRow",
    "PostgresPagedReads",
    "open_paged_reads",
]

_T = TypeVar("_T")
_FACE_LIVE = LIVE_FACE.format(f="f.")
_PERSON_LIVE = LIVE_PERSON.format(p="p")
#: face thumbnails shown per person or cluster on a page
THUMBS = 6


@dataclass(frozen=True)
class Page(Generic[_T]):
    rows: list[_T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class FaceThumb:
    id: str
    person_id: str | None
    enrolled: bool
    has_crop: bool
    source_name: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person_id": self.person_id,
            "enrolled": self.enrolled,
            "has_crop": self.has_crop,
            "source_name": self.source_name,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class PersonRow:
    id: str
    collection_id: str
    name: str
    created_at: str
    face_count: int
    thumb_face_id: str | None  # an enrolled face with a crop, to show

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection_id": self.collection_id,
            "name": self.name,
            "created_at": self.created_at,
            "face_count": self.face_count,
            "thumb_face_id": self.thumb_face_id,
        }


@dataclass(frozen=True)
class ClusterRow:
    id: str
    size: int
    face_ids: list[str]  # the first few, with crops first
    last_seen: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "face_ids": self.face_ids, "last_seen": self.last_seen}


@dataclass(frozen=True)
class PersonErasure:
    """What deleting a person erases: said to the user before they confirm."""

    person_id: str
    name: str
    faces: int
    enrolled: int
    corrections: int
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "name": self.name,
            "faces": self.faces,
            "enrolled": self.enrolled,
            "corrections": self.corrections,
            "items": self.items,
        }


class PagedReads(Database):
    """Paged, read-only queries on a connection of their own to the service's database file. Thread-safe."""

    #: "the name contains the words", in this database's SQL
    _CONTAINS = "instr(lower(p.name), lower(?)) > 0"

    def persons(
        self, tenant_id: str, collection_id: str, *, name: str = "", limit: int = 50, offset: int = 0
    ) -> Page[PersonRow]:
        """One page of a collection's persons in the order they were made; ``name`` keeps names containing it."""
        self._collection(tenant_id, collection_id)
        where = f"p.tenant_id = ? AND p.collection_id = ? AND {_PERSON_LIVE}"
        params: list[Any] = [tenant_id, collection_id]
        if name:
            where += f" AND {self._CONTAINS}"
            params.append(name)
        total = int(self._rows(f"SELECT COUNT(*) FROM persons p WHERE {where}", params)[0][0])
        rows = self._rows(
            "SELECT p.id, p.collection_id, p.name, p.created_at,"
            " (SELECT COUNT(*) FROM faces f WHERE f.tenant_id = p.tenant_id AND f.person_id = p.id"
            "  AND f.enrolled = 1) AS face_count,"
            " (SELECT f.id FROM faces f WHERE f.tenant_id = p.tenant_id AND f.person_id = p.id"
            "  AND f.crop_path IS NOT NULL ORDER BY f.enrolled DESC, f.rowid LIMIT 1) AS thumb"
            f" FROM persons p WHERE {where} ORDER BY p.rowid LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        people = [PersonRow(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]
        return Page(people, total, limit, offset)

    def person_faces(self, tenant_id: str, person_id: str, *, limit: int = 24) -> list[FaceThumb]:
        """A person's faces, enrolled ones first, at most ``limit``."""
        rows = self._rows(
            "SELECT f.id, f.person_id, f.enrolled, f.crop_path IS NOT NULL, f.source_name, f.created_at"
            f" FROM faces f WHERE f.tenant_id = ? AND f.person_id = ? AND {_FACE_LIVE}"
            " ORDER BY f.enrolled DESC, f.rowid LIMIT ?",
            (tenant_id, person_id, limit),
        )
        return [FaceThumb(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5]) for r in rows]

    def clusters(self, tenant_id: str, *, min_size: int = 2, limit: int = 24, offset: int = 0) -> Page[ClusterRow]:
        """One page of the groups of unknown sightings, biggest first, with a few face ids each."""
        grouped = (
            f"SELECT f.cluster_id AS id, COUNT(*) AS size, MAX(f.created_at) AS last_seen FROM faces f"
            f" WHERE f.tenant_id = ? AND f.person_id IS NULL AND f.cluster_id IS NOT NULL AND {_FACE_LIVE}"
            " GROUP BY f.cluster_id HAVING COUNT(*) >= ?"
        )
        params = (tenant_id, max(1, min_size))
        total = int(self._rows(f"SELECT COUNT(*) FROM ({grouped}) AS g", params)[0][0])
        rows = self._rows(
            f"{grouped} ORDER BY size DESC, last_seen DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        out = []
        for row in rows:
            faces = self._rows(
                "SELECT id FROM faces WHERE tenant_id = ? AND cluster_id = ? AND person_id IS NULL"
                " ORDER BY crop_path IS NULL, rowid LIMIT ?",
                (tenant_id, row[0], THUMBS),
            )
            out.append(ClusterRow(row[0], int(row[1]), [f[0] for f in faces], row[2]))
        return Page(out, total, limit, offset)

    def crop_path(self, tenant_id: str, face_id: str) -> str:
        """Where the face's crop is, relative to the data folder; NotFoundError if the tenant has no such crop."""
        rows = self._rows(
            f"SELECT f.crop_path FROM faces f WHERE f.tenant_id = ? AND f.id = ? AND {_FACE_LIVE}",
            (tenant_id, face_id),
        )
        if not rows or rows[0][0] is None:
            raise NotFoundError(f"no picture of face {face_id!r}")
        return str(rows[0][0])

    def person_erasure(self, tenant_id: str, person_id: str) -> PersonErasure:
        """What `Store.delete_person` would erase for this person, counted without changing anything."""
        rows = self._rows(
            f"SELECT p.name FROM persons p WHERE p.tenant_id = ? AND p.id = ? AND {_PERSON_LIVE}",
            (tenant_id, person_id),
        )
        if not rows:
            raise NotFoundError(f"no person {person_id!r}; list persons to see their ids")
        faces = self._rows(
            "SELECT COUNT(*), COALESCE(SUM(enrolled), 0) FROM faces WHERE tenant_id = ? AND person_id = ?",
            (tenant_id, person_id),
        )[0]
        corrections = self._rows(
            "SELECT COUNT(*) FROM corrections WHERE tenant_id = ? AND person_id = ?", (tenant_id, person_id)
        )[0][0]
        items = self._rows(
            "SELECT COUNT(*) FROM item_refs WHERE tenant_id = ? AND ref = ?", (tenant_id, person_id)
        )[0][0]
        return PersonErasure(person_id, rows[0][0], int(faces[0]), int(faces[1]), int(corrections), int(items))

    def _collection(self, tenant_id: str, collection_id: str) -> None:
        found = self._rows(
            "SELECT 1 FROM collections WHERE tenant_id = ? AND id = ? AND erasing = 0", (tenant_id, collection_id)
        )
        if not found:
            raise NotFoundError(f"no collection {collection_id!r}")


class PostgresPagedReads(PgDatabase, PagedReads):  # type: ignore[misc]
    """The same pages from a PostgreSQL database (PgDatabase's connection wins; the SQL is shared). Each read
    runs under its tenant's row-level security scope, as every PostgreSQL store method does."""

    _CONTAINS = "strpos(lower(p.name), lower(?)) > 0"


def open_paged_reads(where: str | Path) -> PagedReads:
    """Paged reads of the database a store's ``path`` names: a ``postgresql://`` address or an SQLite file, on a
    connection of their own (``close()`` it when done)."""
    if is_postgres_url(str(where)):
        return PostgresPagedReads(str(where))
    return PagedReads(where)
