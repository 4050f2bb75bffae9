"""The gallery's face thresholds, a typed view of the ``faces-identify`` profile.

Every number lives once, in the ``params`` of ``data/profiles/faces-identify.json`` (or the user's copy in
``Settings.profile_dir``, which wins), read by `frugalsense.profiles.load_profile` like every other profile.
``bench/calibrate_faces.py`` measures them on ``../shared/eval`` and writes that file; how a threshold is chosen
(`frugalsense.calibration.faces.operating_point`) is offline code the server never imports.

    >>> profile = load_face_profile()
    >>> profile.model, profile.identify_threshold
    ('sface', 0.364)
    >>> 0 < profile.identify_threshold < profile.strict_threshold < 1
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frugalsense.errors import ConfigurationError
from frugalsense.profiles import Profile, load_profile, profile_location

__all__ = ["IDENTIFY_TASK", "FaceProfile", "OperatingPoint", "load_face_profile"]

#: the profile task holding the gallery's thresholds
IDENTIFY_TASK = "faces-identify"
#: params key -> FaceProfile field
_THRESHOLDS = {
    "identify": "identify_threshold",
    "strict": "strict_threshold",
    "compare": "compare_threshold",
    "margin": "margin",
    "near_duplicate": "near_duplicate",
    "cluster": "cluster_threshold",
}


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it does on the calibration pairs."""

    far: float  # the false-accept rate asked for
    threshold: float
    tar: float  # share of genuine pairs accepted
    measured_far: float  # share of impostor pairs accepted (<= far)
    false_accepts: int
    impostor_pairs: int
    genuine_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaceProfile:
    """Calibrated face thresholds for one embedding model.

    - ``identify_threshold``: a probe is a person only at or above this similarity (default FAR 1e-3).
    - ``strict_threshold``: the same at FAR 1e-4, for callers who prefer "unknown" to a rare wrong name.
    - ``compare_threshold``: best-accuracy threshold for one-to-one verification (balanced pairs).
    - ``margin``: the best person must beat the second-best person by this much, else the answer is "unknown".
    - ``near_duplicate``: a probe this similar to a face corrected as "not X" is never answered X.
    - ``cluster_threshold``: an unknown face joins a cluster when this similar to one of its members.
    """

    model: str
    identify_threshold: float
    strict_threshold: float
    compare_threshold: float
    margin: float
    near_duplicate: float
    cluster_threshold: float
    operating_points: list[OperatingPoint] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("identify_threshold", "strict_threshold", "compare_threshold", "near_duplicate"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise ConfigurationError(
                    f"face profile: {name} must be a cosine similarity in [-1, 1], got {value}"
                )
        if not 0.0 <= self.margin < 1.0:
            raise ConfigurationError(f"face profile: margin must be in [0, 1), got {self.margin}")

    @classmethod
    def from_profile(cls, profile: Profile) -> FaceProfile:
        """The typed view of a ``faces-identify`` profile; `ConfigurationError` names what is missing or wrong."""
        if profile.task != IDENTIFY_TASK:
            raise ConfigurationError(f"a face profile has task {IDENTIFY_TASK!r}, not {profile.task!r}")
        params = profile.params
        try:
            values = {name: float(params[key]) for key, name in _THRESHOLDS.items()}
            points = [OperatingPoint(**p) for p in params.get("operating_points", [])]
            model = str(params["model"])
        except KeyError as exc:
            raise ConfigurationError(f"params lacks {exc}; run bench/calibrate_faces.py") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"params are malformed ({exc}); run bench/calibrate_faces.py") from exc
        return cls(model=model, operating_points=points, provenance=dict(profile.calibration), **values)

    def to_profile(self) -> Profile:
        """The ``faces-identify`` profile holding these thresholds (what `bench/calibrate_faces.py` writes)."""
        params: dict[str, Any] = {"model": self.model}
        params.update({key: getattr(self, name) for key, name in _THRESHOLDS.items()})
        params["operating_points"] = [p.to_dict() for p in self.operating_points]
        return Profile(IDENTIFY_TASK, [], [], params=params, calibration=dict(self.provenance))


def load_face_profile(profile_dir: Path | None = None) -> FaceProfile:
    """The face thresholds of the user's profile folder, else the shipped ones."""
    profile = load_profile(IDENTIFY_TASK, profile_dir)
    try:
        return FaceProfile.from_profile(profile)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{profile_location(IDENTIFY_TASK, profile_dir)}: {exc}") from exc
