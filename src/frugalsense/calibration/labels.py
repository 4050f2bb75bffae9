"""Calibrating the image-labels ladder: the int8 gate per EfficientNet-Lite variant, then Learn-then-Test on the
recorded probabilities of every rung (`frugalsense calibrate labels`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.calibration.ltt import Calibration, CalibrationTable, Method, calibrate, simulate
from frugalsense.calibration.paired import PairedTest
from frugalsense.calibration.record import LabelRecords, Progress, record_labels
from frugalsense.ladder.labels import ENSEMBLE
from frugalsense.profiles import Profile, load_profile
from frugalsense.settings import Settings

__all__ = ["calibrate_labels", "gated_rungs", "int8_gate", "labels_table"]


def int8_gate(records: LabelRecords, profile_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per EfficientNet-Lite variant: int8 and fp32 top-1 (or agreement with the fp32 ensemble, unlabelled) on
    the same items, and the precision it will run at. int8 only when the paired test shows its loss within the
    ``int8-gate`` profile's margin with its confidence (`frugalsense.calibration.paired`, the promise every
    int8 model keeps); a point difference on a few hundred items is not evidence."""
    gate = load_profile("int8-gate", profile_dir).params
    margin, confidence = float(gate["margin_points"]) / 100.0, float(gate["confidence"])
    truth = (
        records.labels
        if records.labelled
        else _ensemble(records, [f"efficientnet-lite{v}-fp32" for v in (0, 1, 2)])
    )
    out = {}
    for variant in (0, 1, 2):
        right = {p: records.probs[f"efficientnet-lite{variant}-{p}"].argmax(1) == truth for p in ("int8", "fp32")}
        test = PairedTest.from_answers(right["fp32"], right["int8"])
        low, high = test.interval(confidence)
        cpu = {p: float(np.median(records.cpu[f"efficientnet-lite{variant}-{p}"])) for p in ("int8", "fp32")}
        out[f"lite{variant}"] = {
            "int8_top1": round(test.variant_rate, 4),
            "fp32_top1": round(test.reference_rate, 4),
            "loss_points": round(100 * test.loss, 2),
            "loss_interval_points": [round(100 * low, 2), round(100 * high, 2)],
            "fp32_only": test.reference_only,
            "int8_only": test.variant_only,
            "int8_cpu_ms_median": round(cpu["int8"] * 1000, 2),
            "fp32_cpu_ms_median": round(cpu["fp32"] * 1000, 2),
            "measure": "top-1" if records.labelled else "agreement with the fp32 ensemble",
            "n": test.n,
            "chosen": "int8" if test.passes(margin, confidence) else "fp32",
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
