"""A large collection is erased in chunks through a real FaceGallery on a real SQLite file: the locks are free
between chunks, so another tenant's work goes on during the erasure, and the collection is hidden from the start.

The faces are stored rows with random unit embeddings (no picture is needed to erase faces)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from _faces import random_faces
from frugalsense.analyze import Analyzer
from frugalsense.faces import FaceGallery
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, Erased, SQLiteStore


@pytest.mark.parametrize("what", ["collection", "tenant"])
def test_a_large_erasure_goes_in_chunks_while_another_tenant_works(
    settings: Settings, eval_dir: Path, what: str
) -> None:
    photo = eval_dir / "faces-deepface" / "images" / "img1.jpg"
    settings = settings.model_copy(update={"erase_chunk_faces": 1000})
    store = SQLiteStore.open(settings)
    gallery = FaceGallery(store, Analyzer(settings))
    assert gallery.erase_chunk == 1000  # FRUGALSENSE_ERASE_CHUNK_FACES
    big = store.create_tenant("big").id
    crowd = gallery.create_collection(big, "crowd").id
    regular = gallery.create_person(big, crowd, "Regular")
    store.add_faces(big, random_faces(500, 1, collection_id=crowd, person_id=regular.id, enrolled=True))
    store.add_faces(big, random_faces(4000, 2, collection_id=crowd))
    small = store.create_tenant("small").id
    door = gallery.create_collection(small, "door").id
    store.add_faces(small, random_faces(30, 3, collection_id=door))
    assert len(gallery.search_faces(big, photo, top_k=5).matches) == 5  # loads its index

    seen: list[dict[str, object]] = []

    def other_tenant_works() -> None:
        # The gallery's lock (recluster) and the store's (every call) must both be free between chunks.
        clusters = gallery.recluster(small)
        seen.append(
            {
                "clusters": len(clusters),
                "small collections": [c.name for c in gallery.list_collections(small)],
                "big collections": gallery.list_collections(big),
            }
        )

    progress: list[Erased] = []
    interleaved: list[bool] = []

    def after_chunk(erased: Erased) -> None:
        progress.append(erased)
        if len(progress) == 1:
            other = threading.Thread(target=other_tenant_works)
            other.start()
            other.join(timeout=30)  # a held lock would keep it waiting until the erasure ends: a deadlock here
            interleaved.append(not other.is_alive())

    if what == "collection":
        erased = gallery.delete_collection(big, crowd, progress=after_chunk)
        assert seen and seen[0]["big collections"] == []  # hidden from the first chunk on
        assert (erased.persons, erased.collections) == (1, 1)
    else:
        erased = gallery.erase_tenant(big, progress=after_chunk)
        assert store.list_tenants() == [store.get_tenant(small)]
    assert interleaved == [True], "another tenant's work waited for the whole erasure"
    assert seen[0]["small collections"] == ["door"]
    assert [len(p.face_ids) for p in progress][:5] == [1000, 2000, 3000, 4000, 4500]
    assert len(erased.face_ids) == 4500
    assert store._rows("SELECT COUNT(*) FROM faces WHERE tenant_id = ?", (big,))[0][0] == 0
    assert gallery.index_loads[small] == 1


def test_an_erasure_cut_short_is_finished_when_the_gallery_next_opens(settings: Settings) -> None:
    store = SQLiteStore.open(settings)
    tenant = store.create_tenant("acme").id
    crowd = store.create_collection(tenant, "crowd").id
    store.add_faces(tenant, random_faces(50, 5, collection_id=crowd))
    store.begin_collection_erasure(tenant, crowd)
    store.erase_collection_chunk(tenant, crowd, limit=20)  # then the process died
    store.close()

    gallery = FaceGallery(SQLiteStore(Path(settings.data_dir / DB_FILENAME)), Analyzer(settings))
    assert gallery.store.erasing_collections() == []
    assert gallery.list_collections(tenant) == [] and gallery.list_faces(tenant) == []
