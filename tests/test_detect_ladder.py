"""The face-detection ladder on real photos: large faces stop on the small copy, tiny faces are still found."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.faces.detect import face_detect_ladder, merge_faces
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.profiles import load_profile
from frugalsense.results import Box, Face
from frugalsense.settings import Settings


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def _climb(analyzer: Analyzer, path: Path) -> tuple[list[str], int, Meter]:
    bgr = load(path, analyzer.settings).frames[0].bgr()
    meter = Meter(0.05)
    result = face_detect_ladder(analyzer.zoo).run(bgr, meter)
    return result.climbed, len(result.output), meter


def test_shipped_profile_starts_small() -> None:
    profile = load_profile("face-detect")
    sides = [int(name.split("@")[1]) for name in profile.rungs]
    assert sides == sorted(sides) and sides[0] <= 480
    assert all(t > 0 for t in profile.thresholds)


@pytest.mark.parametrize("name", ["img1.jpg", "img13.jpg"])
def test_large_photo_found_on_the_small_copy_does_not_climb(analyzer: Analyzer, eval_dir: Path, name: str) -> None:
    climbed, found, meter = _climb(analyzer, eval_dir / "faces-deepface" / "images" / name)
    assert found >= 1
    assert len(climbed) == 1
    assert len([s for s in meter.receipt.stages if s.stage == "face-detection"]) == 1


def test_small_picture_pays_for_one_pass_only(analyzer: Analyzer, eval_dir: Path) -> None:
    """A 250 px portrait: the first copy is already full size, so larger rungs answer without running."""
    _, found, meter = _climb(
        analyzer, eval_dir / "faces-lfw" / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    )
    assert found >= 1
    assert len([s for s in meter.receipt.stages if s.stage == "face-detection"]) == 1


def test_tiny_faces_are_still_found(analyzer: Analyzer, eval_dir: Path) -> None:
    truth: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    with open(eval_dir / "faces-detect" / "boxes.csv") as f:
        for row in csv.DictReader(f):
            truth[row["file"]].append((float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"])))
    found = total = 0
    for name, boxes in truth.items():
        frame = load(eval_dir / "faces-detect" / "images" / name, analyzer.settings).frames[0]
        faces = analyzer.faces(frame, Meter(0.05), embed=False)
        used: set[int] = set()
        for x, y, w, h in boxes:
            cx, cy = x + w / 2, y + h / 2
            for i, face in enumerate(faces):
                b = face.box
                if i not in used and b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h:
                    used.add(i)
                    break
        found += len(used)
        total += len(boxes)
    assert total == 43
    assert found >= 41, f"found {found} of {total}"


@pytest.mark.parametrize(
    ("kept_score", "new_score", "expected"),
    [(0.8, 0.9, [0.9, 0.7]), (0.95, 0.9, [0.95, 0.7])],
)
def test_overlapping_faces_keep_the_surer_one(kept_score: float, new_score: float, expected: list[float]) -> None:
    marks = [(0.0, 0.0)] * 5
    kept = [Face(Box(0, 0, 10, 10), marks, kept_score)]
    new = [Face(Box(1, 1, 10, 10), marks, new_score), Face(Box(50, 50, 10, 10), marks, 0.7)]
    assert sorted((f.score for f in merge_faces(kept, new)), reverse=True) == expected
