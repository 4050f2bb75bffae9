"""A threshold per gallery size that keeps the chance of naming a stranger (FPIR) under a target, from open-set
trials (`frugalsense.calibration.open_set`); the shipped table is ``identify_by_gallery_size`` in the
``faces-identify`` profile, written by ``bench/open_set.py --write-profile``.

`calibrate_gallery_thresholds` picks, per gallery size, the lowest threshold (not below a base, the per-pair
one) whose FPIR is certified at most ``target`` with probability ``1 - risk``: each distinct stranger photo
contributes one loss in [0, 1] (the share of the trials it was named in, `stranger_losses`) and the
Hoeffding-Bentkus test of `frugalsense.calibration.ltt` rejects "mean loss > target" (`fpir_upper_bound`).
Photos of one person are not independent draws, so ``n`` overstates the evidence somewhat; a synthetic
distractor is only as realistic as the Gaussian model's tail. The certificate holds per size, not for all sizes
at once.

    >>> import numpy as np
    >>> from frugalsense.calibration.open_set import cross_fitted_trials
    >>> rng = np.random.default_rng(0)
    >>> people = rng.standard_normal((120, 32))
    >>> names = np.repeat(np.arange(120), 3)
    >>> vectors = people[names] + 0.9 * rng.standard_normal((360, 32))
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> scores = cross_fitted_trials(vectors, names, sizes=[10, 3000], splits=3, seed=0)
    >>> table = calibrate_gallery_thresholds(scores, base=0.3, margin=0.05, target=0.05, risk=0.1)
    >>> [size for size, _ in table.table], table.table[0][1] <= table.table[1][1]
    ([10, 3000], True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from frugalsense.calibration.ltt import hoeffding_bentkus_pvalue
from frugalsense.calibration.open_set import (
    IdentificationRates,
    ProbeScores,
    fpir_fnir,
    fpir_upper_bound,
    stranger_losses,
)
from frugalsense.errors import InvalidRequestError

__all__ = ["GalleryThresholds", "SizeCalibration", "calibrate_gallery_thresholds"]


@dataclass(frozen=True)
class SizeCalibration:
    """One gallery size: the lowest certified threshold, the table's (never below a smaller size's), and
    what the table's threshold does on the calibration probes."""

    size: int
    certified: float  # the lowest threshold certified at this size alone
    threshold: float  # the table's: the largest certified threshold of this size and every smaller one
    fpir: float
    fpir_bound: float  # upper confidence bound at the table's threshold (risk as calibrated)
    fnir: float
    p_value: float  # of "FPIR > target" at the table's threshold
    rates: IdentificationRates


@dataclass(frozen=True)
class GalleryThresholds:
    """A threshold per gallery size (``table``: [[persons, threshold], ...], ascending and non-decreasing)
    keeping FPIR at most ``target`` with probability at least ``1 - risk`` at each size."""

    table: list[list[Any]]
    target: float
    risk: float
    margin: float
    base: float
    sizes: list[SizeCalibration] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The numbers worth keeping beside the table in a profile."""
        return {
            "target": self.target,
            "risk": self.risk,
            "margin": self.margin,
            "base": self.base,
            "sizes": [
                {
                    "persons": s.size,
                    "threshold": s.threshold,
                    "fpir": round(s.fpir, 6),
                    "fpir_bound": round(s.fpir_bound, 6),
                    "fnir": round(s.fnir, 6),
                    "distinct_strangers": s.rates.distinct_strangers,
                    "stranger_probes": s.rates.strangers,
                    "mated_probes": s.rates.mated,
                }
                for s in self.sizes
            ],
        }


def calibrate_gallery_thresholds(
    scores: Mapping[int, ProbeScores],
    *,
    base: float,
    margin: float,
    target: float = 0.01,
    risk: float = 0.1,
    step: float = 0.001,
) -> GalleryThresholds:
    """Per gallery size in ``scores`` (from `open_set_trials`), the lowest threshold ``base + k * step`` whose
    FPIR is certified at most ``target`` with probability ``1 - risk`` (see the module); the table's
    threshold at a size is the largest of the certified ones at that size and every smaller one, so the table
    never falls as the gallery grows.

    The certificate holds per size: a deployment has one gallery size at a time. FPIR falls as the threshold
    rises, so the certified thresholds form an interval up to 1 and a bisection finds its lower end (the
    same as testing in a fixed sequence from 1 down and stopping at the first failure).
    """
    if not 0.0 < target < 1.0:
        raise InvalidRequestError(f"target is an FPIR in (0, 1), got {target}")
    if not 0.0 < risk < 1.0:
        raise InvalidRequestError(f"risk is a probability in (0, 1), got {risk}")
    if not -1.0 <= base <= 1.0 or step <= 0.0:
        raise InvalidRequestError(f"base must be a cosine in [-1, 1] and step positive, got {base}, {step}")
    if not scores:
        raise InvalidRequestError("no probe scores to calibrate on: run open_set_trials first")
    steps = math.floor((1.0 - base) / step + 1e-9)

    def threshold(k: int) -> float:
        return round(base + k * step, 6)

    def passes(k: int, probes: ProbeScores) -> tuple[bool, float]:
        p = hoeffding_bentkus_pvalue(stranger_losses(probes, threshold(k), margin), target)
        return p <= risk, p

    rows: list[SizeCalibration] = []
    floor = -math.inf
    for size in sorted(scores):
        probes = scores[size]
        if not passes(steps, probes)[0]:
            strangers = fpir_fnir(probes, 1.0, margin)[2].distinct_strangers
            raise InvalidRequestError(
                f"gallery size {size}: {strangers} distinct stranger photos cannot certify FPIR <= {target} at "
                f"risk {risk} even at threshold {threshold(steps)}; give more strangers or a larger target"
            )
        low, high = -1, steps  # passes(high) holds; passes(low) is taken as failing
        while high - low > 1:
            middle = (low + high) // 2
            if passes(middle, probes)[0]:
                high = middle
            else:
                low = middle
        certified = threshold(high)
        floor = max(floor, certified)
        fpir, fnir, rates = fpir_fnir(probes, floor, margin)
        losses = stranger_losses(probes, floor, margin)
        rows.append(
            SizeCalibration(
                size=size,
                certified=certified,
                threshold=floor,
                fpir=fpir,
                fpir_bound=fpir_upper_bound(losses, risk),
                fnir=fnir,
                p_value=hoeffding_bentkus_pvalue(losses, target),
                rates=rates,
            )
        )
    return GalleryThresholds(
        table=[[r.size, r.threshold] for r in rows],
        target=target,
        risk=risk,
        margin=margin,
        base=base,
        sizes=rows,
    )
