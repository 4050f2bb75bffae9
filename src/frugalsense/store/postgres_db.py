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

#: the face and search vector dimension the HNSW indexes cover (SFace, dlib and the shipped text encoder)
HNSW_DIM = 128

# float32 little-endian bytes -> pgvector, in SQL so the triggers filling `vec` can call it (exact: every float32
# is a float8, and the product of mantissa and power of two is exact in float8).
_F32_TO_VECTOR = r"""
CREATE OR REPLACE FUNCTION fs_f32le(b bytea) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_agg(
      (CASE WHEN e = 0 THEN m * 2.0::float8 ^ -149 ELSE (1 + m * 2.0::float8 ^ -23) * 2.0::float8 ^ (e - 127) END)
      * (CASE WHEN s = 1 THEN -1 ELSE 1 END) ORDER BY i)::real[]::vector
  FROM (
    SELECT i, (bits >> 31) & 1 AS s, (bits >> 23) & 255 AS e, bits & 8388607 AS m
    FROM (
      SELECT i, get_byte(b, 4 * i)::bigint | (get_byte(b, 4 * i + 1)::bigint << 8)
             | (get_byte(b, 4 * i + 2)::bigint << 16) | (get_byte(b, 4 * i + 3)::bigint << 24) AS bits
      FROM generate_series(0, length(b) / 4 - 1) AS i
    ) AS words
  ) AS parts
$$"""


#: HNSW index -> (its table, the column holding the float32 bytes its ``vec`` is made from)
VECTOR_INDEXES = {
    "faces_vec": ("faces", "embedding"),
    "face_embeddings_vec": ("face_embeddings", "vector"),
    "item_vectors_vec": ("item_vectors", "vector"),
}
#: an executemany of at least this many rows is sent as one COPY
COPY_ROWS = 64


#: graph options per HNSW index (pgvector's defaults, m = 16 and ef_construction = 64, elsewhere): identify needs
#: recall@10 >= 0.99 at a million faces, which the default graph cannot give at any search width (m009)
HNSW_OPTIONS = {"faces_vec": "m = 32, ef_construction = 128"}


def _hnsw(name: str) -> str:
    table = VECTOR_INDEXES[name][0]
    options = f" WITH ({HNSW_OPTIONS[name]})" if name in HNSW_OPTIONS else ""
    return (
        f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw ((vec::vector({HNSW_DIM})) vector_cosine_ops)"
        f"{options} WHERE vector_dims(vec) = {HNSW_DIM}"
    )


def _fill_vec(name: str) -> list[str]:
    """A trigger that makes ``vec`` from the bytes when a write left it out or changed the bytes."""
    table, column = VECTOR_INDEXES[name]
    return [
        f"""CREATE FUNCTION fs_fill_{table}_vec() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.vec IS NULL OR (TG_OP = 'UPDATE' AND NEW.{column} IS DISTINCT FROM OLD.{column}) THEN
                NEW.vec := fs_f32le(NEW.{column});
            END IF;
            RETURN NEW;
        END $$""",
        f"CREATE TRIGGER {table}_fill_vec BEFORE INSERT OR UPDATE OF {column}, vec ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION fs_fill_{table}_vec()",
    ]


#: (name, statements): the same names, in the same order, as the SQLite migrations (store/migrations.py)
MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "m001_initial",
        [
            "CREATE EXTENSION IF NOT EXISTS vector",
            _F32_TO_VECTOR,
            "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,"
            " rowid BIGSERIAL UNIQUE)",
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                name TEXT NOT NULL, prefix TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
                created_at TEXT NOT NULL, revoked_at TEXT, rowid BIGSERIAL UNIQUE)""",
            "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",
            """CREATE TABLE collections (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                name TEXT NOT NULL, created_at TEXT NOT NULL, rowid BIGSERIAL UNIQUE,
                UNIQUE (tenant_id, name), UNIQUE (tenant_id, id))""",
            """CREATE TABLE persons (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                collection_id TEXT NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL, rowid BIGSERIAL UNIQUE,
                UNIQUE (tenant_id, id),
                FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX persons_collection ON persons(tenant_id, collection_id)",
            """CREATE TABLE faces (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                collection_id TEXT, person_id TEXT,
                enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled IN (0, 1)),
                source_sha256 TEXT NOT NULL, source_name TEXT NOT NULL, box TEXT NOT NULL, landmarks TEXT NOT NULL,
                det_score DOUBLE PRECISION NOT NULL, embedding BYTEA NOT NULL, model TEXT NOT NULL,
                crop_path TEXT, cluster_id TEXT, created_at TEXT NOT NULL, rowid BIGSERIAL UNIQUE,
                vec vector NOT NULL,
                UNIQUE (tenant_id, id),
                CHECK (enrolled = 0 OR person_id IS NOT NULL),
                FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, person_id) REFERENCES persons(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX faces_tenant_model ON faces(tenant_id, model)",
            "CREATE INDEX faces_person ON faces(tenant_id, person_id)",
            "CREATE INDEX faces_collection ON faces(tenant_id, collection_id)",
            "CREATE INDEX faces_cluster ON faces(tenant_id, cluster_id)",
            *_fill_vec("faces_vec"),
            _hnsw("faces_vec"),
            """CREATE TABLE corrections (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                face_id TEXT NOT NULL, person_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('is', 'is_not')),
                created_at TEXT NOT NULL, rowid BIGSERIAL UNIQUE,
                FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, person_id) REFERENCES persons(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX corrections_face ON corrections(tenant_id, face_id)",
            "CREATE INDEX corrections_person ON corrections(tenant_id, person_id)",
        ],
    ),
    (
        "m002_search_items",
        [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            """CREATE TABLE items (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                source TEXT NOT NULL, sha256 TEXT NOT NULL,
                modality TEXT NOT NULL CHECK (modality IN ('image', 'document', 'audio', 'video')),
                mime TEXT NOT NULL, byte_size BIGINT NOT NULL, pages INTEGER NOT NULL,
                duration_s DOUBLE PRECISION, captured_at TEXT NOT NULL, indexed_at TEXT NOT NULL,
                nsfw DOUBLE PRECISION, flagged INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
                phash BIGINT, encoder TEXT NOT NULL, result TEXT NOT NULL, rowid BIGSERIAL UNIQUE,
                UNIQUE (tenant_id, source), UNIQUE (tenant_id, id))""",
            "CREATE INDEX items_sha ON items(tenant_id, sha256)",
            "CREATE INDEX items_captured ON items(tenant_id, captured_at)",
            "CREATE INDEX items_modality ON items(tenant_id, modality)",
            """CREATE TABLE item_labels (
                tenant_id TEXT NOT NULL, item_id TEXT NOT NULL, name TEXT NOT NULL,
                score DOUBLE PRECISION NOT NULL, rowid BIGSERIAL UNIQUE,
                PRIMARY KEY (item_id, name),
                FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX item_labels_name ON item_labels(tenant_id, lower(name))",
            """CREATE TABLE item_faces (
                tenant_id TEXT NOT NULL, item_id TEXT NOT NULL, face_id TEXT NOT NULL, page INTEGER NOT NULL,
                rowid BIGSERIAL UNIQUE,
                PRIMARY KEY (item_id, face_id),
                FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX item_faces_face ON item_faces(tenant_id, face_id)",
            """CREATE TABLE item_vectors (
                row BIGSERIAL PRIMARY KEY,
                tenant_id TEXT NOT NULL, item_id TEXT NOT NULL, encoder TEXT NOT NULL, part TEXT NOT NULL,
                vector BYTEA NOT NULL,
                vec vector NOT NULL,
                FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX item_vectors_item ON item_vectors(tenant_id, item_id)",
            "CREATE INDEX item_vectors_encoder ON item_vectors(tenant_id, encoder)",
            *_fill_vec("item_vectors_vec"),
            _hnsw("item_vectors_vec"),
            """CREATE TABLE search_state (
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                encoder TEXT NOT NULL, version BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, encoder))""",
            # The full text of an item: words ('simple': no stemming, as SQLite's unicode61) weighted A for text
            # read and speech, B for labels; `grams` is the text without spaces, for words inside OCR runs.
            """CREATE TABLE item_text (
                rowid BIGINT PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE,
                tenant_id TEXT NOT NULL, text TEXT NOT NULL, transcript TEXT NOT NULL, labels TEXT NOT NULL,
                grams TEXT NOT NULL,
                words tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('simple', text), 'A')
                    || setweight(to_tsvector('simple', transcript), 'A')
                    || setweight(to_tsvector('simple', labels), 'B')) STORED)""",
            "CREATE INDEX item_text_words ON item_text USING gin (words)",
            "CREATE INDEX item_text_tenant ON item_text(tenant_id)",
            "CREATE INDEX item_text_grams ON item_text USING gin (grams gin_trgm_ops)",
            """CREATE FUNCTION fs_vectors_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE search_state SET version = version + 1
                WHERE tenant_id = OLD.tenant_id AND encoder = OLD.encoder;
                RETURN NULL;
            END $$""",
            "CREATE TRIGGER item_vectors_version AFTER DELETE ON item_vectors"
            " FOR EACH ROW EXECUTE FUNCTION fs_vectors_version()",
        ],
    ),
    (
        "m003_face_embeddings",
        [
            """CREATE TABLE face_embeddings (
                tenant_id TEXT NOT NULL, face_id TEXT NOT NULL, model TEXT NOT NULL, vector BYTEA NOT NULL,
                rowid BIGSERIAL UNIQUE,
                vec vector NOT NULL,
                PRIMARY KEY (tenant_id, face_id, model),
                FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE)""",
            *_fill_vec("face_embeddings_vec"),
            _hnsw("face_embeddings_vec"),
        ],
    ),
    (
        "m004_erasure_and_face_versions",
        [
            "ALTER TABLE collections ADD COLUMN erasing INTEGER NOT NULL DEFAULT 0",
            "CREATE TABLE face_state (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,"
            " version BIGINT NOT NULL)",
            """CREATE TABLE item_refs (
                tenant_id TEXT NOT NULL, ref TEXT NOT NULL, item_id TEXT NOT NULL,
                PRIMARY KEY (tenant_id, ref, item_id),
                FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX item_refs_item ON item_refs(tenant_id, item_id)",
        ],
    ),
    (
        "m005_usage",
        [
            """CREATE TABLE usage (
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                day TEXT NOT NULL, feature TEXT NOT NULL, cpu_seconds DOUBLE PRECISION NOT NULL,
                usd DOUBLE PRECISION NOT NULL, count BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, day, feature))""",
        ],
    ),
    ("m006_picture_hash", ["UPDATE items SET phash = NULL WHERE phash IS NOT NULL"]),
    (
        "m007_console_search_indexes",
        [
            "CREATE INDEX items_modality_captured ON items(tenant_id, modality, captured_at)",
            "CREATE INDEX items_phash ON items(tenant_id, phash)",
            "DROP INDEX items_modality",
        ],
    ),
    (
        "m008_console_sessions",
        [
            """CREATE TABLE console_sessions (
                digest TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
                created DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL, rowid BIGSERIAL UNIQUE)""",
            "CREATE INDEX console_sessions_tenant ON console_sessions(tenant_id, created)",
            "CREATE INDEX console_sessions_key ON console_sessions(key_id)",
            "ALTER TABLE usage ADD COLUMN units BIGINT NOT NULL DEFAULT 0",
            "UPDATE usage SET units = count",
        ],
    ),
    # Identify through the faces' HNSW index (docs/postgres.md, "Identify at a million faces"): a denser graph
    # (HNSW_OPTIONS, rebuilt here: minutes per 100,000 faces on two cores), and each tenant's face count kept in
    # face_state by the writing statements, so choosing between the exact matrix and HNSW costs one row read.
    (
        "m009_face_hnsw",
        [
            "SET LOCAL maintenance_work_mem = '2GB'",  # the graph of a million faces is 1 GB on disk
            "DROP INDEX IF EXISTS faces_vec",
            _hnsw("faces_vec"),
            "ALTER TABLE face_state ADD COLUMN faces BIGINT NOT NULL DEFAULT 0",
            "UPDATE face_state s SET faces = (SELECT COUNT(*) FROM faces f WHERE f.tenant_id = s.tenant_id)",
            # A tenant's first face_state row counts what is there (its first faces, or a copied database's).
            """CREATE FUNCTION fs_face_state_count() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM face_state WHERE tenant_id = NEW.tenant_id) THEN
                    NEW.faces := (SELECT COUNT(*) FROM faces WHERE tenant_id = NEW.tenant_id);
                END IF;
                RETURN NEW;
            END $$""",
            "CREATE TRIGGER face_state_count BEFORE INSERT ON face_state"
            " FOR EACH ROW EXECUTE FUNCTION fs_face_state_count()",
            # Then each statement adds or takes away its rows, per tenant (one update per statement, not per row).
            """CREATE FUNCTION fs_count_faces() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE face_state s SET faces = s.faces + d.n FROM (SELECT tenant_id,
                    COUNT(*) * CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END AS n FROM changed GROUP BY tenant_id) d
                WHERE s.tenant_id = d.tenant_id;
                RETURN NULL;
            END $$""",
            "CREATE TRIGGER faces_counted_in AFTER INSERT ON faces REFERENCING NEW TABLE AS changed"
            " FOR EACH STATEMENT EXECUTE FUNCTION fs_count_faces()",
            "CREATE TRIGGER faces_counted_out AFTER DELETE ON faces REFERENCING OLD TABLE AS changed"
            " FOR EACH STATEMENT EXECUTE FUNCTION fs_count_faces()",
        ],
    ),
    # every table of tenant rows but the full text shows a session only its tenant's (store/postgres_rls.py)
    (
        "m010_row_level_security",
        [sql for table, column in rls.TENANT_TABLES.items() for sql in rls.row_security(table, column)],
    ),
]

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
            conn.execute(_hnsw(name))
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
