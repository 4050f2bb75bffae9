"""Schema migrations: plain functions, applied in order at open and recorded in the ``migrations`` table.

Add a migration by appending a function decorated with ``@migration``; never edit one that has shipped.

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> apply_migrations(conn)[0]
    'm001_initial'
    >>> apply_migrations(conn)
    []
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["MIGRATIONS", "applied_migrations", "apply_migrations", "migration"]

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; they run in the order they are declared."""
    MIGRATIONS.append(fn)
    return fn


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; returns the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the transactions here are the only ones.
    """
    done = set(applied_migrations(conn))
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        # IMMEDIATE takes the write lock first, so two processes opening a new file do not both migrate it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (fn.__name__,)).fetchone() is None:
                fn(conn)
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (fn.__name__, datetime.now(UTC).isoformat(timespec="seconds")),
                )
                applied.append(fn.__name__)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    # Child tables reference (tenant_id, id) pairs rather than bare ids, so the database itself refuses a row
    # that points at another tenant's collection, person or face.
    statements = [
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL UNIQUE,
            key_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",
        """CREATE TABLE collections (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, name),
            UNIQUE (tenant_id, id)
        )""",
        """CREATE TABLE persons (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            collection_id TEXT NOT NULL,
            name TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, id),
            FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX persons_collection ON persons(tenant_id, collection_id)",
        """CREATE TABLE faces (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            collection_id TEXT,
            person_id TEXT,
            enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled IN (0, 1)),
            source_sha256 TEXT NOT NULL,
            source_name TEXT NOT NULL,
            box TEXT NOT NULL,
            landmarks TEXT NOT NULL,
            det_score REAL NOT NULL,
            embedding BLOB NOT NULL,
            model TEXT NOT NULL,
            crop_path TEXT,
            cluster_id TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, id),
            CHECK (enrolled = 0 OR person_id IS NOT NULL),
            FOREIGN KEY (tenant_id, collection_id) REFERENCES collections(tenant_id, id) ON DELETE CASCADE,
            FOREIGN KEY (tenant_id, person_id) REFERENCES persons(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX faces_tenant_model ON faces(tenant_id, model)",
        "CREATE INDEX faces_person ON faces(tenant_id, person_id)",
        "CREATE INDEX faces_collection ON faces(tenant_id, collection_id)",
        "CREATE INDEX faces_cluster ON faces(tenant_id, cluster_id)",
        """CREATE TABLE corrections (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            face_id TEXT NOT NULL,
            person_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('is', 'is_not')),
            created_at TEXT NOT NULL,
            FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE,
            FOREIGN KEY (tenant_id, person_id) REFERENCES persons(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX corrections_face ON corrections(tenant_id, face_id)",
        "CREATE INDEX corrections_person ON corrections(tenant_id, person_id)",
    ]
    for statement in statements:
        conn.execute(statement)


@migration
def m002_search_items(conn: sqlite3.Connection) -> None:
    # The search index (frugalsense.search): one row per indexed file or upload, what was found in it, its
    # semantic vectors and a full-text table. Faces stay in `faces`; `item_faces` links them, and its foreign key
    # drops the link when a person or face is erased through the gallery.
    statements = [
        """CREATE TABLE items (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            modality TEXT NOT NULL CHECK (modality IN ('image', 'document', 'audio', 'video')),
            mime TEXT NOT NULL,
            byte_size INTEGER NOT NULL,
            pages INTEGER NOT NULL,
            duration_s REAL,
            captured_at TEXT NOT NULL,
            indexed_at TEXT NOT NULL,
            nsfw REAL,
            flagged INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
            phash INTEGER,
            encoder TEXT NOT NULL,
            result TEXT NOT NULL,
            UNIQUE (tenant_id, source),
            UNIQUE (tenant_id, id)
        )""",
        "CREATE INDEX items_sha ON items(tenant_id, sha256)",
        "CREATE INDEX items_captured ON items(tenant_id, captured_at)",
        "CREATE INDEX items_modality ON items(tenant_id, modality)",
        """CREATE TABLE item_labels (
            tenant_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            name TEXT NOT NULL,
            score REAL NOT NULL,
            PRIMARY KEY (item_id, name),
            FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX item_labels_name ON item_labels(tenant_id, name)",
        """CREATE TABLE item_faces (
            tenant_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            face_id TEXT NOT NULL,
            page INTEGER NOT NULL,
            PRIMARY KEY (item_id, face_id),
            FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE,
            FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX item_faces_face ON item_faces(tenant_id, face_id)",
        """CREATE TABLE item_vectors (
            row INTEGER PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            encoder TEXT NOT NULL,
            part TEXT NOT NULL,
            vector BLOB NOT NULL,
            FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE
        )""",
        "CREATE INDEX item_vectors_item ON item_vectors(tenant_id, item_id)",
        "CREATE INDEX item_vectors_encoder ON item_vectors(tenant_id, encoder)",
        # Bumped by every change to a tenant's vectors: the vector file and in-memory copies compare against it.
        """CREATE TABLE search_state (
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            encoder TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, encoder)
        )""",
        # rowid = items.rowid; the tenant column is only read back, never searched on its own.
        """CREATE VIRTUAL TABLE item_text USING fts5(
            text, transcript, labels, tenant_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
        )""",
        # OCR often runs words together ("SOONHUATMACHINERY"): trigrams of the text without spaces let a query
        # word match inside such a run.
        """CREATE VIRTUAL TABLE item_grams USING fts5(text, tenant_id UNINDEXED, tokenize = 'trigram')""",
        # A cascade from a deleted tenant reaches items through its foreign key; the text follows by trigger.
        """CREATE TRIGGER items_text_cleanup AFTER DELETE ON items BEGIN
            DELETE FROM item_text WHERE rowid = old.rowid;
            DELETE FROM item_grams WHERE rowid = old.rowid;
        END""",
        """CREATE TRIGGER item_vectors_version AFTER DELETE ON item_vectors BEGIN
            UPDATE search_state SET version = version + 1
            WHERE tenant_id = old.tenant_id AND encoder = old.encoder;
        END""",
    ]
    for statement in statements:
        conn.execute(statement)


@migration
def m003_face_embeddings(conn: sqlite3.Connection) -> None:
    """Second embeddings of a face (dlib's, stored at enrolment) for the identification ladder to climb to."""
    conn.execute(
        """CREATE TABLE face_embeddings (
            tenant_id TEXT NOT NULL,
            face_id TEXT NOT NULL,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (tenant_id, face_id, model),
            FOREIGN KEY (tenant_id, face_id) REFERENCES faces(tenant_id, id) ON DELETE CASCADE
        )"""
    )


@migration
def m004_erasure_and_face_versions(conn: sqlite3.Connection) -> None:
    """Complete erasure and per-tenant face versions.

    ``collections.erasing`` hides a collection whose faces are being deleted in chunks (a crash part-way leaves
    it hidden and still deletable). ``face_state`` is bumped by every write to a tenant's faces or corrections,
    so a process reloads one tenant's face index only when that tenant's faces changed. ``item_refs`` records
    the person and face ids each item's stored result mentions, so erasing one finds the results to scrub.
    """
    from frugalsense.store.erasure import backfill_refs

    statements = [
        "ALTER TABLE collections ADD COLUMN erasing INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE face_state (
            tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            version INTEGER NOT NULL
        )""",
        """CREATE TABLE item_refs (
            tenant_id TEXT NOT NULL,
            ref TEXT NOT NULL,
            item_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, ref, item_id),
            FOREIGN KEY (tenant_id, item_id) REFERENCES items(tenant_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
        "CREATE INDEX item_refs_item ON item_refs(tenant_id, item_id)",
    ]
    for statement in statements:
        conn.execute(statement)
    backfill_refs(conn)


@migration
def m005_usage(conn: sqlite3.Connection) -> None:
    """The usage ledger (``frugalsense.store.usage``): each tenant's CPU-seconds, dollars and requests summed per
    day and feature, for ``GET /v1/usage`` and the console's Costs page."""
    conn.execute(
        """CREATE TABLE usage (
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            feature TEXT NOT NULL,
            cpu_seconds REAL NOT NULL,
            usd REAL NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, day, feature)
        ) WITHOUT ROWID"""
    )


@migration
def m006_picture_hash(conn: sqlite3.Connection) -> None:
    """Pictures are hashed with the result cache's 63-bit DCT hash (``frugalsense.media.phash``) instead of a
    difference hash. The old values can never match the new ones (at least 15 bits apart for the same photo), so
    they are cleared; indexing a file again, even an unchanged one, computes its new hash."""
    conn.execute("UPDATE items SET phash = NULL WHERE phash IS NOT NULL")


@migration
def m007_console_search_indexes(conn: sqlite3.Connection) -> None:
    """Indexes for the console's search screen at 100,000 items: a kind and date filter reads one range of
    (tenant, modality, captured_at), which also serves every use of the (tenant, modality) index it replaces;
    near-duplicate groups read every picture hash from (tenant, phash) instead of walking the items' rows."""
    conn.execute("CREATE INDEX items_modality_captured ON items(tenant_id, modality, captured_at)")
    conn.execute("CREATE INDEX items_phash ON items(tenant_id, phash)")
    conn.execute("DROP INDEX items_modality")


@migration
def m008_console_sessions(conn: sqlite3.Connection) -> None:
    """Console sessions in the database (``frugalsense.store.sessions``), so a restart keeps them and servers on
    one database share them: the SHA-256 of the session id, never the id; they go with their key and tenant.

    Also the usage ledger's billable units (``usage.units``): the pictures (pages, frames) each feature analysed,
    which a cloud bills one by one. Rows written before counted requests only, so their units are their count.
    """
    statements = [
        """CREATE TABLE console_sessions (
            digest TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            created REAL NOT NULL,
            seen REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX console_sessions_tenant ON console_sessions(tenant_id, created)",
        "CREATE INDEX console_sessions_key ON console_sessions(key_id)",
        "ALTER TABLE usage ADD COLUMN units INTEGER NOT NULL DEFAULT 0",
        "UPDATE usage SET units = count",
    ]
    for statement in statements:
        conn.execute(statement)


@migration
def m009_face_hnsw(conn: sqlite3.Connection) -> None:
    """Nothing on SQLite: PostgreSQL's denser faces HNSW graph and per-tenant face counts (store/postgres_db.py)
    serve identify through the index there; SQLite identifies with the exact matrix. Named so both backends list
    the same."""


@migration
def m010_row_level_security(conn: sqlite3.Connection) -> None:
    """Nothing on SQLite: PostgreSQL's row-level security policies (store/postgres_rls.py) have no SQLite
    counterpart; here the tenant filter of every statement is the wall. Named so both backends list the same."""


@migration
def m011_batch_jobs(conn: sqlite3.Connection) -> None:
    """The batch-job journal (``frugalsense.store.jobs``): a cluster job (``index --ray``, ``analyze --ray``)
    and one row per file it processed, so a stopped job resumes where it was and ``frugalsense jobs`` lists runs
    with their reports. Both go with their tenant; a job's files go with their job."""
    statements = [
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('index', 'analyze')),
            spec TEXT NOT NULL,
            spec_key TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped')),
            started_at REAL NOT NULL,
            finished_at REAL,
            attempts INTEGER NOT NULL DEFAULT 1,
            report TEXT,
            UNIQUE (tenant_id, id)
        )""",
        "CREATE INDEX jobs_started ON jobs(tenant_id, started_at)",
        "CREATE INDEX jobs_spec ON jobs(tenant_id, spec_key)",
        # (tenant_id, job_id) references the pair, so the database itself refuses a file row in another
        # tenant's job.
        """CREATE TABLE job_files (
            job_id TEXT NOT NULL,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            sha256 TEXT,
            status TEXT NOT NULL,
            item_id TEXT,
            cpu_s REAL NOT NULL DEFAULT 0,
            usd REAL NOT NULL DEFAULT 0,
            pictures INTEGER NOT NULL DEFAULT 0,
            features TEXT,
            error TEXT,
            done_at REAL NOT NULL,
            PRIMARY KEY (job_id, source),
            FOREIGN KEY (tenant_id, job_id) REFERENCES jobs(tenant_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
        # a job's failures without reading its million other rows
        "CREATE INDEX job_files_failed ON job_files(job_id, done_at, source) WHERE status = 'failed'",
    ]
    for statement in statements:
        conn.execute(statement)
