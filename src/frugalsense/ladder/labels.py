"""The image-labels ladder: EfficientNet-Lite0 -> Lite1 -> Lite2 -> the three averaged.

Each model rung answers with its class probabilities and their maximum as confidence; the last rung averages the
probabilities of the rungs below it (no model of its own, so it costs only the climb). Which precision each
variant runs at is decided by the int8 gate (`int8_gate`): int8 only where its top-1 is within half a point of
fp32 on the calibration data. The rung names and thresholds come from the ``labels`` profile.

    >>> from frugalsense.ladder.profiles import load_profile
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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.ladder.calibrate import Calibration, CalibrationTable, Method, calibrate, simulate
from frugalsense.ladder.core import Ladder, Outcome
from frugalsense.ladder.ledger import Meter, StageCost
from frugalsense.ladder.profiles import Profile
from frugalsense.ladder.record import LabelRecords, Progress, record_labels
from frugalsense.media.types import Frame
from frugalsense.models.base import Model
from frugalsense.models.registry import ModelZoo
from frugalsense.settings import Settings

__all__ = [
    "ENSEMBLE",
    "INT8_TOLERANCE",
    "EnsembleRung",
    "LabelRung",
    "calibrate_labels",
    "int8_gate",
    "labels_ladder",
    "labels_table",
    "run_labels",
]

ENSEMBLE = "ensemble"
#: int8 serves a variant only when its top-1 is at most this far below fp32's (half a point)
INT8_TOLERANCE = 0.005
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


# -- calibration ------------------------------------------------------------------------------------------------


def int8_gate(records: LabelRecords, tolerance: float = INT8_TOLERANCE) -> dict[str, dict[str, Any]]:
    """Per EfficientNet-Lite variant: int8 and fp32 top-1 (or agreement with the fp32 ensemble, unlabelled) and
    the precision it will run at."""
    truth = (
        records.labels
        if records.labelled
        else _ensemble(records, [f"efficientnet-lite{v}-fp32" for v in (0, 1, 2)])
    )
    out = {}
    for variant in (0, 1, 2):
        scores = {
            p: float(np.mean(records.probs[f"efficientnet-lite{variant}-{p}"].argmax(1) == truth))
            for p in ("int8", "fp32")
        }
        cpu = {p: float(np.median(records.cpu[f"efficientnet-lite{variant}-{p}"])) for p in ("int8", "fp32")}
        chosen = "int8" if scores["int8"] >= scores["fp32"] - tolerance else "fp32"
        out[f"lite{variant}"] = {
            "int8_top1": round(scores["int8"], 4),
            "fp32_top1": round(scores["fp32"], 4),
            "int8_cpu_ms_median": round(cpu["int8"] * 1000, 2),
            "fp32_cpu_ms_median": round(cpu["fp32"] * 1000, 2),
            "measure": "top-1" if records.labelled else "agreement with the fp32 ensemble",
            "n": len(records.files),
            "chosen": chosen,
        }
    return out


def gated_rungs(gate: dict[str, dict[str, Any]]) -> list[str]:
    return [f"efficientnet-lite{v}-{gate[f'lite{v}']['chosen']}" for v in (0, 1, 2)] + [ENSEMBLE]


def labels_table(records: LabelRecords, rungs: Sequence[str]) -> CalibrationTable:
    """The calibration table of a labels ladder: top-1 correctness (or agreement with the last rung)."""
    probs = []
    for i, name in enumerate(rungs):
        probs.append(
            _ensemble(records, list(rungs[:i]), as_probs=True) if name == ENSEMBLE else records.probs[name]
        )
    top1 = np.stack([p.argmax(1) for p in probs], axis=1)
    truth = records.labels if records.labelled else top1[:, -1]
    confidence = np.stack([np.clip(p.max(1), 0.0, 1.0) for p in probs], axis=1).astype(np.float64)
    quality = (top1 == truth[:, None]).astype(np.float64)
    # Averaging three vectors costs microseconds: the ensemble rung's own CPU is taken as nil.
    cpu = np.stack([records.cpu[n] if n != ENSEMBLE else np.zeros(len(truth)) for n in rungs], axis=1)
    return CalibrationTable(list(rungs), confidence, quality, cpu)


def _ensemble(records: LabelRecords, models: list[str], *, as_probs: bool = False) -> Any:
    mean = np.mean([records.probs[m] for m in models], axis=0)
    return mean if as_probs else mean.argmax(1)


def calibrate_labels(
    settings: Settings,
    data: Path,
    *,
    target: float,
    risk: float,
    cache_dir: Path | None = None,
    holdout: float = 0.0,
    seed: int = 0,
    method: Method = "wsr",
    command: str = "",
    future_items: int | None = None,
    progress: Progress | None = None,
) -> tuple[Calibration, Profile, dict[str, Any]]:
    """Record (or reuse) every label model on `data`, gate int8, calibrate, and build the ``labels`` profile.

    With ``holdout`` > 0 that share of the items is kept out of calibration and the profile records how the
    ladder did on it. Returns the calibration, the profile and the held-out check (empty without one).
    """
    records = record_labels(settings, data, cache_dir=cache_dir, progress=progress)
    rows = np.random.default_rng(seed).permutation(len(records.files))
    cut = len(rows) - round(holdout * len(rows))
    calib, check = records.subset(rows[:cut]), records.subset(rows[cut:])
    gate = int8_gate(calib)
    rungs = gated_rungs(gate)
    result = calibrate(
        labels_table(calib, rungs), target=target, risk=risk, method=method, seed=seed, future_items=future_items
    )
    held_out: dict[str, Any] = {}
    if len(check.files):
        table = labels_table(check, rungs)
        run, ref = simulate(table, result.thresholds), simulate(table, [1.001] * (len(rungs) - 1))
        held_out = {
            "n": len(check.files),
            "quality": round(run.quality, 4),
            "reference_quality": round(ref.quality, 4),
            "relative_quality": round(run.quality / ref.quality, 4) if ref.quality else 1.0,
            "cpu_s": round(run.cpu, 5),
            "reference_cpu_s": round(ref.cpu, 5),
            "relative_cpu": round(run.cpu / ref.cpu, 4) if ref.cpu else 1.0,
            "share_per_rung": [round(s, 4) for s in run.share_per_rung],
        }
    provenance = {
        "data": data.resolve().name,
        "items": len(records.files),
        "split": f"seed {seed}: {len(calib.files)} calibrate, {len(check.files)} held out",
        "quality_measure": "top-1 against ImageNet labels"
        if records.labelled
        else "agreement with the ensemble's top-1",
        "int8_gate": gate,
        "held_out": held_out,
        "command": command,
    }
    profile = result.to_profile("labels", params={"confidence": "max class probability"}, provenance=provenance)
    return result, profile, held_out
