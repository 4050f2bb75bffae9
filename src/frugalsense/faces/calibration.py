"""Face thresholds are data: chosen for a stated false-accept rate, stored with their provenance in a profile.

The identify threshold is the lowest cosine similarity at which at most ``far`` of impostor pairs (two different
people) are accepted; the true-accept rate at that threshold is the share of genuine pairs (one person) it keeps.
``bench/calibrate_faces.py`` measures both on ``../shared/eval`` and writes ``data/profiles/faces-default.json``.

    >>> import numpy as np
    >>> impostor = np.linspace(-0.2, 0.5, 10_001)   # 10,001 impostor scores: at most 10 may pass at FAR 1e-3
    >>> genuine = np.array([0.3, 0.6, 0.7, 0.9])
    >>> point = operating_point(genuine, impostor, far=1e-3)
    >>> point.threshold, point.false_accepts, point.tar
    (0.5, 1, 0.75)
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError, InvalidRequestError

__all__ = ["DEFAULT_PROFILE", "FaceProfile", "OperatingPoint", "operating_point"]

DEFAULT_PROFILE = "faces-default.json"


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


def operating_point(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, far: float, *, resolution: float = 1e-3
) -> OperatingPoint:
    """The lowest threshold (a multiple of ``resolution``) accepting at most ``far`` of impostor pairs.

    A pair is accepted when its similarity is >= the threshold. Rounding up to ``resolution`` keeps the shipped
    number honest: it never sits between two impostor scores in a way the next data set would not repeat.
    """
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    gen = np.asarray(genuine, np.float64)
    if not 0 < far < 1:
        raise InvalidRequestError(f"a false-accept rate is between 0 and 1, got {far}")
    if len(imp) == 0 or len(gen) == 0:
        raise InvalidRequestError("calibration needs genuine and impostor pairs")
    allowed = math.floor(far * len(imp))
    # Accept exactly the `allowed` highest impostors: the threshold must sit above the next one.
    boundary = imp[allowed] if allowed < len(imp) else imp[-1] - resolution
    threshold = (math.floor(boundary / resolution) + 1) * resolution
    accepted = int(np.count_nonzero(imp >= threshold))
    return OperatingPoint(
        far=far,
        threshold=round(threshold, 6),
        tar=float(np.mean(gen >= threshold)),
        measured_far=accepted / len(imp),
        false_accepts=accepted,
        impostor_pairs=len(imp),
        genuine_pairs=len(gen),
    )


@dataclass(frozen=True)
class FaceProfile:
    """Calibrated face thresholds for one embedding model.

    - ``identify_threshold``: a probe is a person only at or above this similarity (default FAR 1e-3).
    - ``strict_threshold``: the same at FAR 1e-4, for callers who prefer "unknown" to a rare wrong name.
    - ``compare_threshold``: best-accuracy threshold for one-to-one verification (balanced pairs).
    - ``margin``: the best person must beat the second-best person by this much, else the answer is "unknown".
    - ``near_duplicate``: a probe this similar to a face corrected as "not X" is never answered X.
    - ``cluster_threshold``: an unknown face joins a cluster when this similar to one of its members.

        >>> profile = FaceProfile.load()
        >>> profile.model
        'sface'
        >>> 0 < profile.identify_threshold < profile.strict_threshold < 1
        True
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
    def load(cls, path: str | Path | None = None) -> FaceProfile:
        """Read a profile; without a path, the one shipped with frugalsense."""
        try:
            if path is None:
                text = (
                    importlib.resources.files("frugalsense.data").joinpath("profiles", DEFAULT_PROFILE).read_text()
                )
            else:
                text = Path(path).read_text()
            data = json.loads(text)
            return cls.from_dict(data)
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"face profile {path or DEFAULT_PROFILE} not found; run bench/calibrate_faces.py"
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"face profile {path or DEFAULT_PROFILE} is invalid ({exc}); recalibrate"
            ) from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceProfile:
        thresholds = data["thresholds"]
        return cls(
            model=data["model"],
            identify_threshold=float(thresholds["identify"]),
            strict_threshold=float(thresholds["strict"]),
            compare_threshold=float(thresholds["compare"]),
            margin=float(thresholds["margin"]),
            near_duplicate=float(thresholds["near_duplicate"]),
            cluster_threshold=float(thresholds["cluster"]),
            operating_points=[OperatingPoint(**p) for p in data.get("operating_points", [])],
            provenance=dict(data.get("provenance", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "thresholds": {
                "identify": self.identify_threshold,
                "strict": self.strict_threshold,
                "compare": self.compare_threshold,
                "margin": self.margin,
                "near_duplicate": self.near_duplicate,
                "cluster": self.cluster_threshold,
            },
            "operating_points": [p.to_dict() for p in self.operating_points],
            "provenance": self.provenance,
        }
