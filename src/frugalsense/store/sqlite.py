"""The SQLite backend: one file, WAL, full fsync on commit, foreign keys on, deleted bytes overwritten.

One connection per store, guarded by a lock: the HTTP server calls in from worker threads, every call is short,
and one connection keeps ``PRAGMA data_version`` meaningful (it changes only for commits by other processes).

    >>> store = SQLiteStore(":memory:")
    >>> tenant = store.create_tenant("acme")
    >>> new = store.create_api_key(tenant.id, "ci")
    >>> new.key.startswith("fs_"), store.verify_api_key(new.key).tenant_id == tenant.id
    (True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError, NotFoundError
from frugalsense.results import Box
from frugalsense.settings import Settings
from frugalsense.store import erasure
from frugalsense.store._database import Database
from frugalsense.store.base import (
    ApiKey,
    Collection,
    Correction,
    CorrectionKind,
    Erased,
    FaceRecord,
    FaceVectors,
    NewApiKey,
    NewFace,
    Person,
    Role,
    Tenant,
)
from frugalsense.store.validation import Limits, read_json

__all__ = ["DB_FILENAME", "SQLiteStore", "new_id"]

DB_FILENAME = "frugalsense.db"

# Lower-case letters and digits without look-alikes (i, l, o, u): ids survive being read aloud or retyped.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_KEY_RE = re.compile(r"^fs_([0-9a-z]{8})_([0-9a-z]{40})$")
_WHAT = {"tenants": "tenant", "collections": "collection", "persons": "person", "faces": "face", "api_keys": "key"}


def new_id(prefix: str, length: int = 12) -> str:
    """A random public id such as ``per_3k9x...``: 5 bits per character, never guessable across tenants."""
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _hash_key(key: str) -> str:
    # The secret has 200 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


#: faces deleted per transaction when a collection is erased, so other work interleaves between chunks
ERASE_CHUNK = 500
# Rows of a collection being erased (its faces deleted chunk by chunk) are hidden from every read.
_LIVE_COLLECTION = "erasing = 0"
_LIVE_PERSON = "NOT EXISTS (SELECT 1 FROM collections c WHERE c.id = {p}.collection_id AND c.erasing = 1)"
_LIVE_FACE = "({f}collection_id IS NULL OR {f}collection_id NOT IN (SELECT id FROM collections WHERE erasing = 1))"
_LIVE = {
    "collections": f" AND {_LIVE_COLLECTION}",
    "persons": f" AND {_LIVE_PERSON.format(p='persons')}",
    "faces": f" AND {_LIVE_FACE.format(f='')}",
}


class SQLiteStore(Database):
    """A `Store` in one SQLite file (``":memory:"`` for a throw-away one)."""

    @classmethod
    def open(cls, settings: Settings) -> SQLiteStore:
        """The service's database: ``DATA_DIR/frugalsense.db`` (folders created), with the settings' limits on
        what callers may store."""
        return cls(settings.data_dir / DB_FILENAME, limits=Limits.from_settings(settings))

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------------

    def _one(self, sql: str, params: Sequence[Any], missing: str) -> sqlite3.Row:
        rows = self._rows(sql, params)
        if not rows:
            raise NotFoundError(missing)
        return rows[0]

    def data_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def face_version(self, tenant_id: str) -> int:
        row = self._rows("SELECT version FROM face_state WHERE tenant_id = ?", (tenant_id,))
        return int(row[0][0]) if row else 0

    # -- tenants and keys -----------------------------------------------------------------------------------

    def create_tenant(self, name: str) -> Tenant:
        tenant = Tenant(id=new_id("ten"), name=self.limits.name(name, "tenant"), created_at=_now())
        with self._write() as conn:
            conn.execute("INSERT INTO tenants VALUES (?, ?, ?)", (tenant.id, tenant.name, tenant.created_at))
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self._one("SELECT * FROM tenants WHERE id = ?", (tenant_id,), f"no tenant {tenant_id!r}")
        return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])

    def list_tenants(self) -> list[Tenant]:
        rows = self._rows("SELECT * FROM tenants ORDER BY rowid")
        return [Tenant(id=r["id"], name=r["name"], created_at=r["created_at"]) for r in rows]

    def delete_tenant(self, tenant_id: str) -> Erased:
        """Erase a tenant and everything it owns: its faces `ERASE_CHUNK` at a time (one transaction each, so
        other work interleaves), then the rest (keys, collections, persons, items) in one transaction."""
        erased = Erased()
        while (chunk := self.erase_tenant_faces(tenant_id)).face_ids:
            erased = erased.plus(chunk)
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            # Faces stored since the last chunk; its items go too (by cascade), so no result is left to scrub.
            rows = conn.execute("SELECT id, crop_path FROM faces WHERE tenant_id = ?", (tenant_id,)).fetchall()
            last = erasure.delete_faces(conn, tenant_id, rows, scrub=False)
            counts = conn.execute(
                "SELECT (SELECT COUNT(*) FROM persons WHERE tenant_id = ?),"
                " (SELECT COUNT(*) FROM collections WHERE tenant_id = ?)",
                (tenant_id, tenant_id),
            ).fetchone()
            conn.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
        self.checkpoint()
        return erased.plus(Erased(last.face_ids, last.crop_paths, counts[0], counts[1], last.corrections))

    def erase_tenant_faces(
        self, tenant_id: str, limit: int = ERASE_CHUNK, before_delete: Callable[[list[str]], None] | None = None
    ) -> Erased:
        """One transaction of a tenant's erasure: up to ``limit`` of its faces (``before_delete`` gets their ids
        first), with their corrections; what it returns lists no face once none is left."""
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            rows = conn.execute(
                "SELECT id, crop_path FROM faces WHERE tenant_id = ? LIMIT ?", (tenant_id, max(1, limit))
            ).fetchall()
            if not rows:
                return Erased()
            if before_delete is not None:
                before_delete([r["id"] for r in rows])
            # The results of its items still name these faces until its erasure ends with the items: that way
            # no result is rewritten only to be deleted.
            erased = erasure.delete_faces(conn, tenant_id, rows, scrub=False)
            self._bump(conn, tenant_id)
        return erased

    def create_api_key(self, tenant_id: str, name: str, role: Role = "user") -> NewApiKey:
        if role not in ("admin", "user"):
            raise InvalidRequestError(f"role must be 'admin' or 'user', got {role!r}")
        prefix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        key = f"fs_{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(40))}"
        record = ApiKey(
            id=new_id("key"),
            tenant_id=tenant_id,
            name=self.limits.name(name, "key"),
            prefix=prefix,
            role=role,
            created_at=_now(),
        )
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.id, tenant_id, record.name, prefix, _hash_key(key), role, record.created_at),
            )
        return NewApiKey(record=record, key=key)

    def verify_api_key(self, key: str) -> ApiKey | None:
        """The active key's record, or None for a malformed, unknown or revoked key."""
        match = _KEY_RE.match(key.strip())
        rows = self._rows("SELECT * FROM api_keys WHERE prefix = ?", (match.group(1),)) if match else []
        # Compare even when nothing matched, so a miss takes as long as a wrong secret.
        stored = rows[0]["key_hash"] if rows else "0" * 64
        if not hmac.compare_digest(stored, _hash_key(key.strip())) or not rows:
            return None
        record = _api_key(rows[0])
        return record if record.active else None

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        rows = self._rows("SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY rowid", (tenant_id,))
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        with self._write() as conn:
            self._require(conn, "api_keys", key_id, tenant_id)
            conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?",
                (_now(), key_id, tenant_id),
            )
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _api_key(row)

    # -- collections and persons ----------------------------------------------------------------------------

    def create_collection(self, tenant_id: str, name: str) -> Collection:
        collection = Collection(
            id=new_id("col"), tenant_id=tenant_id, name=self.limits.name(name, "collection"), created_at=_now()
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
            f"SELECT * FROM collections WHERE id = ? AND tenant_id = ? AND {_LIVE_COLLECTION}",
            (collection_id, tenant_id),
            f"no collection {collection_id!r}; list collections to see their ids",
        )
        return _collection(row)

    def list_collections(self, tenant_id: str) -> list[Collection]:
        rows = self._rows(
            f"SELECT * FROM collections WHERE tenant_id = ? AND {_LIVE_COLLECTION} ORDER BY rowid", (tenant_id,)
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
            created_at=_now(),
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
        created = _now()
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
        " AND f.enrolled = 1) AS face_count FROM persons p WHERE " + _LIVE_PERSON.format(p="p")
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

    # -- faces ----------------------------------------------------------------------------------------------

    def add_face(self, tenant_id: str, face: NewFace) -> FaceRecord:
        return self.add_faces(tenant_id, [face])[0]

    def add_faces(self, tenant_id: str, faces: Sequence[NewFace]) -> list[FaceRecord]:
        """Store several faces in one transaction (all or none): imports and bulk enrolment."""
        records: list[FaceRecord] = []
        rows: list[tuple[Any, ...]] = []
        for face in faces:
            if face.enrolled and face.person_id is None:
                raise InvalidRequestError("an enrolled face needs a person")
            embedding = np.ascontiguousarray(face.embedding, dtype="<f4").reshape(-1)
            record = FaceRecord(
                id=face.id or new_id("face", 16),
                tenant_id=tenant_id,
                collection_id=face.collection_id,
                person_id=face.person_id,
                enrolled=face.enrolled,
                source_sha256=face.source_sha256,
                source_name=face.source_name,
                box=face.box,
                landmarks=[(float(x), float(y)) for x, y in face.landmarks],
                det_score=float(face.det_score),
                embedding=embedding.astype(np.float32),
                model=face.model,
                crop_path=face.crop_path,
                cluster_id=face.cluster_id,
                created_at=_now(),
            )
            records.append(record)
            rows.append(
                (
                    record.id,
                    tenant_id,
                    record.collection_id,
                    record.person_id,
                    int(record.enrolled),
                    record.source_sha256,
                    record.source_name[: self.limits.name_chars],
                    json.dumps([face.box.x, face.box.y, face.box.w, face.box.h]),
                    json.dumps(record.landmarks),
                    record.det_score,
                    embedding.tobytes(),
                    record.model,
                    record.crop_path,
                    record.cluster_id,
                    record.created_at,
                )
            )
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            for collection_id in {f.collection_id for f in faces if f.collection_id is not None}:
                self._require(conn, "collections", collection_id, tenant_id)
            for person_id in {f.person_id for f in faces if f.person_id is not None}:
                self._require(conn, "persons", person_id, tenant_id)
            conn.executemany(
                "INSERT INTO faces (id, tenant_id, collection_id, person_id, enrolled, source_sha256, source_name,"
                " box, landmarks, det_score, embedding, model, crop_path, cluster_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._bump(conn, tenant_id)
        return records

    def get_face(self, tenant_id: str, face_id: str) -> FaceRecord:
        row = self._one(
            f"SELECT * FROM faces WHERE id = ? AND tenant_id = ? AND {_LIVE_FACE.format(f='')}",
            (face_id, tenant_id),
            f"no face {face_id!r}",
        )
        return _face(row)

    def add_face_embedding(self, tenant_id: str, face_id: str, model: str, vector: npt.ArrayLike) -> None:
        """Store a second model's embedding of a face (replacing that model's earlier one); erased with it."""
        blob = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
        if not blob.size or not np.all(np.isfinite(blob)):
            raise InvalidRequestError("a face embedding must be a non-empty vector of finite numbers")
        with self._write() as conn:
            self._require(conn, "faces", face_id, tenant_id)
            conn.execute(
                "INSERT OR REPLACE INTO face_embeddings (tenant_id, face_id, model, vector) VALUES (?, ?, ?, ?)",
                (tenant_id, face_id, model, blob.tobytes()),
            )

    def person_embeddings(
        self, tenant_id: str, person_ids: Sequence[str], model: str
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Per person, the `model` embeddings of their faces that have one, as a (faces, dim) matrix."""
        ids = list(dict.fromkeys(person_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            "SELECT f.person_id, e.vector FROM face_embeddings e"
            " JOIN faces f ON f.tenant_id = e.tenant_id AND f.id = e.face_id"
            f" WHERE e.tenant_id = ? AND e.model = ? AND f.person_id IN ({marks})"
            f" AND {_LIVE_FACE.format(f='f.')} ORDER BY f.rowid",
            (tenant_id, model, *ids),
        )
        grouped: dict[str, list[npt.NDArray[np.float32]]] = {}
        for row in rows:
            grouped.setdefault(row["person_id"], []).append(np.frombuffer(row["vector"], dtype="<f4"))
        return {person: np.stack(vectors).astype(np.float32) for person, vectors in grouped.items()}

    def get_faces(self, tenant_id: str, face_ids: Sequence[str]) -> dict[str, FaceRecord]:
        ids = list(dict.fromkeys(face_ids))
        out: dict[str, FaceRecord] = {}
        # SQLite caps bound parameters per statement; a search returns far fewer ids than one chunk anyway.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                f"SELECT * FROM faces WHERE tenant_id = ? AND id IN ({marks}) AND {_LIVE_FACE.format(f='')}",
                (tenant_id, *chunk),
            ):
                out[row["id"]] = _face(row)
        return out

    def list_faces(
        self,
        tenant_id: str,
        *,
        person_id: str | None = None,
        collection_id: str | None = None,
        cluster_id: str | None = None,
        unknown_only: bool = False,
    ) -> list[FaceRecord]:
        where, params = ["tenant_id = ?", _LIVE_FACE.format(f="")], [tenant_id]
        for column, value in (
            ("person_id", person_id),
            ("collection_id", collection_id),
            ("cluster_id", cluster_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if unknown_only:
            where.append("person_id IS NULL")
        rows = self._rows(f"SELECT * FROM faces WHERE {' AND '.join(where)} ORDER BY rowid", params)
        return [_face(r) for r in rows]

    def face_vectors(self, tenant_id: str, model: str) -> FaceVectors:
        rows = self._rows(
            "SELECT id, collection_id, person_id, enrolled, cluster_id, embedding FROM faces"
            f" WHERE tenant_id = ? AND model = ? AND {_LIVE_FACE.format(f='')} ORDER BY rowid",
            (tenant_id, model),
        )
        blobs = b"".join(r["embedding"] for r in rows)
        dim = len(rows[0]["embedding"]) // 4 if rows else 0
        matrix = np.frombuffer(blobs, dtype="<f4").astype(np.float32).reshape(len(rows), dim)
        return FaceVectors(
            ids=[r["id"] for r in rows],
            collection_ids=[r["collection_id"] for r in rows],
            person_ids=[r["person_id"] for r in rows],
            enrolled=[bool(r["enrolled"]) for r in rows],
            cluster_ids=[r["cluster_id"] for r in rows],
            matrix=matrix,
        )

    def delete_face(self, tenant_id: str, face_id: str) -> Erased:
        with self._write() as conn:
            self._require(conn, "faces", face_id, tenant_id)
            rows = conn.execute(
                "SELECT id, crop_path FROM faces WHERE tenant_id = ? AND id = ?", (tenant_id, face_id)
            ).fetchall()
            erased = erasure.delete_faces(conn, tenant_id, rows)
            self._bump(conn, tenant_id)
        self.checkpoint()
        return erased

    def set_clusters(self, tenant_id: str, assignments: Mapping[str, str | None]) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE faces SET cluster_id = ? WHERE id = ? AND tenant_id = ?",
                [(cluster, face_id, tenant_id) for face_id, cluster in assignments.items()],
            )
            self._bump(conn, tenant_id)

    def correct_face(self, tenant_id: str, face_id: str, person_id: str, kind: CorrectionKind) -> Correction:
        if kind not in ("is", "is_not"):
            raise InvalidRequestError(f"a correction is 'is' or 'is_not', got {kind!r}")
        correction = Correction(
            id=new_id("cor"),
            tenant_id=tenant_id,
            face_id=face_id,
            person_id=person_id,
            kind=kind,
            created_at=_now(),
        )
        with self._write() as conn:
            self._require(conn, "faces", face_id, tenant_id)
            self._require(conn, "persons", person_id, tenant_id)
            # The latest word on a (face, person) pair wins: drop what it contradicts.
            conn.execute(
                "DELETE FROM corrections WHERE tenant_id = ? AND face_id = ? AND person_id = ?",
                (tenant_id, face_id, person_id),
            )
            if kind == "is":
                conn.execute(
                    "UPDATE faces SET person_id = ?, enrolled = 1, cluster_id = NULL,"
                    " collection_id = (SELECT collection_id FROM persons WHERE id = ? AND tenant_id = ?)"
                    " WHERE id = ? AND tenant_id = ?",
                    (person_id, person_id, tenant_id, face_id, tenant_id),
                )
            else:
                conn.execute(
                    "UPDATE faces SET person_id = NULL, enrolled = 0"
                    " WHERE id = ? AND tenant_id = ? AND person_id = ?",
                    (face_id, tenant_id, person_id),
                )
            conn.execute(
                "INSERT INTO corrections VALUES (?, ?, ?, ?, ?, ?)",
                (correction.id, tenant_id, face_id, person_id, kind, correction.created_at),
            )
            self._bump(conn, tenant_id)
        return correction

    def list_corrections(self, tenant_id: str, kind: CorrectionKind | None = None) -> list[Correction]:
        sql, params = "SELECT * FROM corrections WHERE tenant_id = ?", [tenant_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_correction(r) for r in self._rows(sql + " ORDER BY rowid", params)]

    def promote_cluster(self, tenant_id: str, cluster_id: str, collection_id: str, name: str) -> Person:
        person = Person(
            id=new_id("per"),
            tenant_id=tenant_id,
            collection_id=collection_id,
            name=self.limits.name(name, "person"),
            metadata={},
            created_at=_now(),
        )
        with self._write() as conn:
            self._require(conn, "collections", collection_id, tenant_id)
            members = conn.execute(
                "SELECT COUNT(*) FROM faces WHERE tenant_id = ? AND cluster_id = ? AND person_id IS NULL",
                (tenant_id, cluster_id),
            ).fetchone()[0]
            if not members:
                raise NotFoundError(f"no cluster {cluster_id!r}; list clusters to see their ids")
            conn.execute(
                "INSERT INTO persons VALUES (?, ?, ?, ?, '{}', ?)",
                (person.id, tenant_id, collection_id, person.name, person.created_at),
            )
            conn.execute(
                "UPDATE faces SET person_id = ?, enrolled = 1, collection_id = ?, cluster_id = NULL"
                " WHERE tenant_id = ? AND cluster_id = ? AND person_id IS NULL",
                (person.id, collection_id, tenant_id, cluster_id),
            )
            self._bump(conn, tenant_id)
        return Person(**{**person.__dict__, "face_count": members})

    # -- helpers --------------------------------------------------------------------------------------------

    def _require(
        self, conn: sqlite3.Connection, table: str, object_id: str, tenant_id: str | None, *, erasing: bool = False
    ) -> None:
        """Raise NotFoundError unless the object exists and (for tenant data) belongs to ``tenant_id``. What a
        collection's erasure hides counts as missing, unless ``erasing`` (to finish the erasure)."""
        if tenant_id is None:
            found = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (object_id,)).fetchone()
        else:
            live = "" if erasing else _LIVE.get(table, "")
            found = conn.execute(
                f"SELECT 1 FROM {table} WHERE id = ? AND tenant_id = ?{live}", (object_id, tenant_id)
            ).fetchone()
        if found is None:
            raise NotFoundError(f"no {_WHAT[table]} {object_id!r}")

    def _bump(self, conn: sqlite3.Connection, tenant_id: str) -> None:
        """Count one change to the tenant's faces or corrections, inside the transaction that makes it."""
        conn.execute(
            "INSERT INTO face_state (tenant_id, version) VALUES (?, 1)"
            " ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1",
            (tenant_id,),
        )


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=row["prefix"],
        role=row["role"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


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


def _face(row: sqlite3.Row) -> FaceRecord:
    x, y, w, h = json.loads(row["box"])
    return FaceRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        collection_id=row["collection_id"],
        person_id=row["person_id"],
        enrolled=bool(row["enrolled"]),
        source_sha256=row["source_sha256"],
        source_name=row["source_name"],
        box=Box(x, y, w, h),
        landmarks=[(float(a), float(b)) for a, b in json.loads(row["landmarks"])],
        det_score=float(row["det_score"]),
        embedding=np.frombuffer(row["embedding"], dtype="<f4").astype(np.float32),
        model=row["model"],
        crop_path=row["crop_path"],
        cluster_id=row["cluster_id"],
        created_at=row["created_at"],
    )


def _correction(row: sqlite3.Row) -> Correction:
    return Correction(
        id=row["id"],
        tenant_id=row["tenant_id"],
        face_id=row["face_id"],
        person_id=row["person_id"],
        kind=row["kind"],
        created_at=row["created_at"],
    )
