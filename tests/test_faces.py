"""Faces on real photos: found where they are, not on animals; same people score above different people."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.models.faces import cosine
from frugalsense.quality import best_threshold_accuracy
from frugalsense.settings import Settings


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def _faces(analyzer: Analyzer, path: Path, *, embed: bool = False) -> list:  # type: ignore[type-arg]
    frame = load(path, analyzer.settings).frames[0]
    return analyzer.faces(frame, Meter(0.05), embed=embed)


def test_faces_found_where_the_labels_put_them(analyzer: Analyzer, eval_dir: Path) -> None:
    """Recall of labelled faces (matched by centre inside the detected box: dlib's boxes are tight)."""
    truth: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    with open(eval_dir / "faces-detect" / "boxes.csv") as f:
        for row in csv.DictReader(f):
            truth[row["file"]].append((float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"])))
    found = total = false_alarms = 0
    for name, boxes in truth.items():
        faces = _faces(analyzer, eval_dir / "faces-detect" / "images" / name)
        matched = set()
        for x, y, w, h in boxes:
            cx, cy = x + w / 2, y + h / 2
            for i, face in enumerate(faces):
                b = face.box
                if i not in matched and b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h:
                    matched.add(i)
                    found += 1
                    break
        total += len(boxes)
        false_alarms += len(faces) - len(matched)
    # Measured: 43 of 43 faces found, 0 false alarms.
    assert found / total >= 0.9, f"found {found} of {total} labelled faces"
    assert false_alarms <= 2


@pytest.mark.parametrize(
    ("folder", "name", "most"),
    [
        ("captions-skimage/images", "chelsea.png", 0),
        ("captions-skimage/images", "coffee.png", 0),
        ("captions-skimage/images", "rocket.jpg", 0),
        # Four dogs; one looks straight at the camera with a very human layout and scores 0.86: a known
        # false alarm of YuNet that we report rather than tune the threshold around.
        ("faces-detect/images", "dogs.jpg", 1),
    ],
)
def test_no_face_on_animals_and_objects(
    analyzer: Analyzer, eval_dir: Path, folder: str, name: str, most: int
) -> None:
    assert len(_faces(analyzer, eval_dir / folder / name)) <= most


def test_landmarks_sit_inside_the_face(analyzer: Analyzer, eval_dir: Path) -> None:
    (face,) = _faces(analyzer, eval_dir / "captions-skimage" / "images" / "astronaut.png")
    b = face.box
    for x, y in face.landmarks:
        assert b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h
    right_eye, left_eye = face.landmarks[0], face.landmarks[1]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the picture's left


def test_lfw_same_pairs_score_above_different_pairs(analyzer: Analyzer, eval_dir: Path) -> None:
    """200 pairs of LFW fold 1 (100 same, 100 different) with SFace int8."""
    with open(eval_dir / "faces-lfw" / "pairs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    same = [r for r in rows if r["same"] == "1"][:100]
    different = [r for r in rows if r["same"] == "0"][:100]
    cache: dict[str, np.ndarray] = {}

    def embedding(file: str) -> np.ndarray:
        if file not in cache:
            faces = _faces(analyzer, eval_dir / "faces-lfw" / "images" / file, embed=True)
            assert faces, f"no face found in {file}"
            # LFW's labelled face is the one nearest the centre of the 250x250 crop.
            face = min(
                faces, key=lambda fc: abs(fc.box.x + fc.box.w / 2 - 125) + abs(fc.box.y + fc.box.h / 2 - 125)
            )
            cache[file] = face.embedding
        return cache[file]

    scores = [cosine(embedding(r["file_x"]), embedding(r["file_y"])) for r in same + different]
    labels = [1] * len(same) + [0] * len(different)
    accuracy, _ = best_threshold_accuracy(scores, labels)
    assert np.mean(scores[:100]) > np.mean(scores[100:]) + 0.3
    assert accuracy >= 0.97
    # SFace's published cosine threshold separates them too.
    at_published = np.mean([(s >= 0.363) == bool(y) for s, y in zip(scores, labels, strict=True)])
    assert at_published >= 0.95


def test_dlib_second_opinion_agrees_on_identity(analyzer: Analyzer, eval_dir: Path) -> None:
    dlib = analyzer.zoo.get("dlib-resnet")
    images = eval_dir / "faces-lfw" / "images"
    with open(eval_dir / "faces-lfw" / "pairs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    pair_same = next(r for r in rows if r["same"] == "1")
    pair_diff = next(r for r in rows if r["same"] == "0")

    def vec(file: str) -> np.ndarray:
        frame = load(images / file, analyzer.settings).frames[0]
        face = analyzer.faces(frame, Meter(0.05), embed=False)[0]
        return dlib.predict([(frame.bgr(), face)])[0]  # type: ignore[no-any-return]

    same = cosine(vec(pair_same["file_x"]), vec(pair_same["file_y"]))
    diff = cosine(vec(pair_diff["file_x"]), vec(pair_diff["file_y"]))
    assert same > diff
    assert same > 0.9  # dlib's distance threshold 0.6 on unit vectors is cosine 0.82


def test_detection_runs_in_several_threads_at_once_with_the_same_answers(
    analyzer: Analyzer, eval_dir: Path
) -> None:
    """YuNet keeps its input size as state: each thread has its own detector, so a large picture's detection in
    one request never holds up another request's photo (seen in bench/abuse.py: a page's two passes, 0.1 s each
    under one shared lock, tripled another tenant's identify time), and threads still get what one thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    from frugalsense.models.faces import YuNetDetector

    detector = analyzer.zoo.get("yunet-int8")
    assert isinstance(detector, YuNetDetector)
    photos = sorted((eval_dir / "faces-detect").rglob("*.jpg"))[:8]
    assert len(photos) == 8
    frames = [load(p.read_bytes(), analyzer.settings).frames[0].bgr() for p in photos]
    alone = [detector.detect_at(bgr, 640) for bgr in frames]
    used: set[int] = set()

    def detect(i: int) -> list:  # type: ignore[type-arg]
        used.add(id(detector._det._detector()))  # the runtime's detector for this thread
        return detector.detect_at(frames[i % len(frames)], 640)

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(detect, range(4 * len(frames))))
    assert [[f.box for f in faces] for faces in together] == [[f.box for f in faces] for faces in alone] * 4
    assert len(used) > 1
