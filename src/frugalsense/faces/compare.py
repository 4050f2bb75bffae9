"""One-to-one, as cloud CompareFaces calls answer: the source picture's largest face (or the one chosen by its
index) against every face of the target picture, each with its similarity and decision, and the best match.
The verification ladder climbs to dlib only for the target faces SFace is unsure of. Nothing is stored.

Faces are indexed in the order ``POST /v1/faces/detect`` (and `Analyzer.faces`) lists them: the detector's
order, not by size.

    from frugalsense import Analyzer, Settings
    comparer = FaceComparer.open(Analyzer(Settings()))
    result = comparer.compare("passport.jpg", "team-photo.jpg")
    result.same, result.best_match, [f.similarity for f in result.target_faces]
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError
from frugalsense.faces._base import (
    SECOND_MODEL,
    GalleryBase,
    check_threshold,
    checked_profile,
    decode_first,
    pick_face,
    verification_ladder,
)
from frugalsense.faces.fusion import FaceFusion
from frugalsense.faces.results import ComparedFace, CompareResult
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame, Source
from frugalsense.results import Face

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = ["Comparison", "FaceComparer", "face_patch"]


class FaceComparer:
    """1:1 verification without a gallery: what `FaceGallery.compare` and ``frugalsense compare`` run.

    ``fusion`` is the calibrated SFace -> dlib ladder (``faces-verify``), used when the caller gives no threshold
    of their own: SFace decides at the ladder's own 50% point (`FaceFusion.sface_threshold`) outside the band,
    the fused score inside it, exactly as the ladder was calibrated. ``threshold`` (the ``faces-identify``
    profile's ``compare``) is the SFace similarity for "same" only when there is no ladder (None: another
    embedder)."""

    def __init__(self, analyzer: Analyzer, *, threshold: float, fusion: FaceFusion | None) -> None:
        self.analyzer = analyzer
        self.fusion = fusion
        self.threshold = threshold if fusion is None else round(fusion.sface_threshold, 4)

    @classmethod
    def open(cls, analyzer: Analyzer) -> FaceComparer:
        """With the thresholds and ladder of the analyzer's profile folder (else the shipped ones)."""
        profile = checked_profile(analyzer)
        return cls(
            analyzer,
            threshold=profile.compare_threshold,
            fusion=verification_ladder(analyzer, profile.identify_threshold),
        )

    def compare(
        self, source: Source, target: Source, *, threshold: float | None = None, source_face: int | None = None
    ) -> CompareResult:
        """The source's largest face (or face number ``source_face``) against every face of ``target``."""
        limit = check_threshold(threshold, self.threshold)
        meter = Meter(self.analyzer.settings.price_per_cpu_hour)
        frame, name, _ = decode_first(source, self.analyzer.settings, meter, None)
        found = self.analyzer.faces(frame, meter, embed=False)
        label = f"the source picture ({name})"
        chosen = pick_face(found, source_face, name, largest=True, label=label, option="source_face")
        embedder = self.analyzer.zoo.get(self.analyzer.pipeline.face_embedder)
        (vector,) = embedder.predict([(frame.bgr(), chosen)], meter)
        # Only the region around the source face is kept for a climb to dlib: two whole pictures are never held.
        patch = face_patch(frame, chosen)
        del frame
        frame, name, _ = decode_first(target, self.analyzer.settings, meter, None)
        faces = self.analyzer.faces(frame, meter)
        if not faces:
            raise InvalidRequestError(
                f"no face found in the target picture ({name}); send a photo where the faces are clear and frontal"
            )
        similarities = [float(np.dot(vector, _embedding(face))) for face in faces]
        # The verification ladder, face by face: only a pair SFace is unsure of (inside the calibrated band)
        # climbs to dlib, and then the fused score decides. A caller's own threshold means SFace alone.
        fusion = self.fusion if threshold is None else None
        climbing = [i for i, s in enumerate(similarities) if fusion is not None and fusion.climbs(s)]
        second: dict[int, float] = {}
        if climbing:
            dlib = self.analyzer.zoo.get(SECOND_MODEL).predict(
                [patch, *(face_patch(frame, faces[i]) for i in climbing)], meter
            )
            second = {i: float(np.dot(dlib[0], v)) for i, v in zip(climbing, dlib[1:], strict=True)}
        del frame
        compared = []
        for i, (face, similarity) in enumerate(zip(faces, similarities, strict=True)):
            same = similarity >= limit if fusion is None else fusion.decide(similarity, second.get(i))
            compared.append(ComparedFace(i, face.box, face.score, similarity, same, climbed=i in second))
        index = next(i for i, face in enumerate(found) if face is chosen)
        return CompareResult(limit, chosen.box, index, len(found), compared, meter.receipt)


class Comparison(GalleryBase):
    """`FaceGallery.compare`."""

    def compare(
        self, source: Source, target: Source, *, threshold: float | None = None, source_face: int | None = None
    ) -> CompareResult:
        """The source's largest face (or face number ``source_face``) against every face of ``target``: each
        target face's similarity and decision, and the best match. Nothing is stored."""
        comparer = FaceComparer(self.analyzer, threshold=self.profile.compare_threshold, fusion=self.fusion)
        return comparer.compare(source, target, threshold=threshold, source_face=source_face)


def _embedding(face: Face) -> npt.NDArray[np.float32]:
    assert face.embedding is not None  # Analyzer.faces embeds every face it returns unless told not to
    return face.embedding


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
