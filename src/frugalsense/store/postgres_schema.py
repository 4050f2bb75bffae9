"""The PostgreSQL schema: its migrations, mirrored by name from SQLite's (store/migrations.py), the pgvector
columns' HNSW indexes and the SQL function and triggers that fill those columns from the float32 bytes.

Plain data and string builders: `postgres_db.apply_pg_migrations` applies them.
"""

from __future__ import annotations

from frugalsense.store import postgres_rls as rls

__all__ = ["F32_TO_VECTOR", "HNSW_DIM", "HNSW_OPTIONS", "MIGRATIONS", "VECTOR_INDEXES", "hnsw_index"]

#: the face and search vector dimension the HNSW indexes cover (SFace, dlib and the shipped text encoder)
HNSW_DIM = 128

# float32 little-endian bytes -> pgvector, in SQL so the triggers filling `vec` can call it (exact: every float32
# is a float8, and the product of mantissa and power of two is exact in float8).
F32_TO_VECTOR = r"""
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


#: graph options per HNSW index (pgvector's defaults, m = 16 and ef_construction = 64, elsewhere): identify needs
#: recall@10 >= 0.99 at a million faces, which the default graph cannot give at any search width (m009)
HNSW_OPTIONS = {"faces_vec": "m = 32, ef_construction = 128"}


def hnsw_index(name: str) -> str:
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
            F32_TO_VECTOR,
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
            hnsw_index("faces_vec"),
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
            hnsw_index("item_vectors_vec"),
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
            hnsw_index("face_embeddings_vec"),
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
            hnsw_index("faces_vec"),
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
        [sql for table, column in rls.M010_TABLES.items() for sql in rls.row_security(table, column)],
    ),
    # the batch-job journal (store/jobs.py), under the tenant policy from the start
    (
        "m011_batch_jobs",
        [
            """CREATE TABLE jobs (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ('index', 'analyze')),
                spec TEXT NOT NULL, spec_key TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped')),
                started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
                attempts INTEGER NOT NULL DEFAULT 1, report TEXT, rowid BIGSERIAL UNIQUE,
                UNIQUE (tenant_id, id))""",
            "CREATE INDEX jobs_started ON jobs(tenant_id, started_at)",
            "CREATE INDEX jobs_spec ON jobs(tenant_id, spec_key)",
            """CREATE TABLE job_files (
                job_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                source TEXT NOT NULL, sha256 TEXT, status TEXT NOT NULL, item_id TEXT,
                cpu_s DOUBLE PRECISION NOT NULL DEFAULT 0, usd DOUBLE PRECISION NOT NULL DEFAULT 0,
                pictures BIGINT NOT NULL DEFAULT 0, features TEXT, error TEXT, done_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (job_id, source),
                FOREIGN KEY (tenant_id, job_id) REFERENCES jobs(tenant_id, id) ON DELETE CASCADE)""",
            "CREATE INDEX job_files_failed ON job_files(job_id, done_at, source) WHERE status = 'failed'",
            *rls.row_security("jobs"),
            *rls.row_security("job_files"),
        ],
    ),
]
