"""One-to-one: are the largest faces of two pictures the same person (the verification ladder climbs to dlib
only for pairs SFace is unsure of)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from frugalsense.faces._base import GalleryBase, check_threshold, pick_face
from frugalsense.faces.results import CompareResult
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame, Source
from frugalsense.results import Face

__all__ = ["Comparison", "face_patch"]


class Comparison(GalleryBase):
    """`FaceGallery.compare`."""

    def compare(self, source_a: Source, source_b: Source, *, threshold: float | None = None) -> CompareResult:
        """Are the largest faces of two pictures the same person? Nothing is stored."""
        limit = check_threshold(threshold, self.profile.compare_threshold)
        meter = Meter(self.settings.price_per_cpu_hour)
        chosen, patches = [], []
        for label, source in (("the first picture", source_a), ("the second picture", source_b)):
            frame, decoded_name, _ = self._decode(source, meter, None)
            face = pick_face(self._faces(frame, meter), None, decoded_name, largest=True, label=label)
            chosen.append(face)
            # Only the region around the face is kept for a climb to dlib: two whole pictures are never held.
            patches.append(face_patch(frame, face))
            del frame
        a, b = chosen
        assert a.embedding is not None and b.embedding is not None
        similarity = float(np.dot(a.embedding, b.embedding))
        same = similarity >= limit
        # The verification ladder: only a pair SFace is unsure of (inside the calibrated band) climbs to dlib,
        # and then the fused score decides. A caller's own threshold means SFace alone, as asked.
        if threshold is None and self.fusion is not None and self.fusion.climbs(similarity):
            dlib = self.analyzer.zoo.get("dlib-resnet")
            first, second = dlib.predict(patches, meter)
            same = self.fusion.decide(similarity, float(np.dot(first, second)))
        return CompareResult(similarity, same, limit, a.box, b.box, meter.receipt)


def face_patch(frame: Frame, face: Face, margin: float = 1.0) -> tuple[npt.NDArray[np.uint8], Face]:
    """The region around `face` (its box grown by `margin` of its size on every side, within the picture) in
    OpenCV's channel order, and the face placed in that region: all a second embedding model looks at.

    >>> import numpy as np
    >>> from frugalsense.results import Box
    >>> face = Face(Box(100, 50, 20, 30), [(110.0, 60.0)] * 5, 0.9)
    >>> patch, moved = face_patch(Frame(np.zeros((400, 300, 3), np.uint8)), face)
    >>> patch.shape, moved.box, moved.landmarks[0]
    ((90, 60, 3), Box(x=20.0, y=30.0, w=20, h=30), (30.0, 40.0))
    """
    box = face.box
    left = max(0, int(box.x - margin * box.w))
    top = max(0, int(box.y - margin * box.h))
    right = min(frame.width, int(np.ceil(box.x + (1 + margin) * box.w)))
    bottom = min(frame.height, int(np.ceil(box.y + (1 + margin) * box.h)))
    patch = np.ascontiguousarray(frame.pixels[top:bottom, left:right, ::-1])
    moved = replace(
        face,
        box=replace(box, x=float(box.x - left), y=float(box.y - top)),
        landmarks=[(float(x - left), float(y - top)) for x, y in face.landmarks],
    )
    return patch, moved
