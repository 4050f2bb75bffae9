"""The face-detection ladder: YuNet on a small copy first, larger copies only when the small one is not enough.

YuNet misses large faces at full resolution and tiny faces on a small copy, so no single scale serves every
photo. Each rung runs one pass on a copy no longer than its side and adds the faces it finds to those found
below it. A rung is sure of its answer when it found faces and the smallest of them is large in the copy it
looked at: a face small there hints that smaller ones, invisible at that scale, may sit beside it. A rung
that found nothing has no confidence at all, so a photo without faces climbs every rung (each is cheap) and
a rung whose copy would be no larger than the one below it answers at once, for free.

    from frugalsense.ledger import Meter
    from frugalsense.settings import Settings
    from frugalsense.models.registry import ModelZoo
    ladder = face_detect_ladder(ModelZoo(Settings()))
    faces = detect_faces(ladder, frame.bgr(), Meter(0.05))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.ladder.core import Ladder, Outcome
from frugalsense.ledger import Meter
from frugalsense.models.faces import YuNetDetector
from frugalsense.models.registry import ModelZoo
from frugalsense.profiles import Profile, load_profile
from frugalsense.results import Face

__all__ = [
    "TASK",
    "ScaleRung",
    "detect_confidence",
    "detect_faces",
    "face_detect_ladder",
    "merge_faces",
    "rung_side",
]

TASK = "face-detect"
BGR = npt.NDArray[np.uint8]


def rung_side(name: str) -> int:
    """The longest side of the copy a rung named ``yunet@<side>`` looks at.

    >>> rung_side("yunet@320")
    320
    """
    prefix, _, side = name.partition("@")
    if prefix != "yunet" or not side.isdigit():
        raise ConfigurationError(f"face-detect rung {name!r} is not of the form yunet@<side>")
    return int(side)


def copy_scale(shape: Sequence[int], side: int) -> float:
    """Scale of the copy a rung looks at (never enlarged)."""
    return min(1.0, side / max(int(shape[0]), int(shape[1]), 1))


def detect_confidence(faces: Sequence[Face], scale: float, full_size_px: float) -> float:
    """No faces: 0. Else the smallest face's shorter side in the copy, over `full_size_px`, capped at 1.

    >>> from frugalsense.results import Box
    >>> face = Face(Box(0, 0, 120, 150), [(0.0, 0.0)] * 5, 0.9)
    >>> detect_confidence([face], 0.5, 100.0), detect_confidence([], 1.0, 100.0)
    (0.6, 0.0)
    """
    if not faces:
        return 0.0
    smallest = min(min(f.box.w, f.box.h) for f in faces) * scale
    return float(min(1.0, smallest / full_size_px))


def merge_faces(kept: Sequence[Face], new: Sequence[Face], iou: float = 0.3) -> list[Face]:
    """Faces from both lists; where two overlap (IoU above `iou`) the higher-scoring one stays.

    >>> from frugalsense.results import Box
    >>> a = Face(Box(0, 0, 10, 10), [(0.0, 0.0)] * 5, 0.8)
    >>> b = Face(Box(1, 1, 10, 10), [(0.0, 0.0)] * 5, 0.9)
    >>> c = Face(Box(50, 50, 10, 10), [(0.0, 0.0)] * 5, 0.7)
    >>> [f.score for f in merge_faces([a], [b, c])]
    [0.9, 0.7]
    """
    out = list(kept)
    for face in sorted(new, key=lambda f: -f.score):
        clash = [i for i, k in enumerate(out) if k.box.iou(face.box) > iou]
        if not clash:
            out.append(face)
        elif all(out[i].score < face.score for i in clash):
            for i in sorted(clash, reverse=True):
                del out[i]
            out.append(face)
    return out


@dataclass(frozen=True)
class ScaleRung:
    """One YuNet pass on a copy no longer than `side`, merged with the faces found by the rungs below."""

    detector: YuNetDetector
    side: int
    below: tuple[int, ...]  # sides of the rungs below, to know when this copy would be no larger
    full_size_px: float

    @property
    def name(self) -> str:
        return f"yunet@{self.side}"

    def run(self, item: BGR, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[list[Face]]:
        kept: list[Face] = list(previous[-1].output) if previous else []
        scale = copy_scale(item.shape, self.side)
        if any(copy_scale(item.shape, s) >= scale for s in self.below):
            # A rung below already saw a copy at least this large: nothing new to find here.
            return Outcome(output=kept, confidence=1.0, extra={"skipped": True})
        with meter.stage("face-detection", self.detector.name, note=self.name):
            found = self.detector.detect_at(item, self.side)
        faces = merge_faces(kept, found)
        return Outcome(output=faces, confidence=detect_confidence(faces, scale, self.full_size_px))


def face_detect_ladder(zoo: ModelZoo, profile: Profile | None = None) -> Ladder[BGR]:
    """The face-detection ladder of `profile` (default: the user's or the shipped ``face-detect`` profile)."""
    chosen = profile or load_profile(TASK, zoo.settings.profile_dir)
    detector = zoo.get(str(chosen.params.get("detector", "yunet-int8")))
    if not isinstance(detector, YuNetDetector):
        raise ConfigurationError(f"face-detect profile names {detector.name!r}, which is not a YuNet detector")
    full = float(chosen.params.get("full_size_px", 64.0))
    sides = [rung_side(name) for name in chosen.rungs]
    rungs = [ScaleRung(detector, side, tuple(sides[:i]), full) for i, side in enumerate(sides)]
    return Ladder(TASK, rungs, chosen.thresholds)


def detect_faces(ladder: Ladder[BGR], bgr: BGR, meter: Meter) -> list[Face]:
    """Run the face-detection ladder on one BGR picture; every pass lands on `meter`'s receipt."""
    faces: list[Face] = ladder.run(bgr, meter).output
    return faces
