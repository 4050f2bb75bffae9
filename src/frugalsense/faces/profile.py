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
    >>> from dataclasses import replace
    >>> sized = replace(profile, by_gallery_size=((10, 0.40), (1000, 0.50)))
    >>> [round(sized.identify_threshold_for(n), 3) for n in (1, 10, 100, 1000, 10**6)]
    [0.364, 0.4, 0.45, 0.5, 0.5]
"""

from __future__ import annotations

import itertools
import math
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
    - ``compare_threshold``: best-accuracy threshold for one-to-one verification (balanced pairs), used by
      compare only without the verification ladder (`faces.fusion`; another embedder than SFace): with it, SFace
      decides at the ladder's own calibrated 50% point.
    - ``margin``: the best person must beat the second-best person by this much, else the answer is "unknown".
    - ``near_duplicate``: a probe this similar to a face corrected as "not X" is never answered X.
    - ``cluster_threshold``: an unknown face joins a cluster when this similar to one of its members.
    - ``by_gallery_size``: (gallery size, threshold) rows, ascending: the identify threshold that keeps the
      chance of naming a stranger (FPIR) at its target for a gallery that size (`identify_threshold_for`; the
      gallery counts its enrolled faces, calibrated with one face per person); empty when not calibrated.
      ``open_set`` records how (``bench/open_set.py``).
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
    by_gallery_size: tuple[tuple[int, float], ...] = ()
    open_set: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("identify_threshold", "strict_threshold", "compare_threshold", "near_duplicate"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise ConfigurationError(
                    f"face profile: {name} must be a cosine similarity in [-1, 1], got {value}"
                )
        if not 0.0 <= self.margin < 1.0:
            raise ConfigurationError(f"face profile: margin must be in [0, 1), got {self.margin}")
        sizes = [n for n, _ in self.by_gallery_size]
        if any(n < 1 for n in sizes) or sizes != sorted(set(sizes)):
            raise ConfigurationError("face profile: identify_by_gallery_size needs ascending sizes of at least 1")
        if any(not -1.0 <= t <= 1.0 for _, t in self.by_gallery_size):
            raise ConfigurationError("face profile: identify_by_gallery_size thresholds must be in [-1, 1]")

    def identify_threshold_for(self, persons: int) -> float:
        """The identify threshold for a gallery of ``persons`` enrolled people (one face each): the calibrated
        row for that size (straight lines in log(size) between rows, from `identify_threshold` at one person, the
        last row beyond it), never below `identify_threshold`. Without a table, `identify_threshold` at every
        size."""
        rows = self.by_gallery_size
        if not rows:
            return self.identify_threshold
        if rows[0][0] > 1:  # one person: one comparison, so the per-pair threshold's rate is the stranger's
            rows = ((1, self.identify_threshold), *rows)
        size = max(1, persons)
        if size <= rows[0][0]:
            chosen = rows[0][1]
        elif size >= rows[-1][0]:
            chosen = rows[-1][1]
        else:
            (n0, t0), (n1, t1) = next((a, b) for a, b in itertools.pairwise(rows) if size <= b[0])
            share = (math.log(size) - math.log(n0)) / (math.log(n1) - math.log(n0))
            chosen = t0 + share * (t1 - t0)
        return max(self.identify_threshold, chosen)

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
            sized = tuple((int(n), float(t)) for n, t in params.get("identify_by_gallery_size", []))
            open_set = dict(params.get("open_set") or {})
        except KeyError as exc:
            raise ConfigurationError(f"params lacks {exc}; run bench/calibrate_faces.py") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"params are malformed ({exc}); run bench/calibrate_faces.py") from exc
        return cls(
            model=model,
            operating_points=points,
            provenance=dict(profile.calibration),
            by_gallery_size=sized,
            open_set=open_set,
            **values,
        )

    def to_profile(self) -> Profile:
        """The ``faces-identify`` profile holding these thresholds (what `bench/calibrate_faces.py` writes)."""
        params: dict[str, Any] = {"model": self.model}
        params.update({key: getattr(self, name) for key, name in _THRESHOLDS.items()})
        params["operating_points"] = [p.to_dict() for p in self.operating_points]
        if self.by_gallery_size:
            params["identify_by_gallery_size"] = [[n, t] for n, t in self.by_gallery_size]
            params["open_set"] = dict(self.open_set)
        return Profile(IDENTIFY_TASK, [], [], params=params, calibration=dict(self.provenance))


def load_face_profile(profile_dir: Path | None = None) -> FaceProfile:
    """The face thresholds of the user's profile folder, else the shipped ones."""
    profile = load_profile(IDENTIFY_TASK, profile_dir)
    try:
        return FaceProfile.from_profile(profile)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{profile_location(IDENTIFY_TASK, profile_dir)}: {exc}") from exc
