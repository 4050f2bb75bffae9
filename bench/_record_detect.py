"""Run YuNet once at every candidate copy size on every photo; cache the faces found and the CPU each pass cost.

    python bench/_record_detect.py        # resumes from bench/out/detect_raw.json

Photos: faces-detect (43 labelled, mostly small faces), faces-deepface (61 large web photos, one or more faces
each), faces-gallery, LFW portraits, and photos without a labelled face (ImageNet, COCO, scikit-image).
`table()` replays any choice of rungs from these passes, so the ladder's sizes can be chosen without
running the detector again.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import _data
from frugalsense.calibration.ltt import CalibrationTable
from frugalsense.faces.detect import copy_scale, detect_confidence, merge_faces
from frugalsense.media import load
from frugalsense.models.faces import YuNetDetector
from frugalsense.models.registry import ModelZoo
from frugalsense.results import Box, Face
from frugalsense.settings import Settings

OUT = Path(__file__).resolve().parent / "out" / "detect_raw.json"
SIDES = (160, 240, 320, 480, 640, 960, 1280)

Item = tuple[str, Path, list[tuple[float, float, float, float]] | None]


def items() -> Iterator[Item]:
    base = _data.eval_dir()
    for path, boxes in sorted(_data.face_boxes().items()):
        yield f"detect/{path.name}", path, boxes
    for path in sorted(_data.deepface_identities()):
        yield f"deepface/{path.name}", path, None
    for path in sorted((base / "faces-gallery").rglob("*.jp*g")):
        yield f"gallery/{path.name}", path, None
    seen: set[Path] = set()
    for pair in _data.lfw_pairs()[::4]:
        if pair.a not in seen:
            seen.add(pair.a)
            yield f"lfw/{pair.a.name}", pair.a, None
    for path, _ in _data.imagenet_sample()[::5]:
        yield f"imagenet/{path.name}", path, None
    for path in sorted((base / "detect-coco-tiny").rglob("*.jpg")):
        yield f"coco/{path.name}", path, None
    for path in sorted((base / "captions-skimage" / "images").glob("*")):
        yield f"skimage/{path.name}", path, None


def _row(face: Face) -> list[float]:
    b = face.box
    return [b.x, b.y, b.w, b.h, face.score, *(c for p in face.landmarks for c in p)]


def _face(row: Sequence[float]) -> Face:
    marks = [(float(row[5 + 2 * i]), float(row[6 + 2 * i])) for i in range(5)]
    return Face(Box(*(float(v) for v in row[:4])), marks, float(row[4]))


def record() -> None:
    settings = Settings()
    detector = ModelZoo(settings).get("yunet-int8")
    assert isinstance(detector, YuNetDetector)
    detector.load()
    done: dict[str, Any] = json.loads(OUT.read_text()) if OUT.is_file() else {}
    todo = [it for it in items() if it[0] not in done]
    for i, (key, path, boxes) in enumerate(todo):
        frame = load(path, settings).frames[0]
        bgr = frame.bgr()
        passes = {}
        for side in SIDES:
            # Median of three runs: single passes take milliseconds and the machine is shared.
            cpus = []
            for _ in range(3):
                start = time.thread_time()
                faces = detector.detect_at(bgr, side)
                cpus.append(time.thread_time() - start)
            passes[str(side)] = {"faces": [_row(f) for f in faces], "cpu": float(np.median(cpus))}
        done[key] = {"shape": [frame.height, frame.width], "boxes": boxes, "passes": passes}
        if i % 25 == 24 or i == len(todo) - 1:
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(done))
            print(f"{len(done)} recorded", file=sys.stderr)


def load_raw() -> dict[str, Any]:
    if not OUT.is_file():
        raise SystemExit(f"{OUT} missing: run python bench/_record_detect.py")
    data: dict[str, Any] = json.loads(OUT.read_text())
    return data


# -- replaying a ladder over the passes ---------------------------------------------------------------------


def replay(
    rec: dict[str, Any], sides: Sequence[int], full_size_px: float
) -> list[tuple[list[Face], float, float]]:
    """Per rung: merged faces, confidence and that rung's own CPU, as `ScaleRung` would produce them."""
    shape = rec["shape"]
    out: list[tuple[list[Face], float, float]] = []
    kept: list[Face] = []
    for i, side in enumerate(sides):
        scale = copy_scale(shape, side)
        if any(copy_scale(shape, s) >= scale for s in sides[:i]):
            out.append((kept, 1.0, 0.0))
            continue
        found = [_face(r) for r in rec["passes"][str(side)]["faces"]]
        kept = merge_faces(kept, found)
        out.append((kept, detect_confidence(kept, scale, full_size_px), rec["passes"][str(side)]["cpu"]))
    return out


def labelled_recall(faces: Sequence[Face], boxes: Sequence[tuple[float, float, float, float]]) -> float:
    """Share of labelled faces whose centre lies inside a distinct detected box (dlib's boxes are tight)."""
    used: set[int] = set()
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        for i, f in enumerate(faces):
            b = f.box
            if i not in used and b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h:
                used.add(i)
                break
    return len(used) / max(1, len(boxes))


def agreement(faces: Sequence[Face], reference: Sequence[Face]) -> float:
    """Share of the reference's faces found again (IoU above 0.3); 1 when the reference found none."""
    if not reference:
        return 1.0
    return sum(any(f.box.iou(r.box) > 0.3 for f in faces) for r in reference) / len(reference)


def reference_faces(rec: dict[str, Any]) -> list[Face]:
    """Every pass merged: the strongest answer the detector can give on this photo."""
    kept: list[Face] = []
    for side in SIDES:
        kept = merge_faces(kept, [_face(r) for r in rec["passes"][str(side)]["faces"]])
    return kept


def table(records: dict[str, Any], sides: Sequence[int], full_size_px: float) -> CalibrationTable:
    """Quality: recall of labelled faces where labels exist, else agreement with every pass merged."""
    conf, qual, cpu = [], [], []
    for rec in records.values():
        steps = replay(rec, sides, full_size_px)
        reference = None if rec["boxes"] else reference_faces(rec)
        row_q = []
        for faces, _, _ in steps:
            if rec["boxes"]:
                row_q.append(labelled_recall(faces, rec["boxes"]))
            else:
                assert reference is not None
                row_q.append(agreement(faces, reference))
        conf.append([c for _, c, _ in steps[:-1]] + [1.0])
        qual.append(row_q)
        cpu.append([c for _, _, c in steps])
    return CalibrationTable([f"yunet@{s}" for s in sides], np.array(conf), np.array(qual), np.array(cpu))


if __name__ == "__main__":
    record()
