"""Identify through the faces' HNSW index on a real PostgreSQL 18 with pgvector (tests/_backends.py): a gallery at
or above ``pg_ann_min_faces`` asks the database for its nearest persons (the graph's candidates re-ranked exactly)
and must decide exactly as the exact matrix does, without loading the matrix; the per-tenant face counts that
choose the path follow every write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _backends import PostgresServer
from frugalsense.analyze import Analyzer
from frugalsense.faces import FaceGallery
from frugalsense.media.types import Frame
from frugalsense.results import Box, Face
from frugalsense.settings import Settings
from frugalsense.store import NewFace
from frugalsense.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres

Matrix = np.ndarray[Any, np.dtype[np.float32]]
PER_PERSON = 5


def _unit(v: np.ndarray[Any, Any]) -> Matrix:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True), dtype=np.float32)


def _photos(rng: np.random.Generator, centres: Matrix) -> Matrix:
    """New photos of people: their centre plus noise, about 0.6 cosine between two photos of one person."""
    return _unit(centres + 0.075 * rng.standard_normal(centres.shape))


def _centres(rng: np.random.Generator, n: int) -> Matrix:
    # a shared mean direction, as real SFace embeddings have (strangers at about 0.1, not 0)
    return _unit(0.3 * _unit(np.ones(128)) + _unit(rng.standard_normal((n, 128))))


def _face(vector: Matrix, **fields: Any) -> NewFace:
    return NewFace(vector, "sface", Box(1, 2, 3, 4), [(1.0, 2.0)] * 5, 0.9, "0" * 64, "a.jpg", **fields)


def _probe(vector: Matrix) -> Face:
    return Face(Box(0, 0, 10, 10), [(1.0, 1.0)] * 5, 0.9, embedding=vector, embedding_model="sface")


@pytest.fixture(scope="module")
def gallery_db(postgres_server: PostgresServer) -> dict[str, Any]:
    """One tenant: 2,000 enrolled people of five photos each, plus a small collection of three people and one
    stranger's sighting corrected as "not" one of them."""
    rng = np.random.default_rng(13)
    url = postgres_server.fresh()
    centres = _centres(rng, 2003)
    with PostgresStore(url) as store:
        tenant = store.create_tenant("acme").id
        staff = store.create_collection(tenant, "staff").id
        small = store.create_collection(tenant, "board").id
        with store.bulk_load():
            people = [p.id for p in store.create_persons(tenant, staff, [f"p{i}" for i in range(2000)])]
            photos = _photos(rng, np.repeat(centres[:2000], PER_PERSON, axis=0))
            store.add_faces(
                tenant,
                [
                    _face(v, collection_id=staff, person_id=people[i // PER_PERSON], enrolled=True)
                    for i, v in enumerate(photos)
                ],
            )
            board = [p.id for p in store.create_persons(tenant, small, ["a", "b", "c"])]
            store.add_faces(
                tenant,
                [
                    _face(v, collection_id=small, person_id=board[i], enrolled=True)
                    for i, v in enumerate(_photos(rng, centres[2000:]))
                ],
            )
        stranger = _unit(rng.standard_normal(128))
        sighting = store.add_face(tenant, _face(stranger, collection_id=staff))
        store.correct_face(tenant, sighting.id, people[7], "is_not")
    return {
        "url": url,
        "tenant": tenant,
        "staff": staff,
        "small": small,
        "centres": centres,
        "people": people,
        "stranger": stranger,
    }


def _gallery(settings: Settings, model_dir: Path, url: str, min_faces: int) -> FaceGallery:
    chosen = settings.model_copy(update={"database_url": url, "pg_ann_min_faces": min_faces})
    return FaceGallery(PostgresStore.open(chosen), Analyzer(chosen))


def _identify(gallery: FaceGallery, db: dict[str, Any], collection: str, probes: Matrix) -> list[Any]:
    frame = Frame(np.zeros((10, 10, 3), np.uint8))
    threshold = gallery.profile.identify_threshold  # a caller's threshold: no climb to dlib, no pixels needed
    out = []
    for vector in probes:
        result = gallery.identify_faces(
            db["tenant"],
            collection,
            frame,
            [_probe(vector)],
            source_sha256="0" * 64,
            source_name="p.jpg",
            top_k=3,
            threshold=threshold,
            keep=False,
        )
        face = result.faces[0]
        out.append((face.decision, [(c.person_id, c.similarity) for c in face.candidates], face.excluded))
    return out


def test_identify_through_hnsw_decides_as_the_exact_matrix(
    gallery_db: dict[str, Any], settings: Settings, model_dir: Path
) -> None:
    db = gallery_db
    rng = np.random.default_rng(21)
    centres = db["centres"]
    known = _photos(rng, centres[rng.integers(0, 2000, 40)])  # new photos of enrolled people
    strangers = _photos(rng, _centres(rng, 20))  # people never enrolled
    blends = _unit(centres[:10] + centres[10:20])  # between two people: "unknown" by the margin, or a close call
    again = _unit(db["stranger"] + 0.02 * rng.standard_normal(128))[None, :]  # the corrected stranger
    probes = np.vstack([known, strangers, blends, again]).astype(np.float32)

    hnsw = _gallery(settings, model_dir, db["url"], min_faces=0)
    exact = _gallery(settings, model_dir, db["url"], min_faces=10**9)
    tenant = db["tenant"]
    for collection in (db["staff"], db["small"]):  # the small one: the graph walk comes back short, exact SQL
        by_hnsw = _identify(hnsw, db, collection, probes)
        by_matrix = _identify(exact, db, collection, probes)
        for (decision, candidates, excluded), (want, wanted, want_excluded) in zip(
            by_hnsw, by_matrix, strict=True
        ):
            assert decision == want and excluded == want_excluded
            assert [p for p, _ in candidates] == [p for p, _ in wanted]
            assert [s for _, s in candidates] == pytest.approx([s for _, s in wanted], abs=1e-6)
    decisions = [d for d, _, _ in _identify(exact, db, db["staff"], probes)]
    # the probes exercise both answers: enrolled people are named, most strangers and blends are not
    assert sum(d != "unknown" for d in decisions[:40]) >= 38
    assert sum(d == "unknown" for d in decisions[40:]) >= 15
    assert db["people"][7] in _identify(hnsw, db, db["staff"], again)[0][2]  # the correction rules out on HNSW
    assert hnsw.index_loads[tenant] == 0  # decided in the database: no server-side matrix
    assert exact.index_loads[tenant] == 1
    hnsw.store.close()
    exact.store.close()


def test_face_counts_follow_every_write(postgres_server: PostgresServer) -> None:
    """The count that chooses the path: COPY and single inserts add, deletions (a face, a person's faces by
    cascade, a collection's erasure) take away, per tenant; nothing counted for a tenant that was not written."""
    rng = np.random.default_rng(4)
    with PostgresStore(postgres_server.fresh()) as store:
        tenant, other = store.create_tenant("a").id, store.create_tenant("b").id
        staff = store.create_collection(tenant, "staff").id
        ada = store.create_person(tenant, staff, "Ada").id
        assert store.face_count(tenant) == 0
        store.add_faces(tenant, [_face(v, collection_id=staff) for v in _unit(rng.standard_normal((100, 128)))])
        assert store.face_count(tenant) == 100  # one COPY
        face = store.add_face(tenant, _face(_unit(rng.standard_normal(128)), collection_id=staff, person_id=ada))
        store.add_faces(other, [_face(v) for v in _unit(rng.standard_normal((3, 128)))])
        assert (store.face_count(tenant), store.face_count(other)) == (101, 3)
        store.delete_face(tenant, store.list_faces(tenant)[0].id)
        assert store.face_count(tenant) == 100
        store.add_face(tenant, _face(_unit(rng.standard_normal(128)), collection_id=staff, person_id=ada))
        store.delete_person(tenant, ada)  # its two faces go with it
        assert store.face_count(tenant) == 99
        assert face.id not in store.get_faces(tenant, [face.id])
        store.delete_collection(tenant, staff)
        assert (store.face_count(tenant), store.face_count(other)) == (0, 3)
