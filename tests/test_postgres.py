"""The PostgreSQL backend's own promises, on a real PostgreSQL 18 with pgvector (tests/_backends.py): migrations
named as SQLite's, ``frugalsense db migrate`` and ``db copy``, the HNSW index against exact search, and two
``frugalsense serve`` processes on one database answering the same right after a write on either."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _backends import PostgresServer, postgres_files
from _server import Server
from frugalsense.cli import main
from frugalsense.client import Client
from frugalsense.errors import NotFoundError
from frugalsense.results import Box
from frugalsense.store import NewFace, NewItem, SQLiteStore
from frugalsense.store.migrations import MIGRATIONS
from frugalsense.store.postgres import ERASURE_TABLES, PostgresStore
from frugalsense.store.postgres_db import COPY_ROWS, VECTOR_INDEXES, connect
from frugalsense.store.postgres_db import MIGRATIONS as PG_MIGRATIONS
from frugalsense.store.postgres_rls import all_tenants

pytestmark = pytest.mark.postgres


def _unit(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray[Any, np.dtype[np.float32]]:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _face(vector: np.ndarray[Any, np.dtype[np.float32]], **fields: Any) -> NewFace:
    return NewFace(vector, "sface", Box(1, 2, 3, 4), [(1.0, 2.0)] * 5, 0.9, "0" * 64, "a.jpg", **fields)


def test_the_backends_share_one_list_of_migrations() -> None:
    assert [name for name, _ in PG_MIGRATIONS] == [fn.__name__ for fn in MIGRATIONS]


def test_db_migrate_applies_once(postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]) -> None:
    postgres_server._execute("CREATE DATABASE fs_migrate_cli")
    url = postgres_server.url("fs_migrate_cli")
    assert main(["--database-url", url, "db", "migrate"]) == 0
    assert "m001_initial" in capsys.readouterr().out
    assert main(["--database-url", url, "db", "migrate"]) == 0
    assert "nothing (up to date)" in capsys.readouterr().out


def test_hnsw_finds_what_exact_search_finds(postgres_server: PostgresServer) -> None:
    """The approximate index against brute force on the same rows, with the tenant and a filter in the query."""
    rng = np.random.default_rng(7)
    with PostgresStore(postgres_server.fresh()) as store:
        tenant, other = store.create_tenant("a").id, store.create_tenant("b").id
        staff = store.create_collection(tenant, "staff").id
        vectors = _unit(rng, 3000)
        faces = store.add_faces(
            tenant, [_face(v, collection_id=staff if i % 2 else None) for i, v in enumerate(vectors)]
        )
        store.add_faces(other, [_face(v) for v in vectors[:50]])  # the other tenant's copies never come back
        ids = np.array([f.id for f in faces])
        in_staff = np.arange(len(ids)) % 2 == 1
        recalls = []
        for probe in _unit(rng, 20):
            exact = set(ids[in_staff][np.argsort(-(vectors[in_staff] @ probe))[:10]])
            found = store.nearest_faces(tenant, "sface", probe, 10, collection_id=staff)
            assert len(found) == 10 and all(sim <= 1.0 + 1e-5 for _, sim in found)
            assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
            recalls.append(len(exact & {f for f, _ in found}) / 10)
        assert np.mean(recalls) >= 0.95


def _sqlite_folder(folder: Path) -> dict[str, Any]:
    store = SQLiteStore(folder / "frugalsense.db")
    tenant = store.create_tenant("acme").id
    staff = store.create_collection(tenant, "staff").id
    ada = store.create_person(tenant, staff, "Ada", {"badge": 7}).id
    vectors = _unit(np.random.default_rng(3), 5)
    faces = store.add_faces(tenant, [_face(v, collection_id=staff, person_id=ada, enrolled=True) for v in vectors])
    store.add_face_embedding(tenant, faces[0].id, "dlib", vectors[0][::-1].copy())
    key = store.create_api_key(tenant, "ci").key
    search = store.search_store()
    item = NewItem(
        source="receipt.jpg",
        sha256="1" * 64,
        modality="image",
        mime="image/jpeg",
        byte_size=10,
        pages=1,
        duration_s=None,
        captured_at="2024-05-01T10:00:00",
        nsfw=0.0,
        flagged=False,
        phash=-(2**63) + 9,
        encoder="conse",
        result={"pages": [{"text": "Soon Huat Machinery"}]},
        text="SOONHUAT MACHINERY invoice",
        transcript="",
        labels={"receipt": 0.8},
        faces=[(faces[1].id, 1)],
        vectors=[("image", vectors[0])],
    )
    written = search.put_item(tenant, item)
    search.close()
    store.close()
    assert written.item is not None
    return {"tenant": tenant, "person": ada, "faces": faces, "key": key, "rowid": written.item.rowid}


def test_db_copy_moves_rows_and_embeddings_and_verifies(
    postgres_server: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = _sqlite_folder(tmp_path)
    url = postgres_server.fresh()
    assert main(["--data-dir", str(tmp_path), "db", "copy", "--to", url]) == 0
    assert "copy verified" in capsys.readouterr().out
    with PostgresStore(url) as store:
        tenant = made["tenant"]
        assert store.get_person(tenant, made["person"]).face_count == 5
        copied = store.face_vectors(tenant, "sface")
        assert copied.ids == [f.id for f in made["faces"]]
        assert np.array_equal(copied.matrix, np.stack([f.embedding for f in made["faces"]]))
        assert store.verify_api_key(made["key"]) is not None
        search = store.search_store()
        try:
            assert [r for r, _ in search.keyword(tenant, ["invoice"], 5)] == [made["rowid"]]
            assert [r for r, _ in search.keyword_inside(tenant, ["soonhuat"], 5)] == [made["rowid"]]
            assert search.phashes(tenant)[1].tolist() == [2**63 + 9]
            added = search.put_item(tenant, _again())
            assert added.item is not None and added.item.rowid > made["rowid"]  # the sequences moved past the copy
        finally:
            search.close()
    # a second copy into a database that holds tenants is refused
    assert main(["--data-dir", str(tmp_path), "db", "copy", "--to", url]) == 3


def _again() -> NewItem:
    return NewItem(
        source="later.jpg",
        sha256="2" * 64,
        modality="image",
        mime="image/jpeg",
        byte_size=1,
        pages=1,
        duration_s=None,
        captured_at="2024-06-01T10:00:00",
        nsfw=None,
        flagged=False,
        phash=None,
        encoder="conse",
        result={},
        text="",
        transcript="",
        labels={},
        faces=[],
        vectors=[],
    )


@pytest.fixture(scope="module")
def two_servers(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[tuple[Server, Server]]:
    url = postgres_server.fresh()
    env = {"FRUGALSENSE_DATABASE_URL": url, "FRUGALSENSE_RATE_PER_KEY": "0"}
    first = Server(tmp_path_factory.mktemp("server-a"), model_dir, env=env).start(timeout=120)
    second = Server(tmp_path_factory.mktemp("server-b"), model_dir, env=env).start(timeout=120)
    yield first, second
    first.kill()
    second.kill()


def test_two_servers_on_one_database_answer_alike_right_after_a_write(
    two_servers: tuple[Server, Server], eval_dir: Path
) -> None:
    first, second = two_servers
    assert first.admin_key and not second.admin_key  # the second start saw the key the first one made
    root = eval_dir / "faces-gallery" / "examples" / "knn_examples"
    a, b = Client(first.url, api_key=first.admin_key), Client(second.url, api_key=first.admin_key)
    collection = a.create_collection("staff")["id"]
    probe = root / "test" / "obama1.jpg"
    assert b.identify(collection, probe, keep=False)["faces"][0]["decision"] == "unknown"  # b loads its index

    person = a.create_person(collection, "Obama")["id"]
    a.enrol(person, root / "train" / "obama" / "obama.jpg")  # written through a
    assert b.identify(collection, probe, keep=False)["faces"][0]["decision"] == person  # seen by b at once

    b.delete_person(person)  # erased through b
    assert a.identify(collection, probe, keep=False)["faces"][0]["decision"] == "unknown"  # gone on a at once


def test_the_usage_ledger_sums_per_day_and_drops_an_erased_tenants_entries(
    postgres_server: PostgresServer,
) -> None:
    from frugalsense.store.usage import UsageEntry

    with PostgresStore(postgres_server.fresh()) as store:
        acme, gone = store.create_tenant("acme").id, store.create_tenant("gone").id
        ledger = store.usage_ledger()
        store.delete_tenant(gone)
        kept = ledger.add(
            [
                UsageEntry(acme, "2026-01-02", "faces", 0.25, 0.001, 1),
                UsageEntry(acme, "2026-01-02", "faces", 0.5, 0.002, 1),
                UsageEntry(gone, "2026-01-02", "faces", 1.0, 0.1, 1),
            ]
        )
        assert kept == 2
        (row,) = ledger.daily(acme, "2026-01-01", "2026-01-31")
        assert (row.feature, row.cpu_seconds, row.count) == ("faces", 0.75, 2)
        ledger.close()


@pytest.mark.parametrize("vacuum", ["full", "plain"])
def test_erasure_vacuum_full_leaves_no_bytes_at_once_plain_after_the_scheduled_full(
    postgres_server: PostgresServer, vacuum: str
) -> None:
    """The two settings of `erasure_vacuum`: 'full' rewrites the tables at once, so no byte is left; 'plain' only
    prunes, so a row's bytes may stay in free page space (whether they do depends on what later rows were moved
    over them) until the operator's scheduled ``VACUUM (FULL)``, after which none is left either."""
    url = postgres_server.fresh()
    rng = np.random.default_rng(11)
    with PostgresStore(url, erasure_vacuum=vacuum) as store:  # type: ignore[arg-type]
        gone = store.create_tenant("leaving").id
        people = store.create_collection(gone, "people").id
        person = store.create_person(gone, people, "Quennell Vorstadt").id
        erased = _unit(rng, 3)
        store.add_faces(gone, [_face(v, collection_id=people, person_id=person, enrolled=True) for v in erased])
        kept = store.create_tenant("staying").id  # rows after the erased ones: the table is not just truncated
        store.add_faces(kept, [_face(v) for v in _unit(rng, 50)])
        secrets = [v.astype("<f4").tobytes() for v in erased] + [b"Quennell Vorstadt"]
        assert all(s in postgres_files(url) for s in secrets)

        store.delete_tenant(gone)
        assert store.face_vectors(kept, "sface").matrix.shape == (50, 128)
        assert store.list_tenants() == [store.get_tenant(kept)]
        if vacuum == "full":
            assert not any(s in postgres_files(url) for s in secrets)
        store.vacuum(ERASURE_TABLES, full=True)  # what the operator schedules under 'plain'
        assert not any(s in postgres_files(url) for s in secrets)


def test_an_erasure_rewrites_again_once_an_older_snapshot_that_still_saw_the_rows_ends(
    postgres_server: PostgresServer,
) -> None:
    """While another session holds a snapshot from before the erasure (a long query, pg_dump, autovacuum's
    ANALYZE), VACUUM (FULL) must keep the erased rows for it and copies them into the new table file. The
    erasure rewrites those tables again once that snapshot ends (within `rewrite_patience_s`), and says False
    while it lasts longer."""
    url = postgres_server.fresh()
    rng = np.random.default_rng(12)

    def erase_while_a_snapshot_sees_it(store: PostgresStore, reader: Any, ends_after_s: float | None) -> bytes:
        gone = store.create_tenant("leaving").id
        erased = _unit(rng, 1)[0]
        store.add_face(gone, _face(erased))
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT 1").fetchone()  # its snapshot still sees the face erased next
        if ends_after_s is not None:
            threading.Timer(ends_after_s, lambda: reader.execute("COMMIT")).start()
        store.delete_tenant(gone)
        return erased.astype("<f4").tobytes()

    with PostgresStore(url) as store, connect(url) as reader:
        erased = erase_while_a_snapshot_sees_it(store, reader, ends_after_s=0.5)
        assert erased not in postgres_files(url)

        store.rewrite_patience_s = 0.2
        erased = erase_while_a_snapshot_sees_it(store, reader, ends_after_s=None)
        assert erased in postgres_files(url)  # kept for the snapshot that still sees it
        assert store.checkpoint() is False
        reader.execute("COMMIT")
        assert store.checkpoint() is True
        assert erased not in postgres_files(url)


def test_bulk_copy_and_single_inserts_store_the_same_exact_vectors(postgres_server: PostgresServer) -> None:
    """A large `add_faces` goes through binary COPY with ``vec`` made in Python, a single one through the trigger
    in SQL; both must equal the stored float32 bytes exactly, and the rows must read back as written."""
    rng = np.random.default_rng(5)
    with PostgresStore(postgres_server.fresh()) as store:
        tenant = store.create_tenant("a").id
        many = _unit(rng, COPY_ROWS + 36) * np.float32(3.7)  # not unit length: nothing is normalised on the way
        store.add_faces(tenant, [_face(v) for v in many])
        store.add_face(tenant, _face(many[0] * -1))
        store.add_face_embedding(tenant, store.list_faces(tenant)[0].id, "dlib", many[1])
        for table, column in (("faces", "embedding"), ("face_embeddings", "vector")):
            with all_tenants():  # read behind the store's back, past row-level security
                rows = store._rows(f"SELECT vec = fs_f32le({column}), vec::real[] FROM {table} ORDER BY rowid")
            assert rows and all(r[0] for r in rows)
        stored = store.face_vectors(tenant, "sface").matrix
        assert np.array_equal(stored, np.vstack([many, -many[:1]]))
        assert np.array_equal(np.array(rows[0][1], dtype=np.float32), many[1])


def test_bulk_load_builds_the_vector_indexes_even_when_the_load_fails(postgres_server: PostgresServer) -> None:
    rng = np.random.default_rng(8)
    with PostgresStore(postgres_server.fresh()) as store:
        tenant = store.create_tenant("a").id
        vectors = _unit(rng, 500)
        with store.bulk_load():
            faces = store.add_faces(tenant, [_face(v) for v in vectors])
            assert not store._rows("SELECT 1 FROM pg_indexes WHERE indexname = 'faces_vec'")
        with pytest.raises(NotFoundError), store.bulk_load():
            store.add_faces("ten_missing", [_face(v) for v in vectors])
        names = {r[0] for r in store._rows("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_vec'")}
        assert names == set(VECTOR_INDEXES)
        # and analysed: with no statistics the planner sorts a tenant's rows instead of walking the graph (read in
        # pg_stat_user_tables: pg_stats hides a table whose row-level security applies to the reader)
        analysed = "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'faces'"
        assert store._rows(analysed)[0][0]
        found = store.nearest_faces(tenant, "sface", vectors[7], 3)
        assert found[0][0] == faces[7].id and found[0][1] == pytest.approx(1.0, abs=1e-5)
