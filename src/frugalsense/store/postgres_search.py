"""The search index's tables in PostgreSQL: items, labels, face links, vectors (pgvector, HNSW), full text
(``tsvector``, ``simple`` configuration) and the trigram index (``pg_trgm``) for words inside OCR runs.

`search/query.py` hands the store FTS5-style expressions (``"a" OR "b"``, or one quoted phrase); `_phrases`
reads them back into words, so SQLite's query syntax stops at this module.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import NotFoundError
from frugalsense.store._tables import LIVE_FACE, LIVE_PERSON, new_id, now
from frugalsense.store.erasure import result_refs
from frugalsense.store.items import FaceLink, Filters, Item, NewItem, StoredVectors, WriteOutcome
from frugalsense.store.postgres_db import PgConn, PgDatabase
from frugalsense.store.validation import read_json

__all__ = ["PostgresSearchStore"]

_FACE_SHOWN = LIVE_FACE.format(f="f.")
_PERSON_SHOWN = LIVE_PERSON.format(p="persons")
_ITEM_COLUMNS = (
    "id, rowid, source, sha256, modality, mime, byte_size, pages, duration_s, captured_at, indexed_at, nsfw,"
    " flagged, phash, encoder, result"
)
# ts_rank_cd weights {D, C, B, A}: text read and speech (A) count fully, a label word (B) half, as in SQLite.
_WEIGHTS = "'{0.1, 0.2, 0.5, 1.0}'"
_HEADLINE = "StartSel=[, StopSel=], MaxWords=10, MinWords=3, MaxFragments=1, FragmentDelimiter=…"


def _tsquery(phrases: Sequence[str]) -> tuple[str, list[str]]:
    """SQL for a tsquery matching any of the phrases, and its parameters."""
    kept = [p.strip().lower() for p in phrases if p.strip()] or [""]
    return "(" + " || ".join("phraseto_tsquery('simple', ?)" for _ in kept) + ")", kept


class PostgresSearchStore(PgDatabase):
    """A `SearchStore` in PostgreSQL. Thread-safe: one connection behind a lock."""

    # -- writes ---------------------------------------------------------------------------------------------

    def put_item(self, tenant_id: str, new: NewItem) -> WriteOutcome:
        self.limits.source(new.source)
        with self._write() as conn:
            return _write_items(conn, tenant_id, [new])[0]

    def put_items(self, tenant_id: str, items: Sequence[NewItem]) -> list[WriteOutcome]:
        """Many `put_item`s in one transaction, each table written with one statement (a COPY from 64 rows) per
        run of distinct sources: the same rows and outcomes as one `put_item` after another."""
        for new in items:
            self.limits.source(new.source)
        with self._write() as conn:
            return _write_items(conn, tenant_id, items)

    def delete_item(self, tenant_id: str, item_id: str) -> WriteOutcome:
        with self._write() as conn:
            row = conn.execute(
                "SELECT rowid, encoder FROM items WHERE tenant_id = ? AND id = ?", (tenant_id, item_id)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no item {item_id!r}; search or list items to see their ids")
            before = _version(conn, tenant_id, row["encoder"])
            faces = _delete(conn, tenant_id, item_id)
            after = _version(conn, tenant_id, row["encoder"])
        return WriteOutcome(None, faces, int(row["rowid"]), before, after, [])

    def delete_tenant_items(self, tenant_id: str, limit: int) -> int:
        with self._write() as conn:
            return int(
                conn.execute(
                    "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE tenant_id = ? LIMIT ?)",
                    (tenant_id, max(1, limit)),
                ).rowcount
            )

    def purge_deleted_text(self) -> None:
        """VACUUM the text and vector tables: dead rows are pruned from their pages and GIN/HNSW indexes."""
        self.vacuum(("items", "item_text", "item_vectors", "item_labels", "item_faces", "item_refs"))

    def checkpoint(self) -> bool:
        return True  # nothing to fold: PostgreSQL recycles its WAL itself (docs/postgres.md)

    # -- reads ----------------------------------------------------------------------------------------------

    def get_item(self, tenant_id: str, item_id: str) -> Item:
        rows = self._rows(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE tenant_id = ? AND id = ?", (tenant_id, item_id)
        )
        if not rows:
            raise NotFoundError(f"no item {item_id!r}; search or list items to see their ids")
        return _item(rows[0])

    def find_source(self, tenant_id: str, source: str) -> Item | None:
        rows = self._rows(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE tenant_id = ? AND source = ?", (tenant_id, source)
        )
        return _item(rows[0]) if rows else None

    def set_phash(self, tenant_id: str, item_id: str, phash: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE items SET phash = ? WHERE tenant_id = ? AND id = ?", (_signed(phash), tenant_id, item_id)
            )

    def items_by_rowid(self, tenant_id: str, rowids: Sequence[int]) -> dict[int, Item]:
        ids = list(dict.fromkeys(int(r) for r in rowids))
        rows = self._rows(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE rowid = ANY(?) AND tenant_id = ?", (ids, tenant_id)
        )
        return {int(r["rowid"]): _item(r) for r in rows}

    def list_items(
        self, tenant_id: str, *, source_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM items WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if source_prefix:
            sql += " AND substr(source, 1, ?) = ?"
            params += [len(source_prefix), source_prefix]
        sql += " ORDER BY captured_at DESC, rowid DESC LIMIT ? OFFSET ?"
        return [_item(r) for r in self._rows(sql, (*params, limit, offset))]

    def sources(self, tenant_id: str, source_prefix: str) -> dict[str, str]:
        rows = self._rows(
            "SELECT source, id FROM items WHERE tenant_id = ? AND substr(source, 1, ?) = ?",
            (tenant_id, len(source_prefix), source_prefix),
        )
        return {r["source"]: r["id"] for r in rows}

    def faces_of(self, tenant_id: str, item_ids: Sequence[str]) -> dict[str, list[FaceLink]]:
        out: dict[str, list[FaceLink]] = {}
        for r in self._rows(
            "SELECT l.item_id, l.face_id, l.page, f.person_id, f.cluster_id, p.name FROM item_faces l"
            " JOIN faces f ON f.tenant_id = l.tenant_id AND f.id = l.face_id"
            " LEFT JOIN persons p ON p.tenant_id = f.tenant_id AND p.id = f.person_id"
            f" WHERE l.tenant_id = ? AND l.item_id = ANY(?) AND {_FACE_SHOWN} ORDER BY l.page, l.rowid",
            (tenant_id, list(dict.fromkeys(item_ids))),
        ):
            out.setdefault(r["item_id"], []).append(
                FaceLink(r["face_id"], r["page"], r["person_id"], r["name"], r["cluster_id"])
            )
        return out

    def unlinked_faces(self, tenant_id: str, face_ids: Sequence[str]) -> set[str]:
        rows = self._rows(
            "SELECT f.id FROM faces f WHERE f.tenant_id = ? AND f.id = ANY(?) AND NOT EXISTS"
            " (SELECT 1 FROM item_faces l WHERE l.tenant_id = f.tenant_id AND l.face_id = f.id)",
            (tenant_id, list(dict.fromkeys(face_ids))),
        )
        return {r["id"] for r in rows}

    def tenant_counts(self, tenant_id: str) -> dict[str, int]:
        row = self._rows(
            "SELECT (SELECT COUNT(*) FROM items WHERE tenant_id = ?) AS items,"
            " (SELECT COUNT(*) FROM item_vectors WHERE tenant_id = ?) AS vectors,"
            " (SELECT COUNT(*) FROM item_labels WHERE tenant_id = ?) AS labels,"
            " (SELECT COUNT(*) FROM item_faces WHERE tenant_id = ?) AS face_links",
            (tenant_id,) * 4,
        )[0]
        return {name: int(row[name]) for name in ("items", "vectors", "labels", "face_links")}

    def version(self, tenant_id: str, encoder: str) -> int:
        with self._lock:
            return _version(self._conn, tenant_id, encoder)

    def vectors(self, tenant_id: str, encoder: str) -> StoredVectors:
        with self._lock, self._raw.transaction():
            # one snapshot: the version matches the rows read
            self._raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            version = _version(self._conn, tenant_id, encoder)
            rows = self._conn.execute(
                "SELECT i.rowid AS item_rowid, v.part, v.vector FROM item_vectors v"
                " JOIN items i ON i.tenant_id = v.tenant_id AND i.id = v.item_id"
                " WHERE v.tenant_id = ? AND v.encoder = ? ORDER BY v.row",
                (tenant_id, encoder),
            ).fetchall()
        return _stored(rows, version)

    def vector_rows(self, rows: Sequence[int]) -> StoredVectors:
        found = self._rows(
            "SELECT i.rowid AS item_rowid, v.part, v.vector FROM item_vectors v"
            " JOIN items i ON i.tenant_id = v.tenant_id AND i.id = v.item_id"
            " WHERE v.row = ANY(?) ORDER BY v.row",
            ([int(r) for r in rows],),
        )
        return _stored(found, 0)

    def keyword(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(item rowid, score: higher is better) for any of the phrases, best first."""
        query, params = _tsquery(phrases)
        rows = self._rows(
            f"SELECT rowid, ts_rank_cd({_WEIGHTS}, words, q, 1) AS score"
            f" FROM item_text, (SELECT {query} AS q) AS query"
            " WHERE words @@ q AND tenant_id = ? ORDER BY score DESC, rowid LIMIT ?",
            (*params, tenant_id, limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def keyword_inside(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """Items whose text without spaces holds any of the words (the trigram index finds them); the score
        counts the words held, ties broken by trigram similarity."""
        words = [p.strip().lower() for p in phrases if p.strip()]
        if not words:
            return []
        held = " + ".join("(grams LIKE ?)::int" for _ in words)
        anyof = " OR ".join("grams LIKE ?" for _ in words)
        likes = ["%" + _escape_like(w) + "%" for w in words]
        rows = self._rows(
            f"SELECT rowid, {held} + word_similarity(?, grams) AS score FROM item_text"
            f" WHERE tenant_id = ? AND ({anyof}) ORDER BY score DESC, rowid LIMIT ?",
            (*likes, " ".join(words), tenant_id, *likes, limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def words_inside(self, tenant_id: str, words: Sequence[str], rowids: Sequence[int]) -> dict[int, list[str]]:
        if not rowids or not words:
            return {}
        rows = self._rows(
            "SELECT rowid, grams FROM item_text WHERE tenant_id = ? AND rowid = ANY(?)",
            (tenant_id, [int(r) for r in rowids]),
        )
        return {int(r[0]): [w for w in words if w in r[1]] for r in rows}

    def snippets(self, tenant_id: str, phrases: Sequence[str], rowids: Sequence[int]) -> dict[int, dict[str, str]]:
        if not rowids:
            return {}
        query, params = _tsquery(phrases)
        columns = ", ".join(f"ts_headline('simple', {c}, q, '{_HEADLINE}') AS {c}" for c in _TEXT_COLUMNS)
        out: dict[int, dict[str, str]] = {}
        for r in self._rows(
            f"SELECT rowid, {columns} FROM item_text, (SELECT {query} AS q) AS query"
            " WHERE words @@ q AND tenant_id = ? AND rowid = ANY(?)",
            (*params, tenant_id, [int(x) for x in rowids]),
        ):
            out[int(r["rowid"])] = {k: r[k] for k in _TEXT_COLUMNS if r[k] and "[" in r[k]}
        return out

    def filter_rowids(self, tenant_id: str, filters: Filters) -> set[int]:
        where: list[str] = ["i.tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if filters.modalities:
            where.append("i.modality = ANY(?)")
            params.append(list(filters.modalities))
        if filters.since:
            where.append("i.captured_at >= ?")
            params.append(filters.since)
        if filters.until:
            where.append("i.captured_at <= ?")  # a bare date includes that whole day
            params.append(filters.until + ("T99" if len(filters.until) == 10 else ""))
        if filters.max_nsfw is not None:
            where.append("COALESCE(i.nsfw, 0) <= ?")
            params.append(filters.max_nsfw)
        if filters.safe_only:
            where.append("i.flagged = 0")
        if filters.source_prefix:
            where.append("substr(i.source, 1, ?) = ?")
            params += [len(filters.source_prefix), filters.source_prefix]
        for label in filters.labels:
            where.append(
                "EXISTS (SELECT 1 FROM item_labels l WHERE l.tenant_id = i.tenant_id AND l.item_id = i.id"
                " AND lower(l.name) = lower(?))"
            )
            params.append(label)
        if filters.person_ids:
            where.append(
                "EXISTS (SELECT 1 FROM item_faces l JOIN faces f ON f.tenant_id = l.tenant_id AND f.id = l.face_id"
                f" WHERE l.tenant_id = i.tenant_id AND l.item_id = i.id AND {_FACE_SHOWN}"
                " AND (f.person_id = ANY(?) OR f.cluster_id = ANY(?)))"
            )
            params += [list(filters.person_ids)] * 2
        rows = self._rows(f"SELECT array_agg(i.rowid) FROM items i WHERE {' AND '.join(where)}", params)
        found = rows[0][0] if rows else None
        return set(found or [])

    def recent_rowids(self, tenant_id: str, rowids: set[int] | None, limit: int) -> list[int]:
        if rowids is None:
            rows = self._rows(
                "SELECT rowid FROM items WHERE tenant_id = ? ORDER BY captured_at DESC, rowid DESC LIMIT ?",
                (tenant_id, limit),
            )
        else:
            rows = self._rows(
                "SELECT rowid FROM items WHERE tenant_id = ? AND rowid = ANY(?)"
                " ORDER BY captured_at DESC, rowid DESC LIMIT ?",
                (tenant_id, sorted(rowids), limit),
            )
        return [int(r[0]) for r in rows]

    def phashes(self, tenant_id: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        rows = self._rows(
            "SELECT rowid, phash FROM items WHERE tenant_id = ? AND phash IS NOT NULL ORDER BY rowid", (tenant_id,)
        )
        rowids = np.array([r[0] for r in rows], np.int64)
        hashes = np.array([r[1] for r in rows], np.int64).view(np.uint64)
        return rowids, hashes

    def resolve_person(self, tenant_id: str, who: str) -> list[str]:
        if who.startswith("clu_"):
            return [who]
        rows = self._rows(
            "SELECT id FROM persons WHERE tenant_id = ? AND (id = ? OR lower(name) = lower(?))"
            f" AND {_PERSON_SHOWN} ORDER BY rowid",
            (tenant_id, who, who),
        )
        if not rows:
            raise NotFoundError(f"no person {who!r}; give a person id, a person's name or a cluster id")
        return [r[0] for r in rows]


_TEXT_COLUMNS = ("text", "transcript", "labels")


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _signed(phash: int | None) -> int | None:
    """A 64-bit hash as the signed value SQLite and bigint store."""
    if phash is None:
        return None
    return int(np.array([int(phash) & (2**64 - 1)], np.uint64).view(np.int64)[0])


def _stored(rows: Sequence[Any], version: int) -> StoredVectors:
    dim = len(rows[0]["vector"]) // 4 if rows else 0
    matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), dim)
    return StoredVectors(
        version=version,
        item_rowids=np.array([r["item_rowid"] for r in rows], np.int64),
        parts=[r["part"] for r in rows],
        matrix=matrix.astype(np.float32),
    )


def _write_items(conn: PgConn, tenant_id: str, items: Sequence[NewItem]) -> list[WriteOutcome]:
    """Write items in order inside the caller's transaction. The tenant's search_state rows are locked first, so
    the versions each outcome reports, worked out here as one write after another would see them, are the
    database's: no other writer can move them before this transaction ends. (A row another writer creates
    meanwhile, for an encoder new to the tenant, is not locked: then the versions reported fall behind the
    database's, and the vector cache reloads instead of missing a change.)"""
    state = {
        r[0]: int(r[1])
        for r in conn.execute(
            "SELECT encoder, version FROM search_state WHERE tenant_id = ? ORDER BY encoder FOR UPDATE",
            (tenant_id,),
        ).fetchall()
    }
    out: list[WriteOutcome] = []
    run: dict[str, NewItem] = {}
    for new in items:
        if new.source in run:  # a second write of one source replaces the first: after it is stored
            out += _write_run(conn, tenant_id, list(run.values()), state)
            run = {}
        run[new.source] = new
    if run:
        out += _write_run(conn, tenant_id, list(run.values()), state)
    return out


def _write_run(conn: PgConn, tenant_id: str, run: list[NewItem], state: dict[str, int]) -> list[WriteOutcome]:
    """Items of distinct sources: the records they replace deleted, then one write per table."""
    old = {
        r["source"]: r
        for r in conn.execute(
            "SELECT source, id, rowid FROM items WHERE tenant_id = ? AND source = ANY(?)",
            (tenant_id, [new.source for new in run]),
        ).fetchall()
    }
    faces: dict[str, list[str]] = {}
    encoders: dict[str, list[str]] = {}  # of the replaced items' vectors, whose deletion bumps their versions
    if old:
        ids = [r["id"] for r in old.values()]
        for r in conn.execute(
            "SELECT item_id, face_id FROM item_faces WHERE tenant_id = ? AND item_id = ANY(?) ORDER BY rowid",
            (tenant_id, ids),
        ).fetchall():
            faces.setdefault(r[0], []).append(r[1])
        for r in conn.execute(
            "SELECT item_id, encoder FROM item_vectors WHERE tenant_id = ? AND item_id = ANY(?)", (tenant_id, ids)
        ).fetchall():
            encoders.setdefault(r[0], []).append(r[1])
        conn.execute("DELETE FROM items WHERE tenant_id = ? AND id = ANY(?)", (tenant_id, ids))
    # The serial numbers the rows would have drawn one insert at a time, drawn at once so COPY can carry them.
    rowids, vector_rows = conn.execute(
        "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('items', 'rowid')) FROM generate_series(1, ?)),"
        " ARRAY(SELECT nextval(pg_get_serial_sequence('item_vectors', 'row')) FROM generate_series(1, ?))",
        (len(run), sum(len(new.vectors) for new in run)),
    ).fetchone()
    rowids, vector_rows = sorted(rowids), sorted(vector_rows)
    item_ids = [new_id("item", 16) for _ in run]
    written = list(zip(run, item_ids, rowids, strict=True))
    conn.executemany(
        "INSERT INTO items (rowid, id, tenant_id, source, sha256, modality, mime, byte_size, pages, duration_s,"
        " captured_at, indexed_at, nsfw, flagged, phash, encoder, result)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                *(rowid, item_id, tenant_id, new.source, new.sha256, new.modality, new.mime, new.byte_size),
                *(new.pages, new.duration_s, new.captured_at, now(), new.nsfw, int(new.flagged)),
                *(_signed(new.phash), new.encoder, json.dumps(new.result, ensure_ascii=False)),
            )
            for new, item_id, rowid in written
        ],
    )
    # the persons and faces each result names, for their erasure (erasure.record_refs, one statement for all)
    conn.executemany(
        "INSERT INTO item_refs (tenant_id, ref, item_id) VALUES (?, ?, ?)",
        [(tenant_id, ref, item_id) for new, item_id, _ in written for ref in sorted(result_refs(new.result))],
    )
    conn.executemany(
        "INSERT INTO item_labels (tenant_id, item_id, name, score) VALUES (?, ?, ?, ?)",
        [(tenant_id, item_id, name, score) for new, item_id, _ in written for name, score in new.labels.items()],
    )
    conn.executemany(
        "INSERT INTO item_faces (tenant_id, item_id, face_id, page) VALUES (?, ?, ?, ?)",
        [
            (tenant_id, item_id, face, page)
            for new, item_id, _ in written
            for face, page in _first_pages(new.faces)
        ],
    )
    vectors = [(new, item_id, part, vector) for new, item_id, _ in written for part, vector in new.vectors]
    conn.executemany(
        "INSERT INTO item_vectors (row, tenant_id, item_id, encoder, part, vector) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (row, tenant_id, item_id, new.encoder, part, np.ascontiguousarray(vector, dtype="<f4").tobytes())
            for row, (new, item_id, part, vector) in zip(vector_rows, vectors, strict=True)
        ],
    )
    conn.executemany(
        "INSERT INTO item_text (rowid, tenant_id, text, transcript, labels, grams) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (rowid, tenant_id, new.text, new.transcript, " ".join(new.labels), "".join(new.text.lower().split()))
            for new, _, rowid in written
        ],
    )
    added = Counter(new.encoder for new in run)
    conn.executemany(
        "INSERT INTO search_state (tenant_id, encoder, version) VALUES (?, ?, ?) ON CONFLICT (tenant_id, encoder)"
        " DO UPDATE SET version = search_state.version + excluded.version",
        [(tenant_id, encoder, n) for encoder, n in sorted(added.items())],
    )
    stored = {
        int(r["rowid"]): _item(r)
        for r in conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE rowid = ANY(?)", (rowids,)).fetchall()
    }
    out: list[WriteOutcome] = []
    rows = iter(vector_rows)
    for new, _, rowid in written:
        before = state.get(new.encoder, 0)
        prior = old.get(new.source)
        for encoder in encoders.get(prior["id"], []) if prior is not None else []:
            if encoder in state:  # the delete trigger bumps a version only where its row exists
                state[encoder] += 1
        state[new.encoder] = state.get(new.encoder, 0) + 1
        mine = [next(rows) for _ in new.vectors]
        if prior is None:
            out.append(WriteOutcome(stored[rowid], [], None, before, state[new.encoder], mine))
        else:
            gone = faces.get(prior["id"], [])
            out.append(WriteOutcome(stored[rowid], gone, int(prior["rowid"]), before, state[new.encoder], mine))
    return out


def _first_pages(faces: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Each face once, at its first page, in order: what ``INSERT OR IGNORE`` kept of the links one at a time."""
    first: dict[str, int] = {}
    for face_id, page in faces:
        first.setdefault(face_id, page)
    return list(first.items())


def _version(conn: PgConn, tenant_id: str, encoder: str) -> int:
    row = conn.execute(
        "SELECT version FROM search_state WHERE tenant_id = ? AND encoder = ?", (tenant_id, encoder)
    ).fetchone()
    return int(row[0]) if row else 0


def _delete(conn: PgConn, tenant_id: str, item_id: str) -> list[str]:
    """Delete one item inside the caller's transaction (its vectors, labels, links and text by cascade)."""
    faces = [
        r[0]
        for r in conn.execute(
            "SELECT face_id FROM item_faces WHERE tenant_id = ? AND item_id = ? ORDER BY rowid",
            (tenant_id, item_id),
        ).fetchall()
    ]
    conn.execute("DELETE FROM items WHERE tenant_id = ? AND id = ?", (tenant_id, item_id))
    return faces


def _item(row: Any) -> Item:
    phash = row["phash"]
    return Item(
        id=row["id"],
        rowid=int(row["rowid"]),
        source=row["source"],
        sha256=row["sha256"],
        modality=row["modality"],
        mime=row["mime"],
        byte_size=int(row["byte_size"]),
        pages=int(row["pages"]),
        duration_s=row["duration_s"],
        captured_at=row["captured_at"],
        indexed_at=row["indexed_at"],
        nsfw=row["nsfw"],
        flagged=bool(row["flagged"]),
        phash=None if phash is None else int(phash),
        encoder=row["encoder"],
        result=read_json(row["result"], max_depth=None),
    )
