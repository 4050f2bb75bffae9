"""The search index's storage seam: `search/` reaches its tables only through the `SearchStore` Protocol, and the
two backends keep that Protocol's promises on real databases: a SQLite file and a PostgreSQL database
(``tests/_backends.py``)."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalsense.errors import ConfigurationError, NotFoundError
from frugalsense.results import Box
from frugalsense.settings import Settings
from frugalsense.store import NewFace, NewItem, SearchStore, SQLiteSearchStore, SQLiteStore, Store, open_store
from frugalsense.store.items import Filters
from frugalsense.store.postgres import PostgresStore
from frugalsense.store.postgres_search import PostgresSearchStore

SEARCH = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "search"
#: what `search/` may not import: the database driver and every backend module
FORBIDDEN = ("sqlite3", "frugalsense.store.sqlite", "frugalsense.store.sqlite_search", "frugalsense.store._")
BACKEND_CLASSES = {"SQLiteStore", "SQLiteSearchStore"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, deferred ones included."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_search_imports_no_database_driver_and_no_backend() -> None:
    offenders = [
        f"{path.name}: {module} {names}"
        for path in sorted(SEARCH.glob("*.py"))
        for module, names in _imports(path)
        if module.startswith(FORBIDDEN) or BACKEND_CLASSES & set(names)
    ]
    assert offenders == []


def test_the_backends_have_every_protocol_method_with_its_parameters() -> None:
    for protocol, backend in (
        (SearchStore, SQLiteSearchStore),
        (Store, SQLiteStore),
        (SearchStore, PostgresSearchStore),
        (Store, PostgresStore),
    ):
        methods = [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
        assert methods, protocol
        for name in methods:
            wanted = list(inspect.signature(getattr(protocol, name)).parameters)
            assert list(inspect.signature(getattr(backend, name)).parameters) == wanted, (backend, name)


def _sqlite(folder: Path) -> tuple[Store, SearchStore]:
    store = SQLiteStore(folder / "frugalsense.db")
    return store, store.search_store()


@pytest.fixture()
def stores(store_settings: Settings) -> Iterator[tuple[Store, SearchStore]]:
    """Both backends (tests/_backends.py): SQLite in the test's folder, then a fresh PostgreSQL database."""
    store = open_store(store_settings)
    search = store.search_store()
    yield store, search
    search.close()
    store.close()


def _item(source: str, text: str = "", *, faces: list[tuple[str, int]] | None = None, **fields: Any) -> NewItem:
    vector = np.zeros(4, np.float32)
    vector[len(source) % 4] = 1.0
    values: dict[str, Any] = {
        "source": source,
        "sha256": "0" * 64,
        "modality": "image",
        "mime": "image/jpeg",
        "byte_size": 10,
        "pages": 1,
        "duration_s": None,
        "captured_at": "2024-05-01T10:00:00",
        "nsfw": 0.01,
        "flagged": False,
        "phash": -(2**63) + 5,  # stored signed (as dhash gives it), read back as the same 64 unsigned bits
        "encoder": "conse",
        "result": {"pages": [{"text": text}]},
        "text": text,
        "transcript": "",
        "labels": {"dog": 0.9},
        "faces": faces or [],
        "vectors": [("image", vector)],
    }
    return NewItem(**{**values, **fields})


def test_an_item_is_written_read_replaced_and_deleted_with_everything_it_owns(
    stores: tuple[Store, SearchStore],
) -> None:
    store, search = stores
    tenant = store.create_tenant("acme").id
    first = search.put_item(tenant, _item("a.jpg", "invoice from Zanzibar"))
    assert first.item is not None and first.version_before == 0 and first.version_after == 1
    assert search.get_item(tenant, first.item.id).source == "a.jpg"
    assert [rowid for rowid, _ in search.keyword(tenant, ["zanzibar"], 10)] == [first.item.rowid]
    assert search.phashes(tenant)[1].tolist() == [2**63 + 5]
    assert search.filter_rowids(tenant, Filters(labels=("DOG",))) == {first.item.rowid}

    again = search.put_item(tenant, _item("a.jpg", "receipt from Oslo"))  # same source: replaces the record
    assert again.item is not None and again.replaced_rowid == first.item.rowid
    assert again.version_before == 1 < again.version_after  # the delete and the insert each count
    assert search.keyword(tenant, ["zanzibar"], 10) == [] and len(search.list_items(tenant)) == 1
    stored = search.vectors(tenant, "conse")
    assert (
        stored.version == again.version_after
        and stored.item_rowids.tolist() == [again.item.rowid]
        and stored.matrix.shape == (1, 4)
    )

    gone = search.delete_item(tenant, again.item.id)
    assert gone.version_after > again.version_after and search.tenant_counts(tenant) == dict.fromkeys(
        ("items", "vectors", "labels", "face_links"), 0
    )
    with pytest.raises(NotFoundError):
        search.get_item(tenant, again.item.id)


def test_another_tenants_items_are_invisible(stores: tuple[Store, SearchStore]) -> None:
    store, search = stores
    a, b = store.create_tenant("a").id, store.create_tenant("b").id
    written = search.put_item(a, _item("secret.jpg", "payroll"))
    assert written.item is not None
    with pytest.raises(NotFoundError):
        search.get_item(b, written.item.id)
    with pytest.raises(NotFoundError):
        search.delete_item(b, written.item.id)
    assert search.list_items(b) == [] and search.keyword(b, ["payroll"], 10) == []
    assert search.items_by_rowid(b, [written.item.rowid]) == {} and search.filter_rowids(b, Filters()) == set()


def test_face_links_name_the_person_and_hide_a_collection_being_erased(stores: tuple[Store, SearchStore]) -> None:
    store, search = stores
    tenant = store.create_tenant("acme").id
    staff = store.create_collection(tenant, "staff").id
    ada = store.create_person(tenant, staff, "Ada").id
    face = store.add_face(
        tenant,
        NewFace(
            embedding=np.ones(4, np.float32) / 2,
            model="sface",
            box=Box(0, 0, 10, 10),
            landmarks=[(1.0, 1.0)] * 5,
            det_score=0.9,
            source_sha256="0" * 64,
            source_name="team.jpg",
            collection_id=staff,
            person_id=ada,
        ),
    )
    written = search.put_item(tenant, _item("team.jpg", faces=[(face.id, 1)]))
    assert written.item is not None
    links = search.faces_of(tenant, [written.item.id])[written.item.id]
    assert [(f.face_id, f.person_id, f.person_name) for f in links] == [(face.id, ada, "Ada")]
    assert search.resolve_person(tenant, "ada") == [ada]
    assert search.filter_rowids(tenant, Filters(person_ids=(ada,))) == {written.item.rowid}

    store.begin_collection_erasure(tenant, staff)
    assert search.faces_of(tenant, [written.item.id]) == {}
    assert search.filter_rowids(tenant, Filters(person_ids=(ada,))) == set()
    with pytest.raises(NotFoundError):
        search.resolve_person(tenant, "Ada")


def test_a_tenants_items_go_in_chunks(stores: tuple[Store, SearchStore]) -> None:
    store, search = stores
    tenant = store.create_tenant("acme").id
    search.put_items(tenant, [_item(f"{n}.jpg") for n in range(3)])
    assert [search.delete_tenant_items(tenant, 2) for _ in range(3)] == [2, 1, 0]


def test_deleted_words_leave_the_database_file(tmp_path: Path) -> None:
    store, search = _sqlite(tmp_path)
    tenant = store.create_tenant("acme").id
    written = search.put_item(tenant, _item("note.jpg", "quokkaplatypus"))
    assert written.item is not None
    search.delete_item(tenant, written.item.id)
    search.purge_deleted_text()
    assert search.checkpoint()
    search.close()
    store.close()
    assert b"quokkaplatypus" not in (tmp_path / "frugalsense.db").read_bytes()


def test_a_throw_away_database_has_no_search_index() -> None:
    with SQLiteStore(":memory:") as store, pytest.raises(ConfigurationError):
        store.search_store()
