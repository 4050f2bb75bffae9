"""Calibrating the face ladders: SFace's logistic, the fusion with dlib, the 1:1 band (Learn-then-Test) and the
1:N identification band at a stated false-accept rate (`frugalsense calibrate faces-verify`); and the operating
points the gallery's thresholds are chosen at (``bench/calibrate_faces.py`` writes them to ``faces-identify``).

The identify threshold is the lowest cosine similarity at which at most ``far`` of impostor pairs (two different
people) are accepted; the true-accept rate at that threshold is the share of genuine pairs (one person) it keeps.

    >>> impostor = np.linspace(-0.2, 0.5, 10_001)   # 10,001 impostor scores: at most 10 may pass at FAR 1e-3
    >>> genuine = np.array([0.3, 0.6, 0.7, 0.9])
    >>> point = operating_point(genuine, impostor, far=1e-3)
    >>> point.threshold, point.false_accepts, point.tar
    (0.5, 1, 0.75)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.ltt import NEVER, Calibration, CalibrationTable, Method, calibrate, simulate
from frugalsense.calibration.record import FaceRecords, Progress, record_faces
from frugalsense.errors import InvalidRequestError
from frugalsense.faces.fusion import FACES_TASK, RUNGS, FaceFusion, IdentifyLadder
from frugalsense.faces.profile import IDENTIFY_TASK, OperatingPoint, load_face_profile
from frugalsense.profiles import Profile
from frugalsense.settings import Settings

__all__ = [
    "IDENTIFY_FAR",
    "calibrate_faces",
    "calibrate_identify",
    "faces_table",
    "fit_fusion",
    "fit_logistic",
    "operating_point",
    "pair_weights",
    "read_identities",
]

Floats = npt.NDArray[np.float64]


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


def fit_logistic(
    features: npt.ArrayLike, labels: npt.ArrayLike, *, ridge: float = 1e-5, weights: npt.ArrayLike | None = None
) -> Floats:
    """Weights (one per feature, then the intercept) of a ridge-penalised logistic regression, by Newton steps.

    The small penalty keeps the weights finite when the calibration pairs are perfectly separable. ``weights``
    (one per pair, scaled to mean 1 here) count some pairs more than others: `pair_weights` makes every data set
    and both kinds of pair weigh the same, so the fitted 50% point does not move with how many impostor pairs a
    set happens to list.

    >>> x = np.array([[0.1], [0.2], [0.3], [0.6], [0.7], [0.4]])
    >>> w = fit_logistic(x, [0, 0, 0, 1, 1, 1])
    >>> bool(w[0] > 0)
    True
    """
    x = np.asarray(features, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(labels, np.float64)
    if len(y) == 0 or y.min() == y.max():
        raise InvalidRequestError("fitting a score needs pairs of both kinds: same person and different people")
    n = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    if n.shape != y.shape or not np.all(np.isfinite(n)) or n.min() < 0 or n.sum() <= 0:
        raise InvalidRequestError("pair weights must be one finite, non-negative number per pair, not all zero")
    n = n * (len(n) / n.sum())
    design = np.column_stack([x, np.ones(len(x))])
    w = np.zeros(design.shape[1])
    penalty = ridge * len(y) * np.diag([1.0] * x.shape[1] + [0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -50, 50)))
        gradient = design.T @ (n * (p - y)) + penalty @ w
        hessian = (design * (n * p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return w


def fit_fusion(
    sface: npt.ArrayLike,
    dlib: npt.ArrayLike,
    same: npt.ArrayLike,
    band: float = NEVER,
    *,
    weights: npt.ArrayLike | None = None,
) -> FaceFusion:
    """Fit SFace's probability and the fused score on calibration pairs' similarities and truths."""
    s1, s2 = np.asarray(sface, np.float64), np.asarray(dlib, np.float64)
    a, b = fit_logistic(s1, same, weights=weights)
    w1, w2, c = fit_logistic(np.column_stack([s1, s2]), same, weights=weights)
    return FaceFusion(sface=(float(a), float(b)), fused=(float(w1), float(w2), float(c)), band=band)


def pair_weights(same: Sequence[npt.ArrayLike]) -> Floats:
    """One weight per pair of several data sets (``same``: each set's truths), so that every set weighs the
    same in a fit and, within a set, its genuine pairs weigh as much as its impostor pairs (a set missing one kind
    gives its whole weight to the other).

    >>> pair_weights([[1, 0, 0, 0], [1, 0]]).round(3).tolist()
    [0.25, 0.083, 0.083, 0.083, 0.25, 0.25]
    """
    parts = []
    for truths in same:
        y = np.asarray(truths, bool)
        kinds = [k for k in (True, False) if np.any(y == k)]
        part = np.zeros(len(y))
        for kind in kinds:
            part[y == kind] = 1.0 / (len(kinds) * np.count_nonzero(y == kind))
        parts.append(part / max(1, len(same)))
    return np.concatenate(parts) if parts else np.zeros(0)


def faces_table(
    records: FaceRecords, fusion: FaceFusion, rows: npt.NDArray[np.intp] | None = None
) -> CalibrationTable:
    """The calibration table: SFace alone, then SFace + dlib fused; quality is a right same/different answer."""
    index = np.arange(len(records.same)) if rows is None else rows
    s1 = records.similarities("sface")[index]
    s2 = records.similarities("dlib")[index]
    y = records.same[index]
    p1 = np.array([fusion.sface_probability(s) for s in s1])
    pf = np.array([fusion.fused_probability(a, b) for a, b in zip(s1, s2, strict=True)])
    confidence = np.column_stack([np.maximum(p1, 1 - p1), np.maximum(pf, 1 - pf)])
    quality = np.column_stack([(p1 >= 0.5) == y, (pf >= 0.5) == y]).astype(np.float64)
    cpu = np.column_stack(
        [(records.pair_cpu("detect") + records.pair_cpu("sface"))[index], records.pair_cpu("dlib")[index]]
    )
    return CalibrationTable(list(RUNGS), confidence, quality, cpu)


def calibrate_faces(
    settings: Settings,
    data: Path | list[Path],
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
    """Record (or reuse) both models on the pairs of `data` (one folder or several), fit the scores, choose the
    band, and build the ``faces-verify`` profile. ``holdout`` works as in `calibrate_labels`."""
    folders = [data] if isinstance(data, Path) else list(data)
    parts = [record_faces(settings, folder, cache_dir=cache_dir, progress=progress) for folder in folders]
    fit_rows, check_rows = [], []
    for i, part in enumerate(parts):
        rows = np.random.default_rng(seed + i).permutation(len(part.same))
        cut = len(rows) - round(holdout * len(rows))
        fit_rows.append(rows[:cut])
        check_rows.append(rows[cut:])
    s1 = np.concatenate([p.similarities("sface")[r] for p, r in zip(parts, fit_rows, strict=True)])
    s2 = np.concatenate([p.similarities("dlib")[r] for p, r in zip(parts, fit_rows, strict=True)])
    y = np.concatenate([p.same[r] for p, r in zip(parts, fit_rows, strict=True)])
    fusion = fit_fusion(s1, s2, y, weights=pair_weights([p.same[r] for p, r in zip(parts, fit_rows, strict=True)]))
    table = _concat([faces_table(p, fusion, r) for p, r in zip(parts, fit_rows, strict=True)])
    result = calibrate(table, target=target, risk=risk, method=method, seed=seed, future_items=future_items)
    fusion = FaceFusion(fusion.sface, fusion.fused, band=result.thresholds[0])
    held_out: dict[str, Any] = {}
    for folder, part, rows in zip(folders, parts, check_rows, strict=True):
        if len(rows):
            check = faces_table(part, fusion, rows)
            run, ref = simulate(check, result.thresholds), simulate(check, [NEVER])
            held_out[folder.resolve().name] = {
                "n": len(rows),
                "accuracy": round(run.quality, 4),
                "fused_accuracy": round(ref.quality, 4),
                "climbed": round(run.share_per_rung[1], 4),
                "cpu_s": round(run.cpu, 5),
                "both_cpu_s": round(ref.cpu, 5),
            }
    threshold = load_face_profile(settings.profile_dir).identify_threshold
    identify, identify_note = _identify_ladder(folders, parts, fit_rows, fusion, threshold)
    fusion = FaceFusion(fusion.sface, fusion.fused, band=fusion.band, identify=identify)
    provenance = {
        "data": [f.resolve().name for f in folders],
        "pairs": int(sum(len(p.same) for p in parts)),
        "split": f"seed {seed}: {len(y)} pairs fit and calibrate, {sum(len(r) for r in check_rows)} held out",
        "quality_measure": "right same/different answer per pair (no face found reads as different)",
        "fusion": "logistic regressions on the cosine similarities, fitted on the calibration pairs, every data "
        "set and both kinds of pair weighing the same",
        "held_out": held_out,
        "command": command,
    }
    params = fusion.to_params()
    if identify is not None:
        params["identify"] = {**identify.to_params(), **identify_note, "command": command}
    else:
        provenance["identify"] = identify_note
    profile = result.to_profile(FACES_TASK, params=params, provenance=provenance)
    return result, profile, held_out


#: the false-accept rate per impostor pair the fused identification threshold is set at (as SFace's own)
IDENTIFY_FAR = 1e-3


def read_identities(data: Path) -> dict[str, str]:
    """Who is in each picture of a face data set, where the set says: ``identities.csv`` (file, identity) or
    the ``identity_x`` / ``identity_y`` columns of its pairs file. Empty when it says nothing."""
    found: dict[str, str] = {}
    table = data / "identities.csv"
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("file") and row.get("identity"):
                    found[row["file"]] = row["identity"]
        return found
    index = next((data / n for n in ("pairs.csv", "pairs_all.csv") if (data / n).is_file()), None)
    if index is None:
        return found
    with open(index, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for side in ("x", "y"):
                if row.get(f"file_{side}") and row.get(f"identity_{side}"):
                    found[row[f"file_{side}"]] = row[f"identity_{side}"]
    return found


def _identify_ladder(
    folders: Sequence[Path],
    parts: Sequence[FaceRecords],
    fit_rows: Sequence[npt.NDArray[np.intp]],
    fusion: FaceFusion,
    threshold: float,
) -> tuple[IdentifyLadder | None, dict[str, Any]]:
    """The 1:N ladder around the gallery's identify `threshold` on every pair of calibration pictures whose people
    the data names (all pairs, not only the listed ones: a FAR of 1e-3 needs thousands of impostor pairs), or why
    there is none."""
    sface, dlib, people = [], [], []
    for folder, part, rows in zip(folders, parts, fit_rows, strict=True):
        names = read_identities(folder)
        used = np.unique(np.concatenate([part.pair_a[rows], part.pair_b[rows]])) if len(rows) else np.zeros(0, int)
        for i in used:
            person = names.get(part.files[i])
            if person is not None and part.found[i]:
                sface.append(part.sface[i])
                dlib.append(part.dlib[i])
                people.append(f"{folder.resolve().name}/{person}")
    if len(people) < 2:
        return None, {
            "calibrated": False,
            "why": "the data names nobody in its pictures (identities.csv or "
            "identity_x/identity_y columns): the identification ladder is off, SFace decides alone",
        }
    upper = np.triu_indices(len(people), k=1)
    first, second = np.array(sface), np.array(dlib)
    s1 = (first @ first.T)[upper].astype(np.float64)
    s2 = (second @ second.T)[upper].astype(np.float64)
    labels = np.array(people)
    same = labels[upper[0]] == labels[upper[1]]
    impostors = int((~same).sum())
    if same.sum() == 0 or impostors < 1 / IDENTIFY_FAR:
        return None, {
            "calibrated": False,
            "why": f"{int(same.sum())} genuine and {impostors} impostor pairs among the named pictures: too few "
            f"to set a false-accept rate of {IDENTIFY_FAR:g}; the identification ladder is off",
        }
    ladder = calibrate_identify(s1, s2, same, threshold=threshold, fusion=fusion, far=IDENTIFY_FAR)
    note = {
        "threshold_from": IDENTIFY_TASK,
        "far": IDENTIFY_FAR,
        "coverage": 1.0,
        "data": f"every pair of the {len(people)} calibration pictures whose people the data names "
        f"({int(same.sum())} genuine, {impostors} impostor pairs); same fusion as compare",
    }
    return ladder, note


def _concat(tables: list[CalibrationTable]) -> CalibrationTable:
    return CalibrationTable(
        list(tables[0].rungs),
        np.concatenate([t.confidence for t in tables]),
        np.concatenate([t.quality for t in tables]),
        np.concatenate([t.cpu for t in tables]),
    )


def calibrate_identify(
    sface: npt.ArrayLike,
    dlib: npt.ArrayLike,
    same: npt.ArrayLike,
    *,
    threshold: float,
    fusion: FaceFusion,
    far: float,
    coverage: float = 1.0,
) -> IdentifyLadder:
    """The fused threshold at `far` on the impostor pairs, and the SFace band holding the pairs whose SFace
    decision (at `threshold`) differs from the fused one.

    The band is the narrowest interval around `threshold` holding ``coverage`` of those disagreements (all of them
    by default), so on the calibration pairs the ladder decides exactly as running both models on every pair.
    """
    s1, s2 = np.asarray(sface, np.float64), np.asarray(dlib, np.float64)
    y = np.asarray(same, bool)
    w1, w2, b = fusion.fused
    logits = w1 * s1 + w2 * s2 + b
    point = operating_point(logits[y], logits[~y], far, resolution=1e-4)
    disagree = (s1 >= threshold) != (logits >= point.threshold)
    if not disagree.any():
        return IdentifyLadder(threshold, fusion.fused, point.threshold, (threshold, threshold))
    below = np.sort(threshold - s1[disagree & (s1 < threshold)])
    above = np.sort(s1[disagree & (s1 >= threshold)] - threshold)
    keep_below = below[: max(0, math.ceil(coverage * len(below)))]
    keep_above = above[: max(0, math.ceil(coverage * len(above)))]
    lo = threshold - (float(keep_below[-1]) + 1e-4 if len(keep_below) else 0.0)
    hi = threshold + (float(keep_above[-1]) + 1e-4 if len(keep_above) else 0.0)
    return IdentifyLadder(threshold, fusion.fused, point.threshold, (lo, hi))
