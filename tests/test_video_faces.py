"""Faces in a video: one sighting per person per video, with when they are seen, in a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from frugalsense.search import SearchService
from frugalsense.settings import Settings

WIDTH, HEIGHT, FPS = 480, 360, 2.0
ADA, BEA = "img1.jpg", "img3.jpg"  # faces-deepface: Angelina and Jennifer
ADA_ENROLMENT = "img4.jpg"  # another photo of Angelina


def _fit(path: Path, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The photo scaled to fit in width x height, centred on black (BGR)."""
    photo = cv2.imread(str(path))
    assert photo is not None, path
    scale = min(width / photo.shape[1], height / photo.shape[0])
    small = cv2.resize(
        photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def _write_video(path: Path, faces: Path) -> None:
    """18 s at 2 frames a second: Ada alone 0-6 s, Ada and Bea side by side 6-10 s, Bea alone 10-14 s, Ada
    alone again 14-18 s. Sampled every 2 s, that is 9 frames and 11 detected faces of 2 people."""
    ada, bea = _fit(faces / ADA, WIDTH, HEIGHT), _fit(faces / BEA, WIDTH, HEIGHT)
    both = np.hstack([_fit(faces / ADA, WIDTH // 2, HEIGHT), _fit(faces / BEA, WIDTH // 2, HEIGHT)])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MPEG-4 here"
    for picture, seconds in ((ada, 6), (both, 4), (bea, 4), (ada, 4)):
        for _ in range(int(seconds * FPS)):
            writer.write(picture)
    writer.release()


@pytest.fixture()
def service(settings: Settings) -> Iterator[SearchService]:
    with SearchService.open(settings) as svc:
        yield svc


def test_a_video_stores_one_sighting_per_person_with_when_they_are_seen(
    service: SearchService, eval_dir: Path, tmp_path: Path
) -> None:
    faces = eval_dir / "faces-deepface" / "images"
    video = tmp_path / "garden.mp4"
    _write_video(video, faces)
    tenant = service.store.create_tenant("family").id
    people = service.gallery.create_collection(tenant, service.settings.search_collection)
    ada = service.gallery.create_person(tenant, people.id, "Ada")
    service.gallery.enrol(tenant, ada.id, faces / ADA_ENROLMENT)

    outcome = service.index(tenant, video)
    assert outcome.status == "added" and outcome.modality == "video", outcome
    assert outcome.item_id is not None
    item = service.get_item(tenant, outcome.item_id)
    assert item["pages"] == 9
    assert len(item["faces"]) == 2, item["faces"]
    sightings = [f for f in service.gallery.list_faces(tenant) if not f.enrolled]
    assert sorted(f.id for f in sightings) == sorted(f["face_id"] for f in item["faces"])

    recorded = [face for page in item["result"]["pages"] for face in page.get("faces") or []]
    assert len(recorded) == 2
    by_decision = {face["decision"]: face for face in recorded}
    assert set(by_decision) == {ada.id, "unknown"}
    seen_ada, seen_bea = by_decision[ada.id], by_decision["unknown"]
    assert seen_ada["spans"] == [[0.0, 8.0], [14.0, 16.0]]
    assert (seen_ada["first_seen_s"], seen_ada["last_seen_s"], seen_ada["frames"]) == (0.0, 16.0, 7)
    assert seen_bea["spans"] == [[6.0, 12.0]] and seen_bea["frames"] == 4
    assert seen_bea["cluster_id"]

    found = service.search(tenant, "", filters=service.filters(tenant, person="Ada"))
    assert [h.item.id for h in found.hits] == [outcome.item_id]
    assert any(r.kind == "face" and r.person_id == ada.id for r in found.hits[0].reasons)
    by_cluster = service.search(tenant, "", filters=service.filters(tenant, person=seen_bea["cluster_id"]))
    assert [h.item.id for h in by_cluster.hits] == [outcome.item_id]
