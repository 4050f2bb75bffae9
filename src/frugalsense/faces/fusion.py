"""The face-verification ladder: SFace decides alone unless its similarity falls in a calibrated uncertain band;
then dlib's ResNet embeds both faces too and a fused score decides.

Both steps are calibrated, not hand-set: SFace's cosine similarity becomes the probability that two faces are one
person through a logistic fit on calibration pairs, and the fused score is a logistic model over both cosines.
A pair's confidence is the probability of SFace's own answer, ``max(p, 1 - p)``; the ladder threshold on that
confidence (chosen by `frugalsense.calibration.ltt`) is the band: pairs below it climb.

    >>> fusion = FaceFusion(sface=(20.0, -7.0), fused=(12.0, 14.0, -9.0), band=0.9)
    >>> round(fusion.sface_threshold, 3)
    0.35
    >>> fusion.climbs(0.36), fusion.climbs(0.8)
    (True, False)
    >>> fusion.decide(0.8), fusion.decide(0.36, 0.2)
    (True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.faces.profile import load_face_profile
from frugalsense.profiles import Profile, load_profile

__all__ = ["FACES_TASK", "RUNGS", "FaceFusion", "IdentifyLadder", "load_fusion"]

FACES_TASK = "faces-verify"
RUNGS = ["sface", "sface+dlib-resnet"]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FaceFusion:
    """SFace's calibrated probability, the band where it is unsure, and the fusion with dlib."""

    sface: tuple[float, float]  # logistic (slope, intercept) on SFace's cosine similarity
    fused: tuple[float, float, float]  # logistic (SFace weight, dlib weight, intercept) on the two cosines
    band: float  # a pair climbs when SFace's confidence max(p, 1 - p) is below this
    identify: IdentifyLadder | None = None  # the 1:N side, when the profile holds one

    def __post_init__(self) -> None:
        if self.sface[0] <= 0:
            raise ConfigurationError("face fusion: SFace's slope must be positive (more similar, more likely)")

    def sface_probability(self, similarity: float) -> float:
        return _sigmoid(self.sface[0] * similarity + self.sface[1])

    def confidence(self, similarity: float) -> float:
        p = self.sface_probability(similarity)
        return max(p, 1.0 - p)

    def climbs(self, similarity: float) -> bool:
        """True when SFace alone is not sure enough and dlib must look too."""
        return self.confidence(similarity) < self.band

    def fused_probability(self, sface_similarity: float, dlib_similarity: float) -> float:
        w1, w2, b = self.fused
        return _sigmoid(w1 * sface_similarity + w2 * dlib_similarity + b)

    def decide(self, sface_similarity: float, dlib_similarity: float | None = None) -> bool:
        """Same person? With a dlib similarity the fused score decides, else SFace's alone."""
        if dlib_similarity is None:
            return self.sface_probability(sface_similarity) >= 0.5
        return self.fused_probability(sface_similarity, dlib_similarity) >= 0.5

    @property
    def sface_threshold(self) -> float:
        """The SFace similarity where "same" and "different" are equally likely."""
        return -self.sface[1] / self.sface[0]

    @property
    def band_edges(self) -> tuple[float, float]:
        """SFace similarities between which pairs climb (empty when the band is 0.5 or less)."""
        if self.band <= 0.5:
            return (self.sface_threshold, self.sface_threshold)
        if self.band >= 1.0:
            return (-math.inf, math.inf)
        half = math.log(self.band / (1.0 - self.band)) / self.sface[0]
        return (self.sface_threshold - half, self.sface_threshold + half)

    def to_params(self) -> dict[str, Any]:
        lo, hi = self.band_edges
        return {
            "sface_logistic": list(self.sface),
            "fused_logistic": list(self.fused),
            "sface_threshold": round(self.sface_threshold, 4),
            "band_similarity": [round(lo, 4), round(hi, 4)],
        }

    @classmethod
    def from_profile(cls, profile: Profile, *, identify_threshold: float) -> FaceFusion:
        """The ladder of a ``faces-verify`` profile; its 1:N side decides around ``identify_threshold`` (the
        ``faces-identify`` profile's, stored there only)."""
        try:
            a, b = (float(v) for v in profile.params["sface_logistic"])
            w1, w2, c = (float(v) for v in profile.params["fused_logistic"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{profile.task} profile lacks its fusion parameters ({exc}); recalibrate"
            ) from exc
        if profile.rungs != RUNGS:
            raise ConfigurationError(f"{profile.task} profile must have rungs {RUNGS}, not {profile.rungs}")
        identify = profile.params.get("identify")
        return cls(
            sface=(a, b),
            fused=(w1, w2, c),
            band=float(profile.thresholds[0]),
            identify=(
                IdentifyLadder.from_params(identify, identify_threshold) if isinstance(identify, dict) else None
            ),
        )


def load_fusion(profile_dir: Path | None = None, *, identify_threshold: float | None = None) -> FaceFusion:
    """The face-verification ladder of the user's profile folder, else the shipped one. Its 1:N side uses
    ``identify_threshold``, by default the one of the same folder's ``faces-identify`` profile."""
    if identify_threshold is None:
        identify_threshold = load_face_profile(profile_dir).identify_threshold
    return FaceFusion.from_profile(load_profile(FACES_TASK, profile_dir), identify_threshold=identify_threshold)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


# -- identification (1:N) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentifyLadder:
    """The 1:N side of the face ladder: a probe climbs to dlib only when its best SFace score is unsure.

    ``threshold`` is the gallery's SFace identify threshold (a false-accept rate on impostor pairs; stored in the
    ``faces-identify`` profile, not with the band). When the best
    person's SFace similarity lies in ``band`` (an interval around that threshold), dlib embeds the probe and the
    top persons are re-scored with the fused logit ``w1 * sface + w2 * dlib + b``, accepted at ``fused_threshold``
    (calibrated at the same false-accept rate). The re-score is expressed on SFace's similarity scale,
    ``threshold + (logit - fused_threshold) / w1``, so the gallery's margin rule applies unchanged.

        >>> ladder = IdentifyLadder(0.36, fused=(25.0, 20.0, -26.0), fused_threshold=0.0, band=(0.3, 0.45))
        >>> ladder.climbs(0.40), ladder.climbs(0.6)
        (True, False)
        >>> round(ladder.rescore(0.40, 0.9), 3) > 0.36, round(ladder.rescore(0.40, 0.5), 3) < 0.36
        (True, True)
    """

    threshold: float
    fused: tuple[float, float, float]
    fused_threshold: float
    band: tuple[float, float]

    def climbs(self, best_similarity: float) -> bool:
        lo, hi = self.band
        return lo <= best_similarity < hi

    def logit(self, sface_similarity: float, dlib_similarity: float) -> float:
        w1, w2, b = self.fused
        return w1 * sface_similarity + w2 * dlib_similarity + b

    def rescore(self, sface_similarity: float, dlib_similarity: float) -> float:
        """The fused evidence as an SFace-like similarity: at or above ``threshold`` exactly when fused accepts."""
        excess = self.logit(sface_similarity, dlib_similarity) - self.fused_threshold
        return self.threshold + excess / self.fused[0]

    def to_params(self) -> dict[str, Any]:
        """What the ``faces-verify`` profile keeps: all but the threshold, which ``faces-identify`` holds."""
        return {
            "fused_logistic": list(self.fused),
            "fused_threshold": round(self.fused_threshold, 6),
            "band_similarity": [round(self.band[0], 4), round(self.band[1], 4)],
        }

    @classmethod
    def from_params(cls, params: dict[str, Any], threshold: float) -> IdentifyLadder:
        """The ladder of a profile's ``params.identify`` around the gallery's identify ``threshold``."""
        try:
            w1, w2, b = (float(v) for v in params["fused_logistic"])
            lo, hi = (float(v) for v in params["band_similarity"])
            ladder = cls(float(threshold), (w1, w2, b), float(params["fused_threshold"]), (lo, hi))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"the identification ladder's parameters are incomplete ({exc}); recalibrate"
            ) from exc
        if w1 <= 0:
            raise ConfigurationError("identification ladder: the SFace weight must be positive")
        return ladder
