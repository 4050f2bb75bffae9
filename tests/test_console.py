"""The console's server side without a browser: the usage ledger, sessions, CSRF and origin checks, paged reads
checked against the Store's whole-table reads, and cloud prices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _faces import random_faces
from frugalsense.console.prices import cloud_usd, feature_of_stage
from frugalsense.console.sessions import Session, csrf_matches, same_origin
from frugalsense.errors import NotFoundError
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore, Store, open_store
from frugalsense.store.pages import open_paged_reads
from frugalsense.store.sessions import csrf_of, session_digest
from frugalsense.store.usage import UsageEntry, UsageLedger


@pytest.fixture()
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "frugalsense.db")


@pytest.fixture()
def any_store(store_settings: Settings) -> Iterator[Store]:
    """The store of each backend (SQLite, then a fresh PostgreSQL database)."""
    opened = open_store(store_settings)
    yield opened
    opened.close()


def test_the_ledger_sums_per_day_and_feature_and_goes_with_its_tenant(store: SQLiteStore) -> None:
    acme, other = store.create_tenant("acme"), store.create_tenant("other")
    ledger = UsageLedger(store.path)
    kept = ledger.add(
        [
            UsageEntry(acme.id, "2026-03-01", "faces", 0.5, 0.001, 1),
            UsageEntry(acme.id, "2026-03-01", "faces", 0.25, 0.0005, 1, units=7),  # a PDF of 7 pages
            UsageEntry(acme.id, "2026-03-02", "text", 1.0, 0.002, 1),
            UsageEntry(other.id, "2026-03-01", "faces", 9.0, 0.1, 1),
            UsageEntry("ten_gone", "2026-03-01", "faces", 9.0, 0.1, 1),  # no such tenant: dropped
        ]
    )
    assert kept == 4
    rows = ledger.daily(acme.id, "2026-03-01", "2026-03-31")
    assert [(r.day, r.feature, r.cpu_seconds, r.count, r.units) for r in rows] == [
        ("2026-03-01", "faces", 0.75, 2, 8),
        ("2026-03-02", "text", 1.0, 1, 1),
    ]
    assert rows[0].usd == pytest.approx(0.0015)
    assert [r.day for r in ledger.daily(acme.id, "2026-03-02", "2026-03-02")] == ["2026-03-02"]
    store.delete_tenant(acme.id)
    assert ledger.daily(acme.id, "2000-01-01", "2100-01-01") == []
    assert len(ledger.daily(other.id, "2000-01-01", "2100-01-01")) == 1


@pytest.mark.parametrize(("presented", "ok"), [(None, False), ("", False), ("wrong", False), ("RIGHT", True)])
def test_csrf_token_must_match_exactly(presented: str | None, ok: bool) -> None:
    session = Session("ten_a", "key_a", "admin", csrf_of("a session id"), 0.0, 0.0)
    assert csrf_matches(session, session.csrf if presented == "RIGHT" else presented) is ok


def test_the_csrf_token_is_derived_from_the_session_id_and_differs_from_what_is_stored() -> None:
    token = "a session id"
    assert csrf_of(token) == csrf_of(token) != csrf_of("another session id")
    assert csrf_of(token) not in (token, session_digest(token)) and len(csrf_of(token)) == 43


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "ok"),
    [
        (None, "http", "127.0.0.1:8000", True),  # not a cross-site browser request
        ("http://127.0.0.1:8000", "http", "127.0.0.1:8000", True),
        ("http://evil.example", "http", "127.0.0.1:8000", False),
        ("https://127.0.0.1:8000", "http", "127.0.0.1:8000", False),
        ("http://127.0.0.1:9000", "http", "127.0.0.1:8000", False),
        ("null", "http", "127.0.0.1:8000", False),
    ],
)
def test_only_the_servers_own_origin_may_change_things(
    origin: str | None, scheme: str, host: str, ok: bool
) -> None:
    assert same_origin(origin, scheme, host) is ok


def test_paged_persons_agree_with_the_whole_table(any_store: Store) -> None:
    store = any_store
    acme = store.create_tenant("acme")
    staff = store.create_collection(acme.id, "staff")
    names = [f"person {i:03d}" for i in range(130)]
    people = store.create_persons(acme.id, staff.id, names)
    store.add_faces(
        acme.id, random_faces(3, seed=1, person_id=people[7].id, enrolled=True, collection_id=staff.id)
    )
    reads = open_paged_reads(store.path)
    everyone = [p.name for p in store.list_persons(acme.id, staff.id)]
    pages = [reads.persons(acme.id, staff.id, limit=50, offset=o) for o in (0, 50, 100)]
    assert [p.name for page in pages for p in page.rows] == everyone
    assert {page.total for page in pages} == {130}
    assert pages[0].rows[7].face_count == 3 and pages[0].rows[6].face_count == 0
    found = reads.persons(acme.id, staff.id, name="PERSON 01")
    assert [p.name for p in found.rows] == [n for n in names if "person 01" in n] and found.total == 10
    intruder = store.create_tenant("intruder")
    with pytest.raises(NotFoundError):
        reads.persons(intruder.id, staff.id)
    with pytest.raises(NotFoundError):
        reads.person_erasure(intruder.id, people[7].id)
    erasure = reads.person_erasure(acme.id, people[7].id)
    assert (erasure.faces, erasure.enrolled) == (3, 3)
    assert store.delete_person(acme.id, people[7].id).to_dict()["faces"] == erasure.faces


def test_paged_clusters_agree_with_the_gallerys_grouping(any_store: Store) -> None:
    store = any_store
    acme = store.create_tenant("acme")
    faces = store.add_faces(acme.id, random_faces(9, seed=2))
    sizes = {"clu_big": 4, "clu_mid": 3, "clu_one": 1}
    assignments: dict[str, str | None] = {}
    remaining = [f.id for f in faces]
    for cluster, size in sizes.items():
        for face_id in remaining[:size]:
            assignments[face_id] = cluster
        remaining = remaining[size:]
    store.set_clusters(acme.id, assignments)
    reads = open_paged_reads(store.path)
    page = reads.clusters(acme.id, min_size=2, limit=1)
    assert page.total == 2 and [(c.id, c.size) for c in page.rows] == [("clu_big", 4)]
    second = reads.clusters(acme.id, min_size=2, limit=1, offset=1)
    assert [(c.id, c.size, len(c.face_ids)) for c in second.rows] == [("clu_mid", 3, 3)]
    assert reads.clusters(store.create_tenant("other").id).total == 0


def test_crops_are_found_only_for_their_tenant(any_store: Store) -> None:
    store = any_store
    acme, other = store.create_tenant("acme"), store.create_tenant("other")
    (face,) = store.add_faces(acme.id, random_faces(1, seed=3, crop_path="crops/x/face.jpg"))
    (bare,) = store.add_faces(acme.id, random_faces(1, seed=4))
    reads = open_paged_reads(store.path)
    assert reads.crop_path(acme.id, face.id) == "crops/x/face.jpg"
    for tenant, face_id in ((other.id, face.id), (acme.id, bare.id), (acme.id, "face_missing")):
        with pytest.raises(NotFoundError):
            reads.crop_path(tenant, face_id)


@pytest.mark.parametrize(
    ("stage", "feature"),
    [
        ("face-detection", "faces"),
        ("match", "identify"),
        ("ocr", "text"),
        ("decode", "shared"),
        ("load", "shared"),
    ],
)
def test_receipt_stages_map_to_features(stage: str, feature: str) -> None:
    assert feature_of_stage(stage) == feature


def test_cloud_prices_scale_with_pictures() -> None:
    assert cloud_usd("faces", 2000) == {"aws_rekognition": 2.0, "google_vision": 3.0}
    assert cloud_usd("identify", 10)["google_vision"] is None
    assert cloud_usd("shared", 10) == {"aws_rekognition": None, "google_vision": None}
