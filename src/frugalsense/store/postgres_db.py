"""PostgreSQL plumbing: one psycopg connection behind a lock, the schema's migrations, and the statement adapter
that lets the table classes shared with SQLite (`_tenants.py`, `_collections.py`, `erasure.py`) run unchanged.

psycopg is imported here, when a ``postgresql://`` store is opened, never by the embedded default.

The shared table classes write portable SQL with ``?`` placeholders and read rows by name or position. `PgConn`
turns ``?`` into psycopg's ``%s`` (a literal ``%`` is doubled first) and ``INSERT OR IGNORE`` into ``ON CONFLICT
DO NOTHING``; its rows are tuples that also answer to column names, as ``sqlite3.Row`` does. Every table has a
``rowid`` (``bigserial``, the last column) so the shared ``ORDER BY rowid`` keeps insertion order.

Embeddings are stored twice in one row: the exact little-endian float32 bytes (``embedding``/``vector``, read
back bit for bit, as in SQLite) and a pgvector column ``vec``, which the HNSW indexes cover. A trigger fills
``vec`` from the bytes when a writer leaves it out (the shared table classes, one row at a time); a bulk write
(`PgConn.executemany` of many rows) becomes one binary ``COPY`` that sends ``vec`` converted here, from the same
bytes, because the conversion in SQL costs about a millisecond a row.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from frugalsense.errors import ConfigurationError
from frugalsense.store import postgres_rls as rls
from frugalsense.store.postgres_schema import (
    HNSW_DIM,
    HNSW_OPTIONS,
    MIGRATIONS,
    VECTOR_INDEXES,
    hnsw_index,
)
from frugalsense.store.validation import Limits

__all__ = [
    "COPY_ROWS",
    "HNSW_DIM",
    "HNSW_OPTIONS",
    "MIGRATIONS",
    "VECTOR_INDEXES",
    "PgConn",
    "PgDatabase",
    "apply_pg_migrations",
    "connect",
    "create_vector_indexes",
    "is_postgres_url",
]

#: an executemany of at least this many rows is sent as one COPY
COPY_ROWS = 64


_MIGRATION_LOCK = 7_301_113  # pg_advisory_xact_lock key: two processes opening a new database migrate it once


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def connect(url: str, *, tenant: str | None = None) -> Any:
    """An autocommit psycopg connection (transactions are begun explicitly), with rows `PgConn` understands;
    ``tenant`` sets its row-level security scope for its whole life (``ALL_TENANTS`` for maintenance)."""
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "a postgresql:// database needs the PostgreSQL driver: pip install 'frugalsense[postgres]'"
        ) from exc
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot reach the database: {exc}; check FRUGALSENSE_DATABASE_URL") from exc
    if tenant is not None:
        conn.execute("SELECT set_config(%s, %s, false)", (rls.TENANT_SETTING, tenant))
    return conn


class Row(tuple[Any, ...]):
    """A result row read by position or by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or [])}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names = names
        return row

    return make


_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)


def _translate(sql: str) -> str:
    sql = sql.replace("%", "%%").replace("?", "%s")
    if _IGNORE.match(sql):
        sql = _IGNORE.sub("INSERT INTO", sql) + " ON CONFLICT DO NOTHING"
    return sql


class PgConn:
    """The part of ``sqlite3.Connection`` the shared table classes use, on a psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(_translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cursor = self.raw.cursor()
        rows = list(rows)
        plain = _PLAIN_INSERT.match(sql)
        if plain is not None and len(rows) >= COPY_ROWS:
            self.copy_rows(plain["table"], [c.strip() for c in plain["columns"].split(",")], rows)
        elif rows:
            cursor.executemany(_translate(sql), rows)
        return cursor

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Write rows with one binary COPY (inside the caller's transaction, if any): the fast way to load many.
        A table with a ``vec`` column gets it made here from the row's float32 bytes."""
        source = next((c for t, c in VECTOR_INDEXES.values() if t == table), None)
        columns = list(columns)
        at = columns.index(source) if source is not None and "vec" not in columns else -1
        types = self._types(table)
        names = [*columns, "vec"] if at >= 0 else columns
        # COPY's binary fields are read by each column's own input function; pgvector's binary form travels as
        # bytes (the bytea dumper sends them untouched).
        wire = [("bytea" if types[c] == "vector" else types[c]) for c in names]
        listed = ", ".join(names)
        # COPY refuses a table whose row-level security applies to this session: then the rows go through a
        # temporary twin and one INSERT ... SELECT, which the tenant policy checks like any insert.
        guarded = bool(self.raw.execute("SELECT row_security_active(%s::regclass)", (table,)).fetchone()[0])
        with self.raw.transaction() if guarded else nullcontext():
            target = f"fs_copy_{table}" if guarded else table
            if guarded:
                self.raw.execute(f"CREATE TEMP TABLE {target} AS SELECT {listed} FROM {table} WITH NO DATA")
            with self.raw.cursor().copy(f"COPY {target} ({listed}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(wire)
                for row in rows:
                    copy.write_row((*row, pgvector_bytes(row[at])) if at >= 0 else row)
            if guarded:
                self.raw.execute(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {target}")
                self.raw.execute(f"DROP TABLE {target}")

    def _types(self, table: str) -> dict[str, str]:
        cached = _COLUMN_TYPES.get(table)
        if cached is None:
            found = self.raw.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table,),
            ).fetchall()
            cached = _COLUMN_TYPES[table] = {r[0]: r[1] for r in found}
        return cached


_PLAIN_INSERT = re.compile(
    r"^\s*INSERT INTO (?P<table>\w+) \((?P<columns>[\w\s,]+)\)\s*VALUES \(\s*\?(\s*,\s*\?)*\s*\)\s*$",
    re.IGNORECASE,
)
# the schema is the same in every database this process opens (one list of migrations)
_COLUMN_TYPES: dict[str, dict[str, str]] = {}


def pgvector_bytes(blob: bytes) -> bytes:
    """Little-endian float32 bytes in pgvector's binary form: dimension, a zero, big-endian float32s."""
    values = np.frombuffer(blob, dtype="<f4")
    return struct.pack(">HH", values.size, 0) + values.astype(">f4").tobytes()


def apply_pg_migrations(conn: Any) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction (under an advisory lock, so two
    processes opening one new database do not both migrate it); returns the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied: list[str] = []
    for name, statements in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            # every tenant's rows, past row-level security
            conn.execute("SELECT set_config(%s, %s, true)", (rls.TENANT_SETTING, rls.ALL_TENANTS))
            if conn.execute("SELECT 1 FROM migrations WHERE name = %s", (name,)).fetchone() is not None:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (%s, to_char(now() AT TIME ZONE 'UTC',"
                ' \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\'))',
                (name,),
            )
            applied.append(name)
    return applied


def create_vector_indexes(conn: Any, work_mem: str = "1GB") -> None:
    """Create the HNSW indexes that are missing, with ``maintenance_work_mem`` raised for the builds."""
    conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (work_mem,))
    try:
        for name in VECTOR_INDEXES:
            conn.execute(hnsw_index(name))
    finally:
        conn.execute("RESET maintenance_work_mem")


class PgDatabase:
    """One connection to a PostgreSQL database, migrated on open. Thread-safe: one connection behind a lock, as
    in SQLite's `Database`, so each call is short and each write one transaction."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # each public method acts for the tenant it is given (store/postgres_rls.py)
        rls.scope_methods(cls, rls.NO_ROWS)

    def __init__(self, url: str, *, limits: Limits | None = None) -> None:
        self.path = url  # where the data is, as `Database.path` says it for a file
        self.limits = limits or Limits()
        self._tenant: str | None = None  # what the session's `frugalsense.tenant` says now
        self._lock = rls.TenantLock(self._set_tenant)
        self._raw = connect(url)
        self._conn = PgConn(self._raw)
        with self._lock:
            self.migrated = apply_pg_migrations(self._raw)

    def close(self) -> None:
        with self._lock:
            self._raw.close()

    def _set_tenant(self, scope: str, nested: bool) -> None:
        """Make the session's tenant setting say ``scope``, when the connection's lock is taken."""
        if scope == self._tenant or self._raw.closed:
            return
        if nested:
            raise RuntimeError(f"a store call for {scope or 'no tenant'!r} inside one for {self._tenant!r}")
        self._raw.execute("SELECT set_config(%s, %s, false)", (rls.TENANT_SETTING, scope))
        self._tenant = scope

    @contextmanager
    def _write(self) -> Iterator[PgConn]:
        """One write transaction, committed (synchronous_commit: flushed to the WAL) before the method returns."""
        with self._lock:
            self._raw.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._raw.execute("ROLLBACK")
                raise
            self._raw.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    @contextmanager
    def bulk_load(self, *, work_mem: str = "1GB") -> Iterator[None]:
        """Load many rows with the HNSW indexes dropped, then build them once (far faster than updating the graph
        row by row). Maintenance: meanwhile every server's vector queries scan exactly (right, but slower), and
        the indexes are built again even when the load fails.

            with store.bulk_load():
                store.add_faces(tenant_id, faces)
        """
        with self._lock:
            for name in VECTOR_INDEXES:
                self._raw.execute(f"DROP INDEX IF EXISTS {name}")
        try:
            yield
        finally:
            self.build_vector_indexes(work_mem=work_mem)

    def build_vector_indexes(self, *, work_mem: str = "1GB") -> None:
        """Create the HNSW indexes that are missing, with ``maintenance_work_mem`` raised so the graph is built
        in memory (a build that spills is many times slower), then ANALYZE: without fresh statistics after a
        load the planner takes a tenant's rows from a b-tree and sorts them all (measured: 27 ms instead of 1 ms
        at 20,000 faces, 170 ms at 100,000)."""
        with self._lock:
            create_vector_indexes(self._raw, work_mem)
            self._raw.execute("ANALYZE")

    def vacuum(self, tables: Sequence[str], *, full: bool = False) -> bool:
        """VACUUM the tables an erasure touched; False if the database refused. Plain VACUUM prunes dead rows
        but leaves their bytes in the freed page space; FULL rewrites each table and its indexes into new files
        and drops the old ones, so no table file holds an erased row (docs/postgres.md)."""
        command = "VACUUM (FULL)" if full else "VACUUM"
        with self._lock:
            try:
                for table in tables:
                    self._raw.execute(f"{command} {table}")
            except Exception:
                return False
        return True
