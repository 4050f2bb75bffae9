"""Receipts count all the CPU identification spends against a large gallery, the vector products included.

A real FaceGallery on a real SQLite file holds 100,000 stored faces (random unit embeddings, 20 enrolled
persons); a real photo is identified through the real detector and embedder many times. The receipts' CPU-seconds
must come to the process's CPU time over the same calls: a product that ran in BLAS threads of its own would
leave a large share of the match stage off every receipt (the thread clock does not see those threads).
"""

from __future__ import annotations

import time
from pathlib import Path

from _faces import random_faces
from frugalsense.analyze import Analyzer
from frugalsense.faces import FaceGallery
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore

FACES = 100_000
PERSONS = 20
CALLS = 40


def test_identify_receipts_add_up_to_the_process_cpu_at_100k_faces(settings: Settings, eval_dir: Path) -> None:
    photo = (eval_dir / "faces-deepface" / "images" / "img25.jpg").read_bytes()
    store = SQLiteStore.open(settings)
    gallery = FaceGallery(store, Analyzer(settings))
    tenant = store.create_tenant("big").id
    crowd = gallery.create_collection(tenant, "crowd").id
    for number in range(PERSONS):
        person = gallery.create_person(tenant, crowd, f"Person {number}").id
        faces = random_faces(FACES // PERSONS, number, collection_id=crowd, person_id=person, enrolled=True)
        store.add_faces(tenant, faces)
    first = gallery.identify(tenant, crowd, photo, keep=False)  # loads the models and the index
    assert first.faces, "the photo shows a face"
    assert gallery.index_loads[tenant] == 1

    receipts = 0.0
    match = 0.0
    started = time.process_time()
    for _ in range(CALLS):
        result = gallery.identify(tenant, crowd, photo, keep=False)
        receipts += result.receipt.cpu_seconds
        match += sum(s.cpu_s for s in result.receipt.stages if s.stage == "match")
    process = time.process_time() - started

    assert match > 0.0
    share = receipts / process
    assert 0.9 <= share <= 1.1, f"receipts {receipts:.3f} CPU-s, process {process:.3f} CPU-s ({share:.2f})"
