"""One tenant's writes never reload another tenant's face index: a real FaceGallery over a real SQLite file, real
photos (faces-deepface), and a second connection to the same file standing in for another process."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.faces import FaceGallery
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, NewFace, SQLiteStore


@pytest.fixture()
def gallery(settings: Settings) -> FaceGallery:
    return FaceGallery(SQLiteStore.open(settings), Analyzer(settings))


def _copy(face_id: str, store: SQLiteStore, tenant: str, collection: str) -> NewFace:
    """A sighting with the same embedding as a stored face, as another process would write it."""
    record = store.get_face(tenant, face_id)
    return NewFace(
        embedding=record.embedding,
        model=record.model,
        box=record.box,
        landmarks=record.landmarks,
        det_score=record.det_score,
        source_sha256=record.source_sha256,
        source_name="from another process",
        collection_id=collection,
    )


def test_writes_of_other_tenants_leave_a_tenants_index_loaded(gallery: FaceGallery, eval_dir: Path) -> None:
    photos = eval_dir / "faces-deepface" / "images"
    store = gallery.store
    assert isinstance(store, SQLiteStore)
    good = store.create_tenant("good").id
    staff = gallery.create_collection(good, "staff").id
    angelina = gallery.create_person(good, staff, "Angelina")
    gallery.enrol(good, angelina.id, photos / "img4.jpg")
    assert gallery.identify(good, staff, photos / "img1.jpg", keep=False).faces[0].decision == angelina.id
    assert gallery.index_loads[good] == 1

    busy = store.create_tenant("busy").id
    door = gallery.create_collection(busy, "door").id
    jennifer = gallery.create_person(busy, door, "Jennifer")
    enrolled = gallery.enrol(busy, jennifer.id, photos / "img3.jpg").face.id
    gallery.identify(busy, door, photos / "img12.jpg")  # kept: a sighting written through this gallery
    other = SQLiteStore(Path(store.path))  # another process writing the busy tenant's faces
    other.add_faces(busy, [_copy(enrolled, store, busy, door) for _ in range(3)])
    other.create_person(busy, door, "Scarlett")

    assert gallery.identify(good, staff, photos / "img2.jpg", keep=False).faces[0].decision == angelina.id
    assert gallery.index_loads[good] == 1, "the good tenant's index was reloaded for the busy tenant's writes"
    assert len(gallery.search_faces(busy, photos / "img3.jpg").matches) == 5  # the busy one sees every write

    # A write to the good tenant's faces by another process does reach its index.
    other.add_faces(good, [_copy(_first_face(store, good), store, good, staff)])
    assert len(gallery.search_faces(good, photos / "img1.jpg").matches) == 2
    assert gallery.index_loads[good] == 2
    other.close()


def _first_face(store: SQLiteStore, tenant: str) -> str:
    return store.list_faces(tenant)[0].id


def test_a_second_gallery_sees_erasures_made_by_the_first(settings: Settings, eval_dir: Path) -> None:
    photos = eval_dir / "faces-deepface" / "images"
    analyzer = Analyzer(settings)
    first = FaceGallery(SQLiteStore.open(settings), analyzer)
    second = FaceGallery(SQLiteStore(settings.data_dir / DB_FILENAME), analyzer)
    tenant = first.store.create_tenant("acme").id
    staff = first.create_collection(tenant, "staff").id
    person = first.create_person(tenant, staff, "Angelina")
    first.enrol(tenant, person.id, photos / "img4.jpg")
    assert second.identify(tenant, staff, photos / "img1.jpg", keep=False).faces[0].decision == person.id
    first.delete_person(tenant, person.id)
    assert second.identify(tenant, staff, photos / "img1.jpg", keep=False).faces[0].decision == "unknown"
