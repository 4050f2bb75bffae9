"""Face galleries: enrol, identify with an honest "unknown", corrections, search back, clusters, erasure.

>>> from frugalsense.faces import load_face_profile
>>> profile = load_face_profile()
>>> profile.identify_threshold < profile.strict_threshold
True
"""

from __future__ import annotations

from frugalsense.faces.clusters import Cluster
from frugalsense.faces.compare import FaceComparer
from frugalsense.faces.gallery import FaceGallery, Source, decide
from frugalsense.faces.index import Hit, VectorIndex
from frugalsense.faces.profile import FaceProfile, OperatingPoint, load_face_profile
from frugalsense.faces.results import (
    UNKNOWN,
    Candidate,
    ComparedFace,
    CompareResult,
    CorrectionResult,
    EnrolResult,
    FaceMatch,
    IdentifiedFace,
    IdentifyResult,
    SearchResult,
)

__all__ = [
    "UNKNOWN",
    "Candidate",
    "Cluster",
    "CompareResult",
    "ComparedFace",
    "CorrectionResult",
    "EnrolResult",
    "FaceComparer",
    "FaceGallery",
    "FaceMatch",
    "FaceProfile",
    "Hit",
    "IdentifiedFace",
    "IdentifyResult",
    "OperatingPoint",
    "SearchResult",
    "Source",
    "VectorIndex",
    "decide",
    "load_face_profile",
]
