"""The PostgreSQL backend: a `Store` for several server processes on one database (``postgresql://...``).

The tables are written by the same classes as SQLite's (`_tenants.py`, `_collections.py`, `_faces.py`) through
`postgres_db.PgConn`, so the two backends cannot drift in what they mean; only what SQL cannot say the same way
is written here. There is no per-process state that can go stale: the gallery's face index reloads whenever the
tenant's face version (``face_state``, bumped in the writing transaction) moved, and every read sees the last
commit of any process (read committed).

    store = PostgresStore(url)
    acme = store.create_tenant("acme")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError
from frugalsense.settings import Settings
from frugalsense.store._collections import CollectionTables
from frugalsense.store._faces import FaceTables
from frugalsense.store._tables import Tables
from frugalsense.store._tenants import TenantTables
from frugalsense.store.postgres_db import HNSW_DIM, PgDatabase
from frugalsense.store.usage import UsageEntry
from frugalsense.store.validation import Limits

__all__ = ["ERASURE_TABLES", "PostgresStore", "PostgresUsageLedger"]

#: what an erasure deletes rows from, vacuumed after it (docs/postgres.md)
ERASURE_TABLES = (
    "faces",
    "face_embeddings",
    "corrections",
    "persons",
    "collections",
    "items",
    "item_text",
    "item_vectors",
    "item_labels",
    "item_faces",
    "item_refs",
    "api_keys",
    "usage",
    "tenants",
)


class _PgTables(PgDatabase, Tables):  # type: ignore[misc]
    """The shared table classes' lookups on a PostgreSQL connection (PgDatabase's plumbing wins)."""


class PostgresStore(TenantTables, CollectionTables, FaceTables, _PgTables):  # type: ignore[misc]
    """A `Store` in a PostgreSQL database with pgvector and pg_trgm (created by the first migration)."""

    def __init__(
        self, url: str, *, limits: Limits | None = None, erasure_vacuum: Literal["full", "plain"] = "full"
    ) -> None:
        PgDatabase.__init__(self, url, limits=limits)
        self.erasure_vacuum = erasure_vacuum

    @classmethod
    def open(cls, settings: Settings) -> PostgresStore:
        if not settings.database_url:
            raise InvalidRequestError("set database_url (FRUGALSENSE_DATABASE_URL) to a postgresql:// address")
        limits = Limits.from_settings(settings)
        return cls(settings.database_url, limits=limits, erasure_vacuum=settings.erasure_vacuum)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """The next transaction id: it moves with every write by any connection."""
        rows = self._rows("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        return int(rows[0][0])

    def face_version(self, tenant_id: str) -> int:
        rows = self._rows("SELECT version FROM face_state WHERE tenant_id = ?", (tenant_id,))
        return int(rows[0][0]) if rows else 0

    def checkpoint(self) -> bool:
        """After an erasure: rewrite the tables it touched (VACUUM FULL), because PostgreSQL has no secure
        delete: a plain VACUUM leaves a pruned row's bytes in its page (measured: an erased face's embedding
        stayed in the faces file). With ``erasure_vacuum="plain"`` only a plain VACUUM runs now and the bytes
        wait for the operator's scheduled ``VACUUM (FULL)``; docs/postgres.md says what each costs and what the
        WAL keeps."""
        return self.vacuum(ERASURE_TABLES, full=self.erasure_vacuum == "full")

    def search_store(self) -> Any:
        from frugalsense.store.postgres_search import PostgresSearchStore

        return PostgresSearchStore(self.path, limits=self.limits)

    def usage_ledger(self) -> PostgresUsageLedger:
        return PostgresUsageLedger(self.path)

    def add_face_embedding(self, tenant_id: str, face_id: str, model: str, vector: npt.ArrayLike) -> None:
        """Store a second model's embedding of a face (replacing that model's earlier one); erased with it."""
        blob = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
        if not blob.size or not np.all(np.isfinite(blob)):
            raise InvalidRequestError("a face embedding must be a non-empty vector of finite numbers")
        with self._write() as conn:
            self._require(conn, "faces", face_id, tenant_id)  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO face_embeddings (tenant_id, face_id, model, vector) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, face_id, model) DO UPDATE SET vector = excluded.vector",
                (tenant_id, face_id, model, blob.tobytes()),
            )

    def nearest_faces(
        self,
        tenant_id: str,
        model: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        enrolled_only: bool = False,
        collection_id: str | None = None,
        ef_search: int = 100,
    ) -> list[tuple[str, float]]:
        """(face id, cosine similarity) of the ``k`` nearest faces by the HNSW index, the tenant and filters in
        the same query, re-ranked exactly on the stored float32 bytes. Approximate: a bench measures its recall
        against exact search (bench/scale.py); the gallery's decisions use the exact index."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if query.size != HNSW_DIM:
            raise InvalidRequestError(f"the HNSW index covers {HNSW_DIM}-d vectors, got {query.size}")
        where = ["tenant_id = %s", "model = %s", f"vector_dims(vec) = {HNSW_DIM}"]
        params: list[Any] = [tenant_id, model]
        if enrolled_only:
            where.append("enrolled = 1")
        if collection_id is not None:
            where.append("collection_id = %s")
            params.append(collection_id)
        text = "[" + ",".join(repr(float(x)) for x in query) + "]"
        with self._lock, self._raw.transaction():
            self._raw.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            # iterative scans keep walking the graph until enough rows pass the filters
            self._raw.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = self._raw.execute(
                f"SELECT id, embedding FROM faces WHERE {' AND '.join(where)}"
                f" ORDER BY vec::vector({HNSW_DIM}) <=> %s::vector({HNSW_DIM}) LIMIT %s",
                (*params, text, int(k)),
            ).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        scores = matrix.astype(np.float32) @ query
        order = np.argsort(-scores, kind="stable")
        return [(rows[i][0], float(scores[i])) for i in order]

    def table_counts(self) -> dict[str, int]:
        """Rows per table (``frugalsense db copy`` compares them)."""
        return _counts(self)


class PostgresUsageLedger(PgDatabase):
    """The usage ledger (``store/usage.py``'s `UsageLedger`) on its own PostgreSQL connection."""

    def add(self, entries: Sequence[UsageEntry]) -> int:
        """Add entries onto their day's sums in one transaction; entries of an erased tenant are dropped."""
        if not entries:
            return 0
        columns = (
            [e.tenant_id for e in entries],
            [e.day for e in entries],
            [e.feature for e in entries],
            [e.cpu_seconds for e in entries],
            [e.usd for e in entries],
            [e.count for e in entries],
        )
        # One row per (tenant, day, feature) first: an upsert may not touch one row twice in a statement.
        with self._write() as conn:
            conn.execute(
                "INSERT INTO usage (tenant_id, day, feature, cpu_seconds, usd, count)"
                " SELECT e.tenant_id, e.day, e.feature, SUM(e.cpu_seconds), SUM(e.usd), SUM(e.count)"
                " FROM unnest(?::text[], ?::text[], ?::text[], ?::float8[], ?::float8[], ?::bigint[])"
                " AS e(tenant_id, day, feature, cpu_seconds, usd, count)"
                " WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id)"
                " GROUP BY e.tenant_id, e.day, e.feature"
                " ON CONFLICT (tenant_id, day, feature) DO UPDATE SET"
                " cpu_seconds = usage.cpu_seconds + excluded.cpu_seconds, usd = usage.usd + excluded.usd,"
                " count = usage.count + excluded.count",
                columns,
            )
            kept = conn.execute(
                "SELECT COUNT(*) FROM unnest(?::text[]) AS e(tenant_id)"
                " WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id)",
                (columns[0],),
            ).fetchone()[0]
        return int(kept)

    def daily(self, tenant_id: str, since: str, until: str) -> list[UsageEntry]:
        rows = self._rows(
            "SELECT day, feature, cpu_seconds, usd, count FROM usage"
            " WHERE tenant_id = ? AND day >= ? AND day <= ? ORDER BY day, feature",
            (tenant_id, since, until),
        )
        return [UsageEntry(tenant_id, r[0], r[1], float(r[2]), float(r[3]), int(r[4])) for r in rows]


_COUNTED = ("tenants", "api_keys", "collections", "persons", "faces", "face_embeddings", "corrections")


def _counts(db: PgDatabase) -> dict[str, int]:
    return {table: int(db._rows(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in _COUNTED}
