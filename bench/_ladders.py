"""Cost-quality rows of the labels and face-verification ladders, from recordings of every rung on ../shared/eval.

    python bench/_ladders.py            # print every table (recordings cached in bench/out, a few minutes once)

`bench/cost_quality.py` may import `labels_rows`, `faces_rows` and `guarantee_rows`. Every row is measured on a
held-out part: thresholds (and the face scores' logistic fits) come from the other part only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from frugalsense.calibration.faces import faces_table, fit_fusion, fit_logistic
from frugalsense.calibration.labels import gated_rungs, int8_gate, labels_table
from frugalsense.calibration.ltt import NEVER, CalibrationTable, calibrate, simulate
from frugalsense.calibration.record import FaceRecords, LabelRecords, record_faces, record_labels
from frugalsense.ladder.labels import ENSEMBLE
from frugalsense.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import eval_dir

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "out"
TARGETS = (0.95, 0.98, 0.99, 1.0)
Row = tuple[str, float, float]  # configuration, quality on the held-out part, CPU-seconds per item


def label_records() -> LabelRecords:
    return record_labels(Settings(), eval_dir() / "zeroshot-imagenet", cache_dir=CACHE)


def face_records(dataset: str) -> FaceRecords:
    return record_faces(Settings(), eval_dir() / dataset, cache_dir=CACHE)


def labels_rows(split_seed: int = 0, fraction: float = 0.5, risk: float = 0.1) -> list[Row]:
    """Each model alone, always-strongest, and the ladder at each target (top-1 on the held-out half)."""
    records = label_records()
    rows = np.random.default_rng(split_seed).permutation(len(records.files))
    cut = round(fraction * len(rows))
    calib, check = records.subset(rows[:cut]), records.subset(rows[cut:])
    rungs = gated_rungs(int8_gate(calib))
    out: list[Row] = []
    for model in sorted(records.probs):
        top1 = float(np.mean(check.probs[model].argmax(1) == check.labels))
        out.append((model, top1, float(check.cpu[model].mean())))
    table, test = labels_table(calib, rungs), labels_table(check, rungs)
    strongest = simulate(test, [NEVER] * (len(rungs) - 1))
    out.append(
        (
            f"always {ENSEMBLE} ({'+'.join(r.removeprefix('efficientnet-') for r in rungs[:-1])})",
            strongest.quality,
            strongest.cpu,
        )
    )
    for target in TARGETS:
        result = calibrate(table, target=target, risk=risk)
        run = simulate(test, result.thresholds)
        name = f"ladder target {target} risk {risk}" + (" (fallback)" if result.fallback else "")
        out.append((name, run.quality, run.cpu))
    return out


def faces_rows(dataset: str, split_seed: int = 0, fraction: float = 0.5, risk: float = 0.1) -> list[Row]:
    """SFace alone, dlib alone, both fused on every pair, and the band ladder at each target (pair accuracy)."""
    records = face_records(dataset)
    rows = np.random.default_rng(split_seed).permutation(len(records.same))
    cut = round(fraction * len(rows))
    fit, check = rows[:cut], rows[cut:]
    s1, s2, y = records.similarities("sface"), records.similarities("dlib"), records.same
    detect = records.pair_cpu("detect")
    out: list[Row] = []
    for name, scores, cpu in (
        ("sface alone", s1, detect + records.pair_cpu("sface")),
        ("dlib-resnet alone", s2, detect + records.pair_cpu("dlib")),
    ):
        a, b = fit_logistic(scores[fit], y[fit])
        right = (a * scores[check] + b >= 0) == y[check]
        out.append((name, float(right.mean()), float(cpu[check].mean())))
    fusion = fit_fusion(s1[fit], s2[fit], y[fit])
    table, test = faces_table(records, fusion, fit), faces_table(records, fusion, check)
    both = simulate(test, [NEVER])
    out.append(("both fused, every pair", both.quality, both.cpu))
    for target in TARGETS:
        result = calibrate(table, target=target, risk=risk)
        run = simulate(test, result.thresholds)
        name = f"ladder target {target} risk {risk}: {run.share_per_rung[1]:.1%} climb"
        out.append((name + (" (fallback)" if result.fallback else ""), run.quality, run.cpu))
    return out


def guarantee_rows(
    task: str, target: float, risk: float = 0.1, splits: int = 100, fraction: float = 0.5, holdout: bool = False
) -> tuple[int, int, int, float, float, float]:
    """Over random calibration/test splits: how often the held-out quality missed `target` times the strongest's.

    Returns (misses on the held-out half, misses on the whole pool, fallbacks, mean relative quality and CPU on
    the held-out half, the worst relative quality there). Each split
    redoes everything that learns from data (int8 gate, score fits, thresholds) on its calibration part.
    ``holdout``: calibrate for the held-out half's own mean (``calibrate(future_items=its size)``), not the
    expectation.
    """
    misses = pool_misses = fallbacks = 0
    quality, cpu = [], []
    for seed in range(splits):
        table, test = _split_tables(task, seed, fraction)
        result = calibrate(table, target=target, risk=risk, seed=seed, future_items=len(test) if holdout else None)
        never = [NEVER] * (len(table.rungs) - 1)
        run, ref = simulate(test, result.thresholds), simulate(test, never)
        relative = run.quality / ref.quality if ref.quality else 1.0
        misses += relative < target
        # The whole pool is the population both halves are drawn from: the guarantee's own statement.
        pool = CalibrationTable(
            table.rungs,
            *(np.concatenate([getattr(table, a), getattr(test, a)]) for a in ("confidence", "quality", "cpu")),
        )
        pool_run, pool_ref = simulate(pool, result.thresholds), simulate(pool, never)
        pool_misses += pool_run.quality < target * pool_ref.quality
        fallbacks += result.fallback
        quality.append(relative)
        cpu.append(run.cpu / ref.cpu if ref.cpu else 1.0)
    return misses, pool_misses, fallbacks, float(np.mean(quality)), float(np.mean(cpu)), float(np.min(quality))


def _split_tables(task: str, seed: int, fraction: float) -> tuple[CalibrationTable, CalibrationTable]:
    if task == "labels":
        records = label_records()
        rows = np.random.default_rng(seed).permutation(len(records.files))
        cut = round(fraction * len(rows))
        calib, check = records.subset(rows[:cut]), records.subset(rows[cut:])
        rungs = gated_rungs(int8_gate(calib))
        return labels_table(calib, rungs), labels_table(check, rungs)
    faces = face_records(task)
    rows = np.random.default_rng(seed).permutation(len(faces.same))
    cut = round(fraction * len(rows))
    fit, check = rows[:cut], rows[cut:]
    fusion = fit_fusion(faces.similarities("sface")[fit], faces.similarities("dlib")[fit], faces.same[fit])
    return faces_table(faces, fusion, fit), faces_table(faces, fusion, check)


def print_rows(title: str, rows: list[Row], measure: str) -> None:
    print(f"\n{title}")
    print(f"{'configuration':<58} {measure:>9} {'CPU ms':>8} {'vs last-rung':>12}")
    reference = next((cpu for name, _, cpu in rows if name.startswith(("always", "both"))), rows[-1][2])
    for name, quality, cpu in rows:
        print(f"{name:<58} {quality:>9.4f} {cpu * 1000:>8.2f} {cpu / reference:>12.3f}")


def main() -> int:
    print_rows("labels: zeroshot-imagenet, calibrate on half (seed 0), held-out half", labels_rows(), "top-1")
    for dataset in ("faces-lfw", "faces-deepface"):
        print_rows(
            f"face verification: {dataset}, fit on half of the pairs, held-out half",
            faces_rows(dataset),
            "accuracy",
        )
    for holdout in (False, True):
        promise = "the held-out half's own mean (--future-items)" if holdout else "the expected quality (default)"
        print(
            "\nguarantee over 100 random calibration/test halves (risk 0.1), calibrated for "
            f"{promise}: share of splits where the target was missed on the held-out half and on the whole pool"
        )
        print(
            f"{'task':<15} {'target':>6} {'missed':>7} {'pool':>5} {'fallback':>8} {'rel. qual.':>10} "
            f"{'worst':>7} {'rel. CPU':>8}"
        )
        for task, targets in (
            ("labels", (0.95, 0.98, 0.99)),
            ("faces-lfw", (0.98, 0.99)),
            ("faces-deepface", (0.98, 0.99, 0.995)),
        ):
            for target in targets:
                misses, pool, fallbacks, quality, cpu, worst = guarantee_rows(task, target, holdout=holdout)
                print(
                    f"{task:<15} {target:>6} {misses:>6}% {pool:>4}% {fallbacks:>7}% {quality:>10.4f} "
                    f"{worst:>7.4f} {cpu:>8.3f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
