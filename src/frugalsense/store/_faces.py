"""Faces, their second embeddings, unknown-face clusters and corrections, for `SQLiteStore`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError, NotFoundError
from frugalsense.results import Box
from frugalsense.store import erasure
from frugalsense.store._tables import LIVE_FACE, Tables, new_id, now
from frugalsense.store.base import Correction, CorrectionKind, Erased, FaceRecord, FaceVectors, NewFace, Person

__all__ = ["FaceTables"]


class FaceTables(Tables):
    """The faces, face_embeddings and corrections tables (and clusters, a column of faces)."""

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
                created_at=now(),
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
            f"SELECT * FROM faces WHERE id = ? AND tenant_id = ? AND {LIVE_FACE.format(f='')}",
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
            f" AND {LIVE_FACE.format(f='f.')} ORDER BY f.rowid",
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
                f"SELECT * FROM faces WHERE tenant_id = ? AND id IN ({marks}) AND {LIVE_FACE.format(f='')}",
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
        where, params = ["tenant_id = ?", LIVE_FACE.format(f="")], [tenant_id]
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
            f" WHERE tenant_id = ? AND model = ? AND {LIVE_FACE.format(f='')} ORDER BY rowid",
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
            created_at=now(),
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
            created_at=now(),
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
