"""Collections and the persons in them, for `SQLiteStore`: a collection's erasure runs in chunks, hidden from
every read from its first step."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from frugalsense.errors import InvalidRequestError
from frugalsense.store import erasure
from frugalsense.store._tables import ERASE_CHUNK, LIVE_COLLECTION, LIVE_PERSON, Tables, new_id, now
from frugalsense.store.base import Collection, Erased, Person
from frugalsense.store.validation import read_json

__all__ = ["CollectionTables"]


class CollectionTables(Tables):
    """The collections and persons tables."""

    def create_collection(self, tenant_id: str, name: str) -> Collection:
        collection = Collection(
            id=new_id("col"), tenant_id=tenant_id, name=self.limits.name(name, "collection"), created_at=now()
        )
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            taken = conn.execute(
                "SELECT 1 FROM collections WHERE tenant_id = ? AND name = ?", (tenant_id, collection.name)
            ).fetchone()
            if taken:
                raise InvalidRequestError(f"a collection named {collection.name!r} exists; choose another name")
            conn.execute(
                "INSERT INTO collections (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
                (collection.id, tenant_id, collection.name, collection.created_at),
            )
        return collection

    def get_collection(self, tenant_id: str, collection_id: str) -> Collection:
        row = self._one(
            f"SELECT * FROM collections WHERE id = ? AND tenant_id = ? AND {LIVE_COLLECTION}",
            (collection_id, tenant_id),
            f"no collection {collection_id!r}; list collections to see their ids",
        )
        return _collection(row)

    def list_collections(self, tenant_id: str) -> list[Collection]:
        rows = self._rows(
            f"SELECT * FROM collections WHERE tenant_id = ? AND {LIVE_COLLECTION} ORDER BY rowid", (tenant_id,)
        )
        return [_collection(r) for r in rows]

    def delete_collection(self, tenant_id: str, collection_id: str) -> Erased:
        """Erase a collection: hidden at once, then its faces deleted `ERASE_CHUNK` at a time (one transaction
        each, so other work interleaves), then its persons and the collection itself."""
        self.begin_collection_erasure(tenant_id, collection_id)
        erased = Erased()
        while not erased.collections:
            erased = erased.plus(self.erase_collection_chunk(tenant_id, collection_id))
        self.checkpoint()
        return erased

    def begin_collection_erasure(self, tenant_id: str, collection_id: str) -> None:
        """The first step of a collection's erasure, in one transaction: the collection, its persons and its
        faces are hidden from every read, and its name and its persons' names and metadata are blanked. A
        collection a crash left half-erased can be begun again."""
        with self._write() as conn:
            self._require(conn, "collections", collection_id, tenant_id, erasing=True)
            # Names are stripped, so one that starts with a space cannot clash with a caller's.
            conn.execute(
                "UPDATE collections SET erasing = 1, name = ' erasing ' || id WHERE id = ? AND tenant_id = ?",
                (collection_id, tenant_id),
            )
            conn.execute(
                "UPDATE persons SET name = '', metadata = '{}' WHERE tenant_id = ? AND collection_id = ?",
                (tenant_id, collection_id),
            )
            self._bump(conn, tenant_id)

    def erase_collection_chunk(
        self,
        tenant_id: str,
        collection_id: str,
        limit: int = ERASE_CHUNK,
        before_delete: Callable[[list[str]], None] | None = None,
    ) -> Erased:
        """One transaction of a begun erasure: up to ``limit`` of the collection's faces (``before_delete`` gets
        their ids first, e.g. to unlink their crops), or once none is left, its persons and the collection;
        ``collections`` is 1 in what that last chunk returns."""
        with self._write() as conn:
            self._require(conn, "collections", collection_id, tenant_id, erasing=True)
            rows = conn.execute(
                "SELECT id, crop_path FROM faces WHERE tenant_id = ? AND (collection_id = ? OR person_id IN"
                " (SELECT id FROM persons WHERE tenant_id = ? AND collection_id = ?)) LIMIT ?",
                (tenant_id, collection_id, tenant_id, collection_id, max(1, limit)),
            ).fetchall()
            self._bump(conn, tenant_id)
            if rows:
                if before_delete is not None:
                    before_delete([r["id"] for r in rows])
                return erasure.delete_faces(conn, tenant_id, rows)
            persons = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM persons WHERE tenant_id = ? AND collection_id = ?", (tenant_id, collection_id)
                )
            ]
            corrections = erasure.delete_persons(conn, tenant_id, persons)
            conn.execute("DELETE FROM collections WHERE id = ? AND tenant_id = ?", (collection_id, tenant_id))
        return Erased(persons=len(persons), collections=1, corrections=corrections)

    def erasing_collections(self) -> list[tuple[str, str]]:
        """(tenant id, collection id) of every collection whose erasure was begun and not finished."""
        return [(r[0], r[1]) for r in self._rows("SELECT tenant_id, id FROM collections WHERE erasing = 1")]

    def create_person(
        self, tenant_id: str, collection_id: str, name: str, metadata: Mapping[str, Any] | None = None
    ) -> Person:
        meta_json = self.limits.metadata_json(metadata, "person metadata")
        person = Person(
            id=new_id("per"),
            tenant_id=tenant_id,
            collection_id=collection_id,
            name=self.limits.name(name, "person"),
            metadata=json.loads(meta_json),
            created_at=now(),
        )
        with self._write() as conn:
            self._require(conn, "collections", collection_id, tenant_id)
            conn.execute(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?)",
                (person.id, tenant_id, collection_id, person.name, meta_json, person.created_at),
            )
        return person

    def create_persons(self, tenant_id: str, collection_id: str, names: Sequence[str]) -> list[Person]:
        """Create several persons in one transaction (imports)."""
        created = now()
        persons = [
            Person(
                id=new_id("per"),
                tenant_id=tenant_id,
                collection_id=collection_id,
                name=self.limits.name(n, "person"),
                metadata={},
                created_at=created,
            )
            for n in names
        ]
        with self._write() as conn:
            self._require(conn, "collections", collection_id, tenant_id)
            conn.executemany(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?)",
                [(p.id, tenant_id, collection_id, p.name, "{}", created) for p in persons],
            )
        return persons

    _PERSON_SQL = (
        "SELECT p.*, (SELECT COUNT(*) FROM faces f WHERE f.tenant_id = p.tenant_id AND f.person_id = p.id"
        " AND f.enrolled = 1) AS face_count FROM persons p WHERE " + LIVE_PERSON.format(p="p")
    )

    def get_person(self, tenant_id: str, person_id: str) -> Person:
        row = self._one(
            f"{self._PERSON_SQL} AND p.id = ? AND p.tenant_id = ?",
            (person_id, tenant_id),
            f"no person {person_id!r}; list persons to see their ids",
        )
        return _person(row, self.limits.json_depth)

    def get_persons(self, tenant_id: str, person_ids: Sequence[str]) -> dict[str, Person]:
        ids = list(dict.fromkeys(person_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(f"{self._PERSON_SQL} AND p.tenant_id = ? AND p.id IN ({marks})", (tenant_id, *ids))
        return {r["id"]: _person(r, self.limits.json_depth) for r in rows}

    def list_persons(self, tenant_id: str, collection_id: str | None = None) -> list[Person]:
        if collection_id is None:
            rows = self._rows(f"{self._PERSON_SQL} AND p.tenant_id = ? ORDER BY p.rowid", (tenant_id,))
        else:
            self.get_collection(tenant_id, collection_id)
            rows = self._rows(
                f"{self._PERSON_SQL} AND p.tenant_id = ? AND p.collection_id = ? ORDER BY p.rowid",
                (tenant_id, collection_id),
            )
        return [_person(r, self.limits.json_depth) for r in rows]

    def delete_person(self, tenant_id: str, person_id: str) -> Erased:
        with self._write() as conn:
            self._require(conn, "persons", person_id, tenant_id)
            rows = conn.execute(
                "SELECT id, crop_path FROM faces WHERE tenant_id = ? AND person_id = ?", (tenant_id, person_id)
            ).fetchall()
            erased = erasure.delete_faces(conn, tenant_id, rows)
            # Corrections naming this person on faces that stay (e.g. "this stranger is not X") go as well.
            corrections = erasure.delete_persons(conn, tenant_id, [person_id])
            self._bump(conn, tenant_id)
        self.checkpoint()
        return Erased(erased.face_ids, erased.crop_paths, 1, 0, erased.corrections + corrections)


def _collection(row: sqlite3.Row) -> Collection:
    return Collection(id=row["id"], tenant_id=row["tenant_id"], name=row["name"], created_at=row["created_at"])


def _person(row: sqlite3.Row, max_depth: int) -> Person:
    metadata = read_json(row["metadata"], max_depth=max_depth)
    return Person(
        id=row["id"],
        tenant_id=row["tenant_id"],
        collection_id=row["collection_id"],
        name=row["name"],
        metadata=metadata if isinstance(metadata, dict) else {},
        created_at=row["created_at"],
        face_count=int(row["face_count"]),
    )
