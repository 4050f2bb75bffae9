"""The search index's tables in the service's SQLite file: items, their labels, face links, vectors, full text
(FTS5) and picture hashes.

`SQLiteSearchStore` opens its own connection to the database `SQLiteStore` uses (same pragmas: WAL, full fsync,
foreign keys, secure delete) and writes one transaction per item, so an interrupted run of ``frugalsense index``
leaves whole items behind and resumes where it stopped.

    >>> import tempfile
    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/frugalsense.db")
    >>> search = store.search_store()
    >>> search.list_items(store.create_tenant("acme").id)
    []
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import NotFoundError
from frugalsense.store._database import Database
from frugalsense.store._tables import LIVE_FACE, LIVE_PERSON, new_id, now
from frugalsense.store.erasure import record_refs
from frugalsense.store.items import FaceLink, Filters, Item, NewItem, StoredVectors, WriteOutcome
from frugalsense.store.validation import read_json

__all__ = ["SQLiteSearchStore"]

_CHUNK = 500  # bound parameters per statement stay well under SQLite's limit
# Faces and persons of a collection being erased are hidden (see SQLiteStore.begin_collection_erasure).
_FACE_SHOWN = LIVE_FACE.format(f="f.")
_PERSON_SHOWN = LIVE_PERSON.format(p="persons")


def fts_match(phrases: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression for any of the phrases, each quoted so no word is read as an operator (a quote
    inside one is doubled, as FTS5 escapes it); None for no phrase.

    >>> print(fts_match(["total", "due now", 'a "b" c']))
    "total" OR "due now" OR "a ""b"" c"
    """
    quoted = ['"' + p.replace('"', '""') + '"' for p in phrases if p.strip()]
    return " OR ".join(quoted) or None


class SQLiteSearchStore(Database):
    """A `SearchStore` in the service's SQLite file. Thread-safe: one connection behind a lock, as in
    `SQLiteStore`."""

    # -- writes ---------------------------------------------------------------------------------------------

    def put_item(self, tenant_id: str, new: NewItem) -> WriteOutcome:
        """Insert an item, replacing the tenant's record of the same source (its vectors, text, labels and face
        links go with it; its faces are returned for the gallery to erase)."""
        self.limits.source(new.source)
        with self._write() as conn:
            return _insert(conn, tenant_id, new)

    def put_items(self, tenant_id: str, items: Sequence[NewItem]) -> list[WriteOutcome]:
        """Many `put_item`s in one transaction (bulk loads; one fsync instead of one per item)."""
        for new in items:
            self.limits.source(new.source)
        with self._write() as conn:
            return [_insert(conn, tenant_id, new) for new in items]

    def delete_item(self, tenant_id: str, item_id: str) -> WriteOutcome:
        """Delete an item with its vectors, text, labels and face links; returns its faces for the gallery."""
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
        """Delete up to ``limit`` of a tenant's items (their vectors, text, labels and links go with them) in
        one transaction: the chunks of a tenant's erasure. Returns how many went; 0 once none is left."""
        with self._write() as conn:
            return int(
                conn.execute(
                    "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE tenant_id = ? LIMIT ?)",
                    (tenant_id, max(1, limit)),
                ).rowcount
            )

    def purge_deleted_text(self) -> None:
        """Merge each full-text index into one segment, which drops the words of deleted rows from the file.

        FTS5 deletes by appending tombstones: the words stay in the older segments until a merge. (SQLite 3.42
        can delete in place with its 'secure-delete' option; older versions cannot.) The merge rewrites the whole
        index, so it is for erasures, not for every delete; `checkpoint` afterwards to empty the log.
        """
        with self._write() as conn:
            conn.execute("INSERT INTO item_text (item_text) VALUES ('optimize')")
            conn.execute("INSERT INTO item_grams (item_grams) VALUES ('optimize')")

    # -- reads ----------------------------------------------------------------------------------------------

    def get_item(self, tenant_id: str, item_id: str) -> Item:
        rows = self._rows("SELECT rowid, * FROM items WHERE tenant_id = ? AND id = ?", (tenant_id, item_id))
        if not rows:
            raise NotFoundError(f"no item {item_id!r}; search or list items to see their ids")
        return _item(rows[0])

    def find_source(self, tenant_id: str, source: str) -> Item | None:
        rows = self._rows("SELECT rowid, * FROM items WHERE tenant_id = ? AND source = ?", (tenant_id, source))
        return _item(rows[0]) if rows else None

    def set_phash(self, tenant_id: str, item_id: str, phash: int) -> None:
        """Store an item's picture hash (an unchanged file indexed again after the hash changed)."""
        with self._write() as conn:
            conn.execute("UPDATE items SET phash = ? WHERE tenant_id = ? AND id = ?", (phash, tenant_id, item_id))

    def items_by_rowid(self, tenant_id: str, rowids: Sequence[int]) -> dict[int, Item]:
        out: dict[int, Item] = {}
        ids = list(dict.fromkeys(int(r) for r in rowids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                # "+tenant_id" keeps the planner on rowid lookups instead of walking the tenant's index.
                f"SELECT rowid, * FROM items WHERE rowid IN ({marks}) AND +tenant_id = ?",
                (*chunk, tenant_id),
            ):
                out[int(row["rowid"])] = _item(row)
        return out

    def list_items(
        self, tenant_id: str, *, source_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        sql = "SELECT rowid, * FROM items WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if source_prefix:
            sql += " AND substr(source, 1, ?) = ?"
            params += [len(source_prefix), source_prefix]
        sql += " ORDER BY captured_at DESC, rowid DESC LIMIT ? OFFSET ?"
        return [_item(r) for r in self._rows(sql, (*params, limit, offset))]

    def sources(self, tenant_id: str, source_prefix: str) -> dict[str, str]:
        """Source -> item id for every item whose source starts with ``source_prefix``."""
        rows = self._rows(
            "SELECT source, id FROM items WHERE tenant_id = ? AND substr(source, 1, ?) = ?",
            (tenant_id, len(source_prefix), source_prefix),
        )
        return {r["source"]: r["id"] for r in rows}

    def faces_of(self, tenant_id: str, item_ids: Sequence[str]) -> dict[str, list[FaceLink]]:
        out: dict[str, list[FaceLink]] = {}
        ids = list(dict.fromkeys(item_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._rows(
                "SELECT l.item_id, l.face_id, l.page, f.person_id, f.cluster_id, p.name FROM item_faces l"
                " JOIN faces f ON f.tenant_id = l.tenant_id AND f.id = l.face_id"
                " LEFT JOIN persons p ON p.tenant_id = f.tenant_id AND p.id = f.person_id"
                f" WHERE l.tenant_id = ? AND l.item_id IN ({marks}) AND {_FACE_SHOWN} ORDER BY l.page, l.rowid",
                (tenant_id, *chunk),
            ):
                out.setdefault(r["item_id"], []).append(
                    FaceLink(r["face_id"], r["page"], r["person_id"], r["name"], r["cluster_id"])
                )
        return out

    def unlinked_faces(self, tenant_id: str, face_ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        ids = list(dict.fromkeys(face_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT f.id FROM faces f WHERE f.tenant_id = ? AND f.id IN ({marks}) AND NOT EXISTS"
                " (SELECT 1 FROM item_faces l WHERE l.tenant_id = f.tenant_id AND l.face_id = f.id)",
                (tenant_id, *chunk),
            )
            out.update(r["id"] for r in rows)
        return out

    def tenant_counts(self, tenant_id: str) -> dict[str, int]:
        """How many items, vectors, labels and face links the tenant has."""
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
        with self._lock:
            self._conn.execute("BEGIN")  # one snapshot: the version matches the rows read
            try:
                version = _version(self._conn, tenant_id, encoder)
                rows = self._conn.execute(
                    "SELECT i.rowid AS item_rowid, v.part, v.vector FROM item_vectors v"
                    " JOIN items i ON i.tenant_id = v.tenant_id AND i.id = v.item_id"
                    " WHERE v.tenant_id = ? AND v.encoder = ? ORDER BY v.row",
                    (tenant_id, encoder),
                ).fetchall()
            finally:
                self._conn.execute("COMMIT")
        dim = len(rows[0]["vector"]) // 4 if rows else 0
        matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return StoredVectors(
            version=version,
            item_rowids=np.array([r["item_rowid"] for r in rows], np.int64),
            parts=[r["part"] for r in rows],
            matrix=matrix.astype(np.float32),
        )

    def vector_rows(self, rows: Sequence[int]) -> StoredVectors:
        """Specific vector rows (just written), for the in-memory index to append."""
        marks = ",".join("?" * len(rows))
        found = self._rows(
            "SELECT i.rowid AS item_rowid, v.part, v.vector FROM item_vectors v"
            " JOIN items i ON i.tenant_id = v.tenant_id AND i.id = v.item_id"
            f" WHERE v.row IN ({marks}) ORDER BY v.row",
            list(rows),
        )
        dim = len(found[0]["vector"]) // 4 if found else 0
        matrix = np.frombuffer(b"".join(r["vector"] for r in found), dtype="<f4").reshape(len(found), dim)
        return StoredVectors(
            version=0,
            item_rowids=np.array([r["item_rowid"] for r in found], np.int64),
            parts=[r["part"] for r in found],
            matrix=matrix.astype(np.float32),
        )

    def keyword(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(item rowid, BM25 score: higher is better) for any of the phrases, best first."""
        match = fts_match(phrases)
        if match is None:
            return []
        # Text read in the picture counts as much as speech; a label word is a weaker signal than either.
        rows = self._rows(
            "SELECT rowid, bm25(item_text, 1.0, 1.0, 0.5) AS score FROM item_text"
            " WHERE item_text MATCH ? AND tenant_id = ? ORDER BY score LIMIT ?",
            (match, tenant_id, limit),
        )
        return [(int(r["rowid"]), -float(r["score"])) for r in rows]

    def keyword_inside(self, tenant_id: str, phrases: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """Like `keyword`, over the trigrams of each item's text with its spaces removed (words found inside
        runs of OCR text without spaces)."""
        match = fts_match(phrases)
        if match is None:
            return []
        rows = self._rows(
            "SELECT rowid, bm25(item_grams) AS score FROM item_grams"
            " WHERE item_grams MATCH ? AND tenant_id = ? ORDER BY score LIMIT ?",
            (match, tenant_id, limit),
        )
        return [(int(r["rowid"]), -float(r["score"])) for r in rows]

    def words_inside(self, tenant_id: str, words: Sequence[str], rowids: Sequence[int]) -> dict[int, list[str]]:
        """Which of ``words`` occur (lower case, spaces removed) in each item's text."""
        if not rowids or not words:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self._rows(
            f"SELECT rowid, text FROM item_grams WHERE tenant_id = ? AND rowid IN ({marks})", (tenant_id, *rowids)
        )
        return {int(r["rowid"]): [w for w in words if w in r["text"]] for r in rows}

    def snippets(self, tenant_id: str, phrases: Sequence[str], rowids: Sequence[int]) -> dict[int, dict[str, str]]:
        """Matching passages per column ("text", "transcript", "labels") of the given items."""
        match = fts_match(phrases)
        if not rowids or match is None:
            return {}
        marks = ",".join("?" * len(rowids))
        out: dict[int, dict[str, str]] = {}
        for r in self._rows(
            "SELECT rowid, snippet(item_text, 0, '[', ']', '…', 10) AS text,"
            " snippet(item_text, 1, '[', ']', '…', 10) AS transcript,"
            " snippet(item_text, 2, '[', ']', '…', 10) AS labels"
            f" FROM item_text WHERE item_text MATCH ? AND tenant_id = ? AND rowid IN ({marks})",
            (match, tenant_id, *rowids),
        ):
            out[int(r["rowid"])] = {k: r[k] for k in ("text", "transcript", "labels") if r[k] and "[" in r[k]}
        return out

    def filter_rowids(self, tenant_id: str, filters: Filters) -> set[int]:
        """The rowids of the tenant's items that meet every condition."""
        where: list[str] = ["i.tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if filters.modalities:
            where.append(f"i.modality IN ({','.join('?' * len(filters.modalities))})")
            params += list(filters.modalities)
        if filters.since:
            where.append("i.captured_at >= ?")
            params.append(filters.since)
        if filters.until:
            # A bare date includes that whole day.
            where.append("i.captured_at <= ?")
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
                " AND l.name = ? COLLATE NOCASE)"
            )
            params.append(label)
        if filters.person_ids:
            marks = ",".join("?" * len(filters.person_ids))
            where.append(
                "EXISTS (SELECT 1 FROM item_faces l JOIN faces f ON f.tenant_id = l.tenant_id AND f.id = l.face_id"
                f" WHERE l.tenant_id = i.tenant_id AND l.item_id = i.id AND {_FACE_SHOWN}"
                f" AND (f.person_id IN ({marks}) OR f.cluster_id IN ({marks})))"
            )
            params += list(filters.person_ids) * 2
        # One concatenated string instead of a Python row per item: at 100,000 items the per-row cost of the
        # sqlite3 module dominated filtered searches (60 ms for 25,000 rows).
        rows = self._rows(f"SELECT group_concat(i.rowid) FROM items i WHERE {' AND '.join(where)}", params)
        joined = rows[0][0] if rows else None
        if not joined:
            return set()
        return set(np.fromstring(joined, dtype=np.int64, sep=",").tolist())

    def recent_rowids(self, tenant_id: str, rowids: set[int] | None, limit: int) -> list[int]:
        """Items newest first (for a search with filters and no query)."""
        if rowids is None:
            sql = "SELECT rowid FROM items WHERE tenant_id = ? ORDER BY captured_at DESC, rowid DESC LIMIT ?"
            return [int(r[0]) for r in self._rows(sql, (tenant_id, limit))]
        if not rowids or limit < 1:
            return []
        # The allowed rowids go in as one JSON array: SQLite looks them up and keeps the newest `limit`, where a
        # Python loop over every item newest first took a quarter of a second at 100,000 items.
        rows = self._rows(
            "SELECT rowid FROM items WHERE tenant_id = ? AND rowid IN (SELECT value FROM json_each(?))"
            " ORDER BY captured_at DESC, rowid DESC LIMIT ?",
            (tenant_id, "[" + ",".join(map(str, rowids)) + "]", limit),
        )
        return [int(r[0]) for r in rows]

    def phashes(self, tenant_id: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """Rowids (ascending) and picture hashes of the tenant's items that have one."""
        # Two concatenated strings read from the (tenant, phash) index instead of a Python row per item: one
        # aggregate pass, so the n-th rowid and the n-th hash come from the same row.
        row = self._rows(
            "SELECT group_concat(rowid), group_concat(phash) FROM items WHERE tenant_id = ? AND phash IS NOT NULL",
            (tenant_id,),
        )[0]
        if row[0] is None:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        rowids = np.fromstring(row[0], dtype=np.int64, sep=",")
        hashes = np.fromstring(row[1], dtype=np.int64, sep=",")
        order = np.argsort(rowids, kind="stable")
        return rowids[order], hashes[order].view(np.uint64)

    def resolve_person(self, tenant_id: str, who: str) -> list[str]:
        """Person or cluster ids for ``who``: an id as given, or every person of that name (case-insensitive)."""
        if who.startswith("clu_"):
            return [who]
        rows = self._rows(
            "SELECT id FROM persons WHERE tenant_id = ? AND (id = ? OR name = ? COLLATE NOCASE)"
            f" AND {_PERSON_SHOWN}",
            (tenant_id, who, who),
        )
        if not rows:
            raise NotFoundError(f"no person {who!r}; give a person id, a person's name or a cluster id")
        return [r[0] for r in rows]


def _insert(conn: sqlite3.Connection, tenant_id: str, new: NewItem) -> WriteOutcome:
    """Write one item inside the caller's transaction."""
    item_id = new_id("item", 16)
    stamp = now()
    before = _version(conn, tenant_id, new.encoder)
    old = conn.execute(
        "SELECT id, rowid FROM items WHERE tenant_id = ? AND source = ?", (tenant_id, new.source)
    ).fetchone()
    replaced_faces: list[str] = []
    if old is not None:
        replaced_faces = _delete(conn, tenant_id, old["id"])
    cursor = conn.execute(
        "INSERT INTO items (id, tenant_id, source, sha256, modality, mime, byte_size, pages, duration_s,"
        " captured_at, indexed_at, nsfw, flagged, phash, encoder, result)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item_id,
            tenant_id,
            new.source,
            new.sha256,
            new.modality,
            new.mime,
            new.byte_size,
            new.pages,
            new.duration_s,
            new.captured_at,
            stamp,
            new.nsfw,
            int(new.flagged),
            new.phash,
            new.encoder,
            json.dumps(new.result, ensure_ascii=False),
        ),
    )
    rowid = int(cursor.lastrowid or 0)
    record_refs(conn, tenant_id, item_id, new.result)  # the persons and faces it names, for their erasure
    conn.executemany(
        "INSERT INTO item_labels VALUES (?, ?, ?, ?)",
        [(tenant_id, item_id, name, score) for name, score in new.labels.items()],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO item_faces VALUES (?, ?, ?, ?)",
        [(tenant_id, item_id, face_id, page) for face_id, page in new.faces],
    )
    rows = []
    for part, vector in new.vectors:
        blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        cur = conn.execute(
            "INSERT INTO item_vectors (tenant_id, item_id, encoder, part, vector) VALUES (?, ?, ?, ?, ?)",
            (tenant_id, item_id, new.encoder, part, blob),
        )
        rows.append(int(cur.lastrowid or 0))
    conn.execute(
        "INSERT INTO item_text (rowid, text, transcript, labels, tenant_id) VALUES (?, ?, ?, ?, ?)",
        (rowid, new.text, new.transcript, " ".join(new.labels), tenant_id),
    )
    conn.execute(
        "INSERT INTO item_grams (rowid, text, tenant_id) VALUES (?, ?, ?)",
        (rowid, "".join(new.text.lower().split()), tenant_id),
    )
    conn.execute(
        "INSERT INTO search_state (tenant_id, encoder, version) VALUES (?, ?, 1)"
        " ON CONFLICT (tenant_id, encoder) DO UPDATE SET version = version + 1",
        (tenant_id, new.encoder),
    )
    after = _version(conn, tenant_id, new.encoder)
    item = _item(conn.execute("SELECT rowid, * FROM items WHERE rowid = ?", (rowid,)).fetchone())
    return WriteOutcome(item, replaced_faces, old["rowid"] if old else None, before, after, rows)


def _version(conn: sqlite3.Connection, tenant_id: str, encoder: str) -> int:
    row = conn.execute(
        "SELECT version FROM search_state WHERE tenant_id = ? AND encoder = ?", (tenant_id, encoder)
    ).fetchone()
    return int(row[0]) if row else 0


def _delete(conn: sqlite3.Connection, tenant_id: str, item_id: str) -> list[str]:
    """Delete one item inside the caller's transaction; returns the ids of the faces it showed."""
    faces = [
        r[0]
        for r in conn.execute(
            "SELECT face_id FROM item_faces WHERE tenant_id = ? AND item_id = ?", (tenant_id, item_id)
        )
    ]
    # Vectors, labels and face links go by foreign-key cascade, the full text by trigger.
    conn.execute("DELETE FROM items WHERE tenant_id = ? AND id = ?", (tenant_id, item_id))
    return faces


def _item(row: sqlite3.Row) -> Item:
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
        # Written by the indexer, never by callers: only non-finite numbers need reading tolerantly.
        result=read_json(row["result"], max_depth=None),
    )
