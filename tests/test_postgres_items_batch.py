"""`put_items` on PostgreSQL writes a batch with one statement per table (a binary COPY from `COPY_ROWS` rows);
SQLite writes the same batch one item after another. What both store, and the outcomes they give back, must be
the same: items, full text, trigram text, vectors, labels, face links, the result references an erasure follows,
and the search_state versions, with a source written twice inside the batch and one replacing an older record.

Both PostgreSQL roles run: the service role (row-level security applies, so COPY goes through a temporary twin
table) and the superuser (COPY straight into the tables). Ids differ between databases (random) and so do
rowid values (serials): rowids are compared by their order, face ids by which face they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from _backends import PostgresServer
from frugalsense.results import Box
from frugalsense.store import NewFace, NewItem, SearchStore, SQLiteStore, Store
from frugalsense.store.items import Filters, WriteOutcome
from frugalsense.store.postgres import PostgresStore
from frugalsense.store.postgres_db import COPY_ROWS

pytestmark = pytest.mark.postgres

WORDS = ["invoice", "zanzibar", "receipt", "oslo", "quokka", "harbour", "ledger", "mango"]


def _item(source: str, i: int, faces: list[str], **fields: Any) -> NewItem:
    """Item ``i`` of a batch: words, two labels, one or two vectors, and (every third) faces its result names."""
    rng = np.random.default_rng(i)
    shown = [(faces[i % 3], 1), (faces[i % 3], 2), (faces[(i + 1) % 3], 2)] if i % 3 == 0 else []
    values: dict[str, Any] = {
        "source": source,
        "sha256": f"{i:064x}",
        "modality": ("image", "document")[i % 2],
        "mime": "image/jpeg",
        "byte_size": 1000 + i,
        "pages": 1 + i % 2,
        "duration_s": None if i % 2 else 1.5 * i,
        "captured_at": f"2024-05-{1 + i % 5:02d}T10:00:00",  # ties: the order falls back to the rowid
        "nsfw": None if i % 4 == 0 else i / 1000,
        "flagged": i % 5 == 0,
        "phash": None if i % 6 == 0 else -(2**63) + i,
        "encoder": ("conse", "other")[i % 7 == 0],
        "result": {"pages": [{"faces": [{"face_id": f, "decision": "unknown"} for f, _ in shown]}], "n": i},
        "text": f"{WORDS[i % 8]} {WORDS[(i * 3) % 8]} SOONHUAT{i % 4}",
        "transcript": "" if i % 2 else f"spoken {WORDS[(i + 5) % 8]}",
        "labels": {f"label{i % 3}": 0.5 + i / 1000, "dog": 0.9},
        "faces": shown,
        "vectors": [("image", rng.standard_normal(8).astype(np.float32))]
        + ([("page2", rng.standard_normal(8).astype(np.float32))] if i % 2 else []),
    }
    return NewItem(**{**values, **fields})


def _batch(size: int, faces: list[str]) -> list[NewItem]:
    """``size`` items: the first replaces a record written before, the second is written again at the end."""
    items = [_item("old.jpg", 0, faces)] + [_item(f"{i:03d}.jpg", i, faces) for i in range(1, size - 1)]
    return [*items, _item("001.jpg", size, faces, text="written again")]


def _faces(store: Store, tenant: str) -> list[str]:
    staff = store.create_collection(tenant, "staff").id
    ada = store.create_person(tenant, staff, "Ada").id
    return [
        store.add_face(
            tenant,
            NewFace(
                np.full(4, 0.5, np.float32),
                "sface",
                Box(0, 0, 10, 10),
                [(1.0, 1.0)] * 5,
                0.9,
                "0" * 64,
                f"{n}.jpg",
                collection_id=staff,
                person_id=ada,
            ),
        ).id
        for n in range(3)
    ]


def _view(store: Store, search: SearchStore, size: int) -> dict[str, Any]:
    """What a user of the store can see after the batch, with random ids and serial values made comparable."""
    tenant = store.create_tenant("acme").id
    faces = _faces(store, tenant)
    earlier = [
        search.put_item(tenant, _item("keep.jpg", 3, faces)),
        search.put_item(tenant, _item("old.jpg", 6, faces)),
    ]
    outcomes = search.put_items(tenant, _batch(size, faces))
    face = {f: n for n, f in enumerate(faces)}
    listed = search.list_items(tenant, limit=1000)
    source = {i.rowid: i.source for i in listed}
    # rowid -> the write (0, 1, ...) that holds it now, and the write each one replaced: SQLite gives a deleted
    # item's rowid (and its vector rows) to the next insert, PostgreSQL draws new ones
    holder: dict[int, int] = {}
    replaced: list[int | None] = []
    for n, o in enumerate([*earlier, *outcomes]):
        assert o.item is not None
        replaced.append(None if o.replaced_rowid is None else holder[o.replaced_rowid])
        holder[o.item.rowid] = n

    def outcome(n: int, o: WriteOutcome) -> tuple[Any, ...]:
        assert o.item is not None
        fields = o.item.to_dict(with_result=True) | {"id": 0, "indexed_at": 0}
        alive = holder[o.item.rowid] == n and o.item.rowid in source  # else its vector rows are gone (or reused)
        added = search.vector_rows(o.vector_rows) if alive and o.vector_rows else None
        vectors = (added.parts, added.matrix.tolist()) if added is not None else len(o.vector_rows)
        # the replaced record's faces in a set: SQLite lists them by face id, PostgreSQL by link
        gone = sorted(face[f] for f in o.replaced_faces)
        return (fields, o.item.phash, gone, replaced[n], alive, vectors, o.version_before, o.version_after)

    def hits(found: list[tuple[int, float]]) -> list[str]:
        return sorted(source[r] for r, _ in found)

    seen: dict[str, Any] = {
        "outcomes": [outcome(n, o) for n, o in enumerate(outcomes, len(earlier))],
        "items": [
            (i.source, holder[i.rowid], i.to_dict(with_result=True) | {"id": 0, "indexed_at": 0}) for i in listed
        ],
        "counts": search.tenant_counts(tenant),
        "keyword": {
            w: hits(search.keyword(tenant, [w], 1000)) for w in [*WORDS, "spoken", "written again", "dog"]
        },
        "inside": {w: hits(search.keyword_inside(tenant, [w], 1000)) for w in ("soonhuat1", "huat3", "nosuch")},
        "labels": sorted(source[r] for r in search.filter_rowids(tenant, Filters(labels=("LABEL1",)))),
        "faces": {
            i.source: [(face[f.face_id], f.page, f.person_name) for f in links]
            for i in listed
            for links in [search.faces_of(tenant, [i.id]).get(i.id, [])]
        },
        "phashes": search.phashes(tenant)[1].tolist(),
    }
    for encoder in ("conse", "other"):
        stored = search.vectors(tenant, encoder)
        seen[encoder] = (
            stored.version,
            [source[r] for r in stored.item_rowids],
            stored.parts,
            stored.matrix.tolist(),
        )
    store.delete_face(tenant, faces[1])  # found through item_refs: every result naming it is rewritten
    seen["scrubbed"] = [(i.source, i.result) for i in search.list_items(tenant, limit=1000)]
    text = json.dumps(seen)  # the results name faces by their ids: by which face they are, to compare
    for n, face_id in enumerate(faces):
        text = text.replace(face_id, f"face {n}")
    return dict(json.loads(text))


@pytest.mark.parametrize("size", [3, 2 * COPY_ROWS + 16])
@pytest.mark.parametrize("role", ["service", "superuser"])
def test_a_batch_reads_back_as_sqlite_stores_it_one_item_at_a_time(
    postgres_server: PostgresServer, tmp_path: Path, role: str, size: int
) -> None:
    lite = SQLiteStore(tmp_path / "frugalsense.db")
    lite_search = lite.search_store()
    expected = _view(lite, lite_search, size)
    lite_search.close()
    lite.close()

    url = postgres_server.fresh()
    if role == "superuser":
        url = postgres_server.url(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with PostgresStore(url) as store:
        search = store.search_store()
        try:
            seen = _view(store, search, size)
        finally:
            search.close()
    assert expected["counts"]["items"] == size and expected["outcomes"][-1][3] == 3  # the batch as meant
    assert seen == expected
