"""Face galleries: enrol, identify with an honest "unknown", corrections, search back, clusters, erasure.

>>> from frugalsense.faces import FaceProfile
>>> profile = FaceProfile.load()
>>> profile.identify_threshold < profile.strict_threshold
True
"""

from __future__ import annotations

from frugalsense.faces.calibration import FaceProfile, OperatingPoint, operating_point
from frugalsense.faces.clusters import Cluster
from frugalsense.faces.gallery import FaceGallery, Source, decide
from frugalsense.faces.index import Hit, VectorIndex
from frugalsense.faces.results import (
    UNKNOWN,
    Candidate,
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
    "CorrectionResult",
    "EnrolResult",
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
    "operating_point",
]
