"""``frugalsense db copy``: a data folder's SQLite database into an empty PostgreSQL database, then checked.

Every row keeps its ids and its rowid (so item rowids in vector snapshots and the order of lists stay the same);
crops stay in the data folder, which the PostgreSQL deployment keeps using. The copy is verified by counting
every table on both sides and comparing a SHA-256 of every embedding (faces, second embeddings, item vectors).

    report = copy_to_postgres(Path("data/frugalsense.db"), "postgresql://...")
    report.ok
    # True
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugalsense.errors import ConfigurationError, InvalidRequestError
from frugalsense.store.postgres_db import (
    VECTOR_INDEXES,
    PgConn,
    apply_pg_migrations,
    connect,
    create_vector_indexes,
)
from frugalsense.store.postgres_rls import ALL_TENANTS
from frugalsense.store.sqlite import SQLiteStore

__all__ = ["CopyReport", "copy_to_postgres"]

#: parents before children, so every foreign key finds its row
TABLES = (
    "tenants",
    "api_keys",
    "collections",
    "persons",
    "faces",
    "face_embeddings",
    "corrections",
    "face_state",
    "items",
    "item_labels",
    "item_faces",
    "item_vectors",
    "search_state",
    "item_refs",
    "usage",
)
#: (table, key, embedding column): what the digests cover
EMBEDDINGS = (
    ("faces", "id", "embedding"),
    ("face_embeddings", "face_id, model", "vector"),
    ("item_vectors", "row", "vector"),
)
_BATCH = 2000


@dataclass(frozen=True)
class CopyReport:
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (sqlite, postgres)
    digests: dict[str, tuple[str, str]] = field(default_factory=dict)  # table -> (sqlite, postgres)

    @property
    def ok(self) -> bool:
        return all(a == b for a, b in self.counts.values()) and all(a == b for a, b in self.digests.values())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts, "digests": self.digests}


def copy_to_postgres(sqlite_path: Path, url: str) -> CopyReport:
    """Copy every row of the SQLite database at ``sqlite_path`` into the database at ``url`` (migrated first;
    it must hold no tenant yet), in one transaction, then verify counts and embedding digests."""
    if not sqlite_path.is_file():
        raise InvalidRequestError(f"no database at {sqlite_path}; give the data folder with --data-dir")
    SQLiteStore(sqlite_path).close()  # brings an older file up to the current schema first
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    target = connect(url, tenant=ALL_TENANTS)  # every tenant's rows, past row-level security
    try:
        apply_pg_migrations(target)
        if target.execute("SELECT 1 FROM tenants LIMIT 1").fetchone() is not None:
            raise ConfigurationError("the PostgreSQL database already holds tenants; copy into an empty one")
        # One transaction: the HNSW indexes are dropped, the rows copied (binary COPY), the indexes built once
        # (far cheaper than growing the graph row by row); a failed copy leaves the database as it was.
        with target.transaction():
            for name in VECTOR_INDEXES:
                target.execute(f"DROP INDEX {name}")
            for table in TABLES:
                _copy_table(source, target, table)
            _copy_text(source, target)
            create_vector_indexes(target)
        target.execute("ANALYZE")
        counts = {t: (_count(source, t), _count(target, t)) for t in (*TABLES, "item_text")}
        digests = {
            t: (_digest(source, t, key, column), _digest(target, t, key, column)) for t, key, column in EMBEDDINGS
        }
        return CopyReport(counts, digests)
    finally:
        source.close()
        target.close()


def _pg_columns(target: Any, table: str) -> set[str]:
    rows = target.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_generated = 'NEVER'",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def _copy_table(source: sqlite3.Connection, target: Any, table: str) -> None:
    columns = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
    wanted = _pg_columns(target, table)
    columns = [c for c in columns if c in wanted]
    with_rowid = "rowid" in wanted and "rowid" not in columns
    select = ", ".join((["rowid"] if with_rowid else []) + columns)
    names = (["rowid"] if with_rowid else []) + columns
    cursor = source.execute(f"SELECT {select} FROM {table}" + (" ORDER BY rowid" if with_rowid else ""))
    while batch := cursor.fetchmany(_BATCH):
        PgConn(target).copy_rows(table, names, batch)
    for serial in ("rowid", "row"):
        if serial in wanted:
            target.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{serial}'),"
                f" GREATEST((SELECT MAX({serial}) FROM {table}), 1))"
            )


def _copy_text(source: sqlite3.Connection, target: Any) -> None:
    """The full text from SQLite's FTS5 table (its rowid is the item's), with the run-together trigram text."""
    cursor = source.execute("SELECT t.rowid, t.tenant_id, t.text, t.transcript, t.labels FROM item_text t")
    names = ("rowid", "tenant_id", "text", "transcript", "labels", "grams")
    while batch := cursor.fetchmany(_BATCH):
        rows = [(*row, "".join(str(row[2]).lower().split())) for row in batch]
        PgConn(target).copy_rows("item_text", names, rows)


def _count(conn: Any, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _digest(conn: Any, table: str, key: str, column: str) -> str:
    """SHA-256 of the column's bytes in key order (sorted here: the two databases collate text differently)."""
    digest = hashlib.sha256()
    for row in sorted(
        conn.execute(f"SELECT {key}, {column} FROM {table}").fetchall(), key=lambda r: tuple(r[:-1])
    ):
        digest.update(bytes(row[-1]))
    return digest.hexdigest()
