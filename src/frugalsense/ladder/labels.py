"""The image-labels ladder: EfficientNet-Lite0 -> Lite1 -> Lite2 -> the three averaged.

Each model rung answers with its class probabilities and their maximum as confidence; the last rung averages the
probabilities of the rungs below it (no model of its own, so it costs only the climb). Which precision each
variant runs at is decided by the int8 gate (`int8_gate`): int8 only where its top-1 is within half a point of
fp32 on the calibration data. The rung names and thresholds come from the ``labels`` profile.

    >>> from frugalsense.profiles import load_profile
    >>> profile = load_profile("labels")
    >>> profile.rungs[-1], len(profile.thresholds)
    ('ensemble', 3)
    >>> from frugalsense.models.registry import ModelZoo
    >>> from frugalsense.settings import Settings
    >>> ladder = labels_ladder(ModelZoo(Settings()), profile)
    >>> ladder.names == profile.rungs
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.ladder.core import Ladder, Outcome
from frugalsense.ledger import Meter, StageCost
from frugalsense.media.types import Frame
from frugalsense.models.base import Model
from frugalsense.models.registry import ModelZoo
from frugalsense.profiles import Profile

__all__ = [
    "ENSEMBLE",
    "EnsembleRung",
    "LabelRung",
    "labels_ladder",
    "run_labels",
]

ENSEMBLE = "ensemble"
Probs = npt.NDArray[np.float32]


class LabelRung:
    """One EfficientNet-Lite model; confidence is its top class probability."""

    def __init__(self, model: Model[Frame, Probs]) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    def run(self, item: Frame, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[Probs]:
        probs = self.model.predict([item], meter)[0]
        return Outcome(output=probs, confidence=_confidence(probs))


class EnsembleRung:
    """The mean of the probabilities the rungs below it returned."""

    name = ENSEMBLE

    def run(self, item: Frame, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[Probs]:
        if not previous:
            raise ConfigurationError("the ensemble rung needs model rungs below it")
        with meter.stage("labels", ENSEMBLE, note=f"mean of {len(previous)}"):
            probs = np.mean([np.asarray(o.output, np.float32) for o in previous], axis=0).astype(np.float32)
        return Outcome(output=probs, confidence=_confidence(probs))


def labels_ladder(zoo: ModelZoo, profile: Profile) -> Ladder[Frame]:
    """The ladder a ``labels`` profile describes, with its models from `zoo` (loaded on first use)."""
    rungs: list[LabelRung | EnsembleRung] = []
    for name in profile.rungs:
        if name == ENSEMBLE:
            rungs.append(EnsembleRung())
        else:
            model: Model[Frame, Probs] = zoo.get(name)
            if model.card.task != "labels":
                raise ConfigurationError(f"labels profile: {name!r} is a {model.card.task} model, not a labeller")
            rungs.append(LabelRung(model))
    return Ladder("labels", rungs, profile.thresholds)


def run_labels(ladder: Ladder[Frame], frame: Frame, meter: Meter) -> Probs:
    """Climb the ladder for one picture; the receipt gains a line saying how far it climbed and why it stopped."""
    result = ladder.run(frame, meter)
    last = len(ladder.rungs) - 1
    why = "the last rung" if result.rung == last else f">= threshold {ladder.thresholds[result.rung]:.3f}"
    meter.receipt.stages.append(
        StageCost(
            "labels",
            None,
            cpu_s=0.0,
            wall_ms=0.0,
            note=f"ladder: {' -> '.join(result.climbed)} (rung {result.rung + 1} of {last + 1}, "
            f"confidence {result.confidence:.3f} {why})",
        )
    )
    probs: Probs = np.asarray(result.output, np.float32)
    return probs


def _confidence(probs: Probs) -> float:
    return float(min(1.0, max(0.0, float(np.max(probs)))))
