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

import re
import time
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
from frugalsense.store.usage import DAILY, UsageEntry, daily_entry
from frugalsense.store.validation import Limits

__all__ = ["ANN_CANDIDATES", "ANN_EF_SEARCH", "ERASURE_TABLES", "PostgresStore", "PostgresUsageLedger"]

#: HNSW search width and the faces re-ranked exactly for identify; bench/scale.py measured them at a million
#: faces (docs/postgres.md, "Identify at a million faces")
ANN_EF_SEARCH = 400
ANN_CANDIDATES = 128

#: VACUUM (FULL, VERBOSE)'s count of the dead rows an older snapshot kept it from dropping
_KEPT = re.compile(r"(\d+) dead row versions cannot be removed yet")

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
    "console_sessions",
    "usage",
    "job_files",
    "jobs",
    "tenants",
)


class _PgTables(PgDatabase, Tables):  # type: ignore[misc]
    """The shared table classes' lookups on a PostgreSQL connection (PgDatabase's plumbing wins)."""


class PostgresStore(TenantTables, CollectionTables, FaceTables, _PgTables):  # type: ignore[misc]
    """A `Store` in a PostgreSQL database with pgvector and pg_trgm (created by the first migration)."""

    #: how long an erasure's rewrite waits for older snapshots of other sessions to end (as SQLite's checkpoint)
    rewrite_patience_s = 5.0

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
        return self._rewrite(ERASURE_TABLES) if self.erasure_vacuum == "full" else self.vacuum(ERASURE_TABLES)

    def _rewrite(self, tables: Sequence[str]) -> bool:
        """VACUUM (FULL) the tables, and again those whose erased rows an older snapshot of another session (a
        long query, pg_dump, autovacuum's ANALYZE) could still see: the rewrite copies such rows into the new
        file, and VERBOSE says how many. Waits at most `rewrite_patience_s`; False if a table still kept some."""
        kept_rows: list[int] = []

        def note(diagnostic: Any) -> None:
            found = _KEPT.search(diagnostic.message_detail or "")
            kept_rows.append(int(found[1]) if found else 0)

        deadline = time.monotonic() + self.rewrite_patience_s
        while True:
            kept = []
            with self._lock:
                self._raw.add_notice_handler(note)
                try:
                    for table in tables:
                        kept_rows.clear()
                        self._raw.execute(f"VACUUM (FULL, VERBOSE) {table}")
                        kept += [table] if any(kept_rows) else []
                except Exception:
                    return False
                finally:
                    self._raw.remove_notice_handler(note)
            if not kept or time.monotonic() >= deadline:
                return not kept
            tables = kept
            time.sleep(0.1)

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

    def face_count(self, tenant_id: str) -> int:
        """How many faces the tenant holds (kept in ``face_state`` by the writing statements, m009): what the
        gallery reads to choose between its exact matrix and the HNSW index (``pg_ann_min_faces``)."""
        rows = self._rows("SELECT faces FROM face_state WHERE tenant_id = ?", (tenant_id,))
        return int(rows[0][0]) if rows else 0

    def nearest_faces(
        self,
        tenant_id: str,
        model: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        enrolled_only: bool = False,
        collection_id: str | None = None,
        ef_search: int = ANN_EF_SEARCH,
    ) -> list[tuple[str, float]]:
        """(face id, cosine similarity) of the ``k`` nearest faces by the HNSW index, the tenant and filters in
        the same query, re-ranked exactly on the stored float32 bytes. Approximate: bench/scale.py measures its
        recall against exact search."""
        rows, scores = self._nearest(tenant_id, model, vector, k, enrolled_only, collection_id, ef_search)
        return [(row[0], float(score)) for row, score in zip(rows, scores, strict=True)]

    def nearest_persons(
        self,
        tenant_id: str,
        model: str,
        vector: npt.ArrayLike,
        *,
        collection_id: str,
        limit: int,
        candidates: int = ANN_CANDIDATES,
        ef_search: int = ANN_EF_SEARCH,
    ) -> list[tuple[str, float]]:
        """The ``limit`` best enrolled persons of a collection for a face, best first, each scored by their best
        enrolled face (as `VectorIndex.person_scores`): the nearest ``candidates`` faces by the HNSW index,
        re-ranked exactly, then grouped by person. bench/scale.py and tests/test_postgres_ann.py check that the
        decisions equal the exact index's."""
        wanted = max(candidates, 32 * limit)  # as the exact shortlist: enough faces to name ``limit`` persons
        while True:
            rows, scores = self._nearest(
                tenant_id, model, vector, wanted, True, collection_id, max(ef_search, wanted), "person_id"
            )
            best: dict[str, float] = {}
            for row, score in zip(rows, scores, strict=True):  # best first: a person's first face is their best
                if row[2] not in best:
                    best[row[2]] = float(score)
                    if len(best) == limit:
                        return list(best.items())
            if len(rows) < wanted:  # every enrolled face of the collection was read
                return list(best.items())
            wanted *= 4  # a few persons with many faces filled the shortlist: widen it, as the exact index does

    def _nearest(
        self,
        tenant_id: str,
        model: str,
        vector: npt.ArrayLike,
        k: int,
        enrolled_only: bool,
        collection_id: str | None,
        ef_search: int,
        extra: str = "",
    ) -> tuple[list[Any], npt.NDArray[np.float32]]:
        """The ``k`` nearest faces' rows (id, embedding, ``extra`` columns) and exact similarities, best first.

        The graph walk keeps going past the filters (iterative scan). When it still comes back with fewer than
        ``k`` rows (a filter that keeps few of the faces near the probe, or fewer than ``k`` faces), the same
        query runs again without the graph, exactly: slower, never short of an answer."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if not query.size:
            raise InvalidRequestError("a face vector must not be empty")
        # the graph covers 128-d vectors (HNSW_DIM); another size is searched exactly, never by the graph
        where = ["tenant_id = %s", "model = %s", f"vector_dims(vec) = {query.size}"]
        params: list[Any] = [tenant_id, model]
        if enrolled_only:
            where.append("enrolled = 1")
        if collection_id is not None:
            where.append("collection_id = %s")
            params.append(collection_id)
        columns = "id, embedding" + (f", {extra}" if extra else "")
        cast = f"::vector({HNSW_DIM})" if query.size == HNSW_DIM else "::vector"
        sql = f"SELECT {columns} FROM faces WHERE {' AND '.join(where)} ORDER BY vec{cast} <=> %s{cast} LIMIT %s"
        text = "[" + ",".join(repr(float(x)) for x in query) + "]"
        with self._lock, self._raw.transaction():
            self._raw.execute(f"SET LOCAL hnsw.ef_search = {min(1000, int(ef_search))}")
            # iterative scans keep walking the graph until enough rows pass the filters
            self._raw.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = self._raw.execute(sql, (*params, text, int(k))).fetchall()
            if len(rows) < k and query.size == HNSW_DIM:
                self._raw.execute("SET LOCAL enable_indexscan = off")
                rows = self._raw.execute(sql, (*params, text, int(k))).fetchall()
        if not rows:
            return [], np.zeros(0, np.float32)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        scores = matrix.astype(np.float32) @ query
        order = np.argsort(-scores, kind="stable")
        return [rows[i] for i in order], scores[order]

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
            [e.billable for e in entries],
        )
        # One row per (tenant, day, feature) first: an upsert may not touch one row twice in a statement.
        with self._write() as conn:
            conn.execute(
                "INSERT INTO usage (tenant_id, day, feature, cpu_seconds, usd, count, units)"
                " SELECT e.tenant_id, e.day, e.feature, SUM(e.cpu_seconds), SUM(e.usd), SUM(e.count), SUM(e.units)"
                " FROM unnest(?::text[], ?::text[], ?::text[], ?::float8[], ?::float8[], ?::bigint[], ?::bigint[])"
                " AS e(tenant_id, day, feature, cpu_seconds, usd, count, units)"
                " WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id)"
                " GROUP BY e.tenant_id, e.day, e.feature"
                " ON CONFLICT (tenant_id, day, feature) DO UPDATE SET"
                " cpu_seconds = usage.cpu_seconds + excluded.cpu_seconds, usd = usage.usd + excluded.usd,"
                " count = usage.count + excluded.count, units = usage.units + excluded.units",
                columns,
            )
            kept = conn.execute(
                "SELECT COUNT(*) FROM unnest(?::text[]) AS e(tenant_id)"
                " WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id)",
                (columns[0],),
            ).fetchone()[0]
        return int(kept)

    def daily(self, tenant_id: str, since: str, until: str) -> list[UsageEntry]:
        return [daily_entry(tenant_id, r) for r in self._rows(DAILY, (tenant_id, since, until))]


_COUNTED = ("tenants", "api_keys", "collections", "persons", "faces", "face_embeddings", "corrections")


def _counts(db: PgDatabase) -> dict[str, int]:
    return {table: int(db._rows(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in _COUNTED}
