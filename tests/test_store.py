"""The stores on real databases: migrations, durability settings, hashed keys, tenant walls, erasure bytes (the
backend-neutral cases on SQLite and PostgreSQL, tests/_backends.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalsense.errors import InvalidRequestError, NotFoundError
from frugalsense.results import Box
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, NewFace, SQLiteStore, Store, open_store
from frugalsense.store.migrations import MIGRATIONS
from frugalsense.store.postgres_rls import all_tenants


def _face(seed: int, **fields: Any) -> NewFace:
    vector = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    vector /= np.linalg.norm(vector)
    return NewFace(
        embedding=vector,
        model="sface",
        box=Box(10, 20, 30, 40),
        landmarks=[(1.0, 2.0)] * 5,
        det_score=0.9,
        source_sha256="0" * 64,
        source_name=f"photo{seed}.jpg",
        **fields,
    )


def _file_bytes(db: Path) -> bytes:
    """Everything SQLite keeps on disk for this database: the file and its write-ahead log."""
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture()
def db(settings: Settings) -> Path:
    return settings.data_dir / DB_FILENAME


@pytest.fixture()
def sqlite_store(settings: Settings) -> SQLiteStore:
    return SQLiteStore.open(settings)


@pytest.fixture()
def store(store_settings: Settings) -> Iterator[Store]:
    """Each backend in turn (tests/_backends.py): SQLite, then a fresh PostgreSQL database."""
    opened = open_store(store_settings)
    yield opened
    opened.close()


def test_open_creates_folders_and_sets_durable_pragmas(sqlite_store: SQLiteStore, db: Path) -> None:
    assert db.is_file()
    conn = sqlite_store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_migrations_apply_once_and_are_recorded(settings: Settings, db: Path) -> None:
    first = SQLiteStore.open(settings)
    assert first.migrated == [m.__name__ for m in MIGRATIONS]
    first.close()
    second = SQLiteStore.open(settings)
    assert second.migrated == []
    names = [r[0] for r in second._conn.execute("SELECT name FROM migrations")]
    assert names == [m.__name__ for m in MIGRATIONS]


def test_reopening_keeps_the_data(settings: Settings) -> None:
    store = SQLiteStore.open(settings)
    tenant = store.create_tenant("acme")
    collection = store.create_collection(tenant.id, "staff")
    person = store.create_person(tenant.id, collection.id, "Ada", {"badge": 7})
    face = store.add_face(tenant.id, _face(1, collection_id=collection.id, person_id=person.id, enrolled=True))
    store.close()

    reopened = SQLiteStore.open(settings)
    assert reopened.get_person(tenant.id, person.id).metadata == {"badge": 7}
    assert reopened.get_person(tenant.id, person.id).face_count == 1
    stored = reopened.get_face(tenant.id, face.id)
    assert np.array_equal(stored.embedding, face.embedding)
    assert stored.box == Box(10, 20, 30, 40)


def test_api_keys_are_stored_hashed_verified_and_revoked(sqlite_store: SQLiteStore, db: Path) -> None:
    tenant = sqlite_store.create_tenant("acme")
    new = sqlite_store.create_api_key(tenant.id, "ci", role="admin")
    prefix, secret = new.key.split("_")[1:]
    sqlite_store.checkpoint()
    data = _file_bytes(db)
    assert secret.encode() not in data and new.key.encode() not in data
    assert prefix.encode() in data  # the lookup prefix is stored; the secret never is

    verified = sqlite_store.verify_api_key(new.key)
    assert verified is not None and verified.tenant_id == tenant.id and verified.role == "admin"
    assert sqlite_store.verify_api_key(new.key[:-1] + ("a" if new.key[-1] != "a" else "b")) is None
    assert sqlite_store.verify_api_key(f"fs_{prefix}_") is None
    assert sqlite_store.verify_api_key("") is None
    assert sqlite_store.verify_api_key("Bearer nonsense") is None

    other = sqlite_store.create_tenant("globex")
    with pytest.raises(NotFoundError):
        sqlite_store.revoke_api_key(other.id, new.record.id)
    assert sqlite_store.verify_api_key(new.key) is not None
    revoked = sqlite_store.revoke_api_key(tenant.id, new.record.id)
    assert revoked.revoked_at is not None
    assert sqlite_store.verify_api_key(new.key) is None


def test_names_are_checked(store: Store) -> None:
    tenant = store.create_tenant("acme")
    store.create_collection(tenant.id, "staff")
    with pytest.raises(InvalidRequestError, match="exists"):
        store.create_collection(tenant.id, "staff")
    with pytest.raises(InvalidRequestError):
        store.create_collection(tenant.id, "   ")
    with pytest.raises(NotFoundError):
        store.create_collection("ten_missing", "staff")


def _seed(store: Store) -> dict[str, str]:
    a = store.create_tenant("a")
    collection = store.create_collection(a.id, "staff")
    person = store.create_person(a.id, collection.id, "Ada")
    face = store.add_face(a.id, _face(2, collection_id=collection.id, person_id=person.id, enrolled=True))
    seen = store.add_face(a.id, _face(3, collection_id=collection.id, cluster_id="clu_x"))
    key = store.create_api_key(a.id, "k")
    b = store.create_tenant("b")
    b_collection = store.create_collection(b.id, "staff")
    b_person = store.create_person(b.id, b_collection.id, "Bob")
    return {
        "a": a.id,
        "collection": collection.id,
        "person": person.id,
        "face": face.id,
        "seen": seen.id,
        "key": key.record.id,
        "b": b.id,
        "b_collection": b_collection.id,
        "b_person": b_person.id,
    }


FOREIGN_CALLS: list[tuple[str, Callable[[Store, dict[str, str]], object]]] = [
    ("get_collection", lambda s, ids: s.get_collection(ids["b"], ids["collection"])),
    ("delete_collection", lambda s, ids: s.delete_collection(ids["b"], ids["collection"])),
    ("create_person in A's collection", lambda s, ids: s.create_person(ids["b"], ids["collection"], "Eve")),
    ("get_person", lambda s, ids: s.get_person(ids["b"], ids["person"])),
    ("list_persons of A's collection", lambda s, ids: s.list_persons(ids["b"], ids["collection"])),
    ("delete_person", lambda s, ids: s.delete_person(ids["b"], ids["person"])),
    ("get_face", lambda s, ids: s.get_face(ids["b"], ids["face"])),
    ("delete_face", lambda s, ids: s.delete_face(ids["b"], ids["face"])),
    ("correct A's face", lambda s, ids: s.correct_face(ids["b"], ids["seen"], ids["b_person"], "is")),
    ("correct with A's person", lambda s, ids: s.correct_face(ids["a"], ids["seen"], ids["b_person"], "is")),
    ("add face to A's person", lambda s, ids: s.add_face(ids["b"], _face(4, person_id=ids["person"]))),
    ("promote A's cluster", lambda s, ids: s.promote_cluster(ids["b"], "clu_x", ids["b_collection"], "Eve")),
    ("revoke A's key", lambda s, ids: s.revoke_api_key(ids["b"], ids["key"])),
]


@pytest.mark.parametrize(("what", "call"), FOREIGN_CALLS, ids=[w for w, _ in FOREIGN_CALLS])
def test_tenant_b_cannot_touch_tenant_a(store: Store, what: str, call: Callable[..., object]) -> None:
    ids = _seed(store)
    with pytest.raises(NotFoundError):
        call(store, ids)
    # A's data is untouched and B sees none of it.
    assert store.get_person(ids["a"], ids["person"]).face_count == 1
    assert store.get_face(ids["a"], ids["seen"]).cluster_id == "clu_x"
    assert store.list_collections(ids["b"]) == [store.get_collection(ids["b"], ids["b_collection"])]
    assert [p.id for p in store.list_persons(ids["b"])] == [ids["b_person"]]
    assert store.list_faces(ids["b"]) == []
    assert len(store.face_vectors(ids["b"], "sface").ids) == 0
    assert store.get_persons(ids["b"], [ids["person"]]) == {}
    assert store.get_faces(ids["b"], [ids["face"]]) == {}
    assert store.list_corrections(ids["b"]) == []


def test_the_schema_itself_refuses_cross_tenant_rows(sqlite_store: SQLiteStore) -> None:
    """Defence in depth: even SQL that skips the checks cannot point B's row at A's collection."""
    ids = _seed(sqlite_store)
    with pytest.raises(sqlite3.IntegrityError):
        sqlite_store._conn.execute(
            "INSERT INTO persons VALUES ('per_evil', ?, ?, 'Eve', '{}', 'now')", (ids["b"], ids["collection"])
        )


def test_corrections_move_a_face_between_known_and_unknown(store: Store) -> None:
    ids = _seed(store)
    store.correct_face(ids["a"], ids["seen"], ids["person"], "is")
    face = store.get_face(ids["a"], ids["seen"])
    assert (face.person_id, face.enrolled, face.cluster_id) == (ids["person"], True, None)
    store.correct_face(ids["a"], ids["seen"], ids["person"], "is_not")
    face = store.get_face(ids["a"], ids["seen"])
    assert (face.person_id, face.enrolled) == (None, False)
    # The later word replaced the earlier one.
    assert [c.kind for c in store.list_corrections(ids["a"])] == ["is_not"]


def test_erasing_a_face_overwrites_its_embedding_in_the_file(sqlite_store: SQLiteStore, db: Path) -> None:
    ids = _seed(sqlite_store)
    embedding = sqlite_store.get_face(ids["a"], ids["face"]).embedding.tobytes()
    sqlite_store.checkpoint()
    assert embedding in _file_bytes(db)  # so the check below can fail
    erased = sqlite_store.delete_person(ids["a"], ids["person"])
    assert erased.face_ids == [ids["face"]]
    assert embedding not in _file_bytes(db)
    with pytest.raises(NotFoundError):
        sqlite_store.get_face(ids["a"], ids["face"])


def test_delete_tenant_erases_everything_it_owns(store: Store) -> None:
    ids = _seed(store)
    erased = store.delete_tenant(ids["a"])
    assert sorted(erased.face_ids) == sorted([ids["face"], ids["seen"]])
    assert (erased.persons, erased.collections) == (1, 1)
    assert [t.id for t in store.list_tenants()] == [ids["b"]]
    with all_tenants():  # every tenant's rows, past PostgreSQL's row-level security
        assert store._rows("SELECT COUNT(*) FROM faces")[0][0] == 0  # type: ignore[attr-defined]


def test_concurrent_writers_from_threads(store: Store) -> None:
    tenant = store.create_tenant("acme")
    collection = store.create_collection(tenant.id, "staff")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                person = store.create_person(tenant.id, collection.id, f"p{worker}-{i}")
                store.add_face(tenant.id, _face(worker * 100 + i, person_id=person.id, enrolled=True))
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_persons(tenant.id)) == 80
    assert len(store.face_vectors(tenant.id, "sface").ids) == 80


def test_a_collection_erasure_a_crash_cut_short_stays_hidden_and_can_be_finished(store_settings: Settings) -> None:
    store = open_store(store_settings)
    tenant = store.create_tenant("acme").id
    staff, guests = store.create_collection(tenant, "staff"), store.create_collection(tenant, "guests")
    ada = store.create_person(tenant, staff.id, "Ada", {"badge": 7})
    store.add_faces(tenant, [_face(i, collection_id=staff.id, person_id=ada.id, enrolled=True) for i in range(5)])
    store.add_faces(tenant, [_face(10 + i, collection_id=staff.id, cluster_id="clu_x") for i in range(20)])
    guest = store.add_face(tenant, _face(99, collection_id=guests.id))

    store.begin_collection_erasure(tenant, staff.id)
    store.erase_collection_chunk(tenant, staff.id, limit=10)

    def boom(face_ids: list[str]) -> None:
        raise OSError("the machine lost power")  # a crash inside the second chunk: it must roll back whole

    with pytest.raises(OSError):
        store.erase_collection_chunk(tenant, staff.id, limit=10, before_delete=boom)
    store.close()

    reopened: Any = open_store(store_settings)
    with all_tenants():  # reads behind the store's back, past PostgreSQL's row-level security
        left = reopened._rows("SELECT COUNT(*) FROM faces WHERE collection_id = ?", (staff.id,))[0][0]
    assert left == 15  # the first chunk went, the second did not
    # Nothing of the half-erased collection is visible, and the names are already gone.
    assert [c.id for c in reopened.list_collections(tenant)] == [guests.id]
    for call in (
        lambda: reopened.get_collection(tenant, staff.id),
        lambda: reopened.get_person(tenant, ada.id),
        lambda: reopened.create_person(tenant, staff.id, "Bob"),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert reopened.list_persons(tenant) == []
    assert [f.id for f in reopened.list_faces(tenant)] == [guest.id]
    assert reopened.face_vectors(tenant, "sface").ids == [guest.id]
    with all_tenants():
        assert reopened._rows("SELECT name, metadata FROM persons WHERE id = ?", (ada.id,))[0][:] == ("", "{}")
    assert reopened.erasing_collections() == [(tenant, staff.id)]

    erased = reopened.delete_collection(tenant, staff.id)  # still deletable: the erasure is finished
    assert (len(erased.face_ids), erased.persons, erased.collections) == (15, 1, 1)
    assert reopened.erasing_collections() == []
    with all_tenants():
        assert reopened._rows("SELECT COUNT(*) FROM faces WHERE tenant_id = ?", (tenant,))[0][0] == 1
    reopened.close()


def test_every_write_to_a_tenants_faces_moves_its_face_version_by_one(store: Store) -> None:
    ids = _seed(store)
    a, b = ids["a"], ids["b"]
    start_a, start_b = store.face_version(a), store.face_version(b)
    writes: list[Callable[[], object]] = [
        lambda: store.add_face(a, _face(7, collection_id=ids["collection"])),
        lambda: store.set_clusters(a, {ids["seen"]: "clu_y"}),
        lambda: store.correct_face(a, ids["seen"], ids["person"], "is_not"),
        lambda: store.promote_cluster(a, "clu_y", ids["collection"], "Cy"),
        lambda: store.delete_face(a, ids["seen"]),
        lambda: store.delete_person(a, ids["person"]),
    ]
    for n, write in enumerate(writes, start=1):
        write()
        assert store.face_version(a) == start_a + n
    store.create_person(a, ids["collection"], "Dee")  # no face changed
    store.delete_collection(a, ids["collection"])  # begun, one chunk of faces, then the persons and itself
    assert store.face_version(a) == start_a + len(writes) + 3
    assert store.face_version(b) == start_b  # the other tenant's stayed


def test_an_upgrade_scrubs_what_an_older_versions_erasures_left_in_item_results(settings: Settings) -> None:
    db = settings.data_dir / DB_FILENAME
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS[:3]:  # the schema an older version left
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 'then')", (fn.__name__,))
    conn.execute("INSERT INTO tenants VALUES ('ten_a', 'a', 'then')")
    face = {"face_id": "face_gone", "decision": "per_gone", "name": "Ada", "similarity": 0.8, "excluded": []}
    face["candidates"] = [{"person_id": "per_gone", "name": "Ada", "similarity": 0.8}]
    result = {"pages": [{"faces": [face]}]}
    conn.execute(
        "INSERT INTO items VALUES ('item_1', 'ten_a', 'a.jpg', '', 'image', 'image/jpeg', 1, 1, NULL, 'then',"
        " 'then', NULL, 0, NULL, 'conse', ?)",
        (json.dumps(result),),
    )
    conn.close()

    store = SQLiteStore.open(settings)
    assert store.migrated == [m.__name__ for m in MIGRATIONS[3:]]  # m004 scrubs; later ones follow
    stored = json.loads(store._rows("SELECT result FROM items WHERE id = 'item_1'")[0][0])
    assert stored == {"pages": [{"faces": []}]}
    assert store.checkpoint() and b"Ada" not in _file_bytes(db) and b"per_gone" not in _file_bytes(db)
    store.close()
