"""Calibration with a guarantee: ladder thresholds that keep quality near the strongest rung's, for the least CPU.

Every rung of a ladder is run once on labelled items; a `CalibrationTable` records, per item and rung, the rung's
confidence, the quality of the answer if the ladder stopped there, and the CPU-seconds that rung alone spent.
`calibrate` then picks one threshold per rung (but the last) with Learn-then-Test (Angelopoulos et al., 2021):

- the per-item loss ``(target * q_ref - q_ladder + 1) / 2`` lies in [0, 1], and its mean is at most 1/2 exactly
  when the ladder's quality is at least ``target`` times the reference (strongest) rung's quality;
- candidates form a sequence fixed in advance: by default every rung below the reference shares one threshold,
  stepped from 1 (always climb) down to 0, so every item can test; with ``order_fraction > 0``, per-rung quantile
  grids are crossed and a first share of the items orders them along their estimated (loss, CPU) Pareto front
  (Pareto testing, Laufer-Goldshtein et al., 2022) while the rest tests them;
- walking the sequence from the safest end, each null hypothesis "mean loss > 1/2" is rejected when its p-value
  (Waudby-Smith–Ramdas betting, or Hoeffding–Bentkus) is at most ``risk``; testing stops at the first failure;
- of the certified vectors the one with the least measured CPU wins; with none, the ladder always climbs to the
  reference rung.

With probability at least ``1 - risk`` over the draw of calibration items (exchangeable with future ones), every
certified vector meets the target in expectation. With ``future_items=m`` the promise is about the mean over the
next ``m`` items instead (a test set, a month of traffic): a finite set scatters around the expectation, so a
candidate must clear the target by the normal quantile of the scatter of a mean over ``m`` items (its spread
estimated on the calibration items); ``risk`` is split in two (the test, the scatter of the ``m`` items).
docs/calibration.md states the assumptions and the limits.

    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> confidence = np.column_stack([rng.uniform(size=n), np.ones(n)])
    >>> cheap_right = rng.uniform(size=n) < confidence[:, 0]       # the cheap rung is right w.p. = confidence
    >>> quality = np.column_stack([cheap_right, np.ones(n)]).astype(float)
    >>> cpu = np.column_stack([np.full(n, 0.01), np.full(n, 0.1)])
    >>> table = CalibrationTable(["cheap", "strong"], confidence, quality, cpu)
    >>> result = calibrate(table, target=0.95, risk=0.1)
    >>> 0.5 < result.thresholds[0] < 0.9, result.quality >= 0.95, result.cpu < 0.1
    (True, True, True)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError, InvalidRequestError
from frugalsense.profiles import Profile

__all__ = [
    "NEVER",
    "Calibration",
    "CalibrationTable",
    "Method",
    "Simulation",
    "calibrate",
    "future_margin",
    "hoeffding_bentkus_pvalue",
    "simulate",
    "wsr_pvalue",
]

#: a threshold no confidence in [0, 1] reaches: the ladder always climbs past that rung
NEVER = 1.001
Method = Literal["wsr", "hb"]
Floats = npt.NDArray[np.float64]
_BLOCK = 256  # threshold vectors simulated at once: bounds memory at BLOCK x items x rungs booleans


@dataclass
class CalibrationTable:
    """Every rung run once on every item: confidence, quality if stopped there, and that rung's own CPU-seconds."""

    rungs: list[str]
    confidence: Floats  # (items, rungs) in [0, 1]; the last column is never compared with a threshold
    quality: Floats  # (items, rungs) in [0, 1]
    cpu: Floats  # (items, rungs) CPU-seconds of each rung alone (not cumulative)

    def __post_init__(self) -> None:
        self.rungs = [str(r) for r in self.rungs]
        self.confidence = np.asarray(self.confidence, np.float64)
        self.quality = np.asarray(self.quality, np.float64)
        self.cpu = np.asarray(self.cpu, np.float64)
        shape = (self.confidence.shape[0] if self.confidence.ndim == 2 else -1, len(self.rungs))
        for name in ("confidence", "quality", "cpu"):
            array = getattr(self, name)
            if array.ndim != 2 or array.shape != shape:
                raise InvalidRequestError(f"calibration table: {name} has shape {array.shape}, expected {shape}")
        if not self.rungs:
            raise InvalidRequestError("calibration table: a ladder needs at least one rung")
        if np.any(np.isnan(self.confidence)) or np.any(np.isnan(self.quality)) or np.any(np.isnan(self.cpu)):
            raise InvalidRequestError("calibration table holds NaN")
        if self.quality.min(initial=0.0) < 0 or self.quality.max(initial=0.0) > 1:
            raise InvalidRequestError("calibration table: quality must lie in [0, 1]")
        if self.cpu.min(initial=0.0) < 0:
            raise InvalidRequestError("calibration table: CPU-seconds cannot be negative")

    def __len__(self) -> int:
        return int(self.confidence.shape[0])

    def subset(self, index: npt.ArrayLike) -> CalibrationTable:
        """The rows `index` (an integer array or boolean mask)."""
        rows = np.asarray(index)
        return CalibrationTable(list(self.rungs), self.confidence[rows], self.quality[rows], self.cpu[rows])

    def split(self, fraction: float, seed: int) -> tuple[CalibrationTable, CalibrationTable]:
        """A random `fraction` of the items and the rest (e.g. calibration and held-out test)."""
        if not 0.0 < fraction < 1.0:
            raise InvalidRequestError(f"split fraction must be in (0, 1), got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = round(fraction * len(self))
        return self.subset(order[:cut]), self.subset(order[cut:])

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            np.savez_compressed(
                f, rungs=np.array(self.rungs), confidence=self.confidence, quality=self.quality, cpu=self.cpu
            )
        return target

    @classmethod
    def load(cls, path: str | Path) -> CalibrationTable:
        with np.load(Path(path)) as data:
            return cls([str(r) for r in data["rungs"]], data["confidence"], data["quality"], data["cpu"])


@dataclass(frozen=True)
class Simulation:
    """What a ladder with `thresholds` would have done on a table's items."""

    thresholds: list[float]
    quality: float  # mean quality of the answers
    cpu: float  # mean CPU-seconds per item, counting every rung climbed
    stop_rung: npt.NDArray[np.int64]  # per item: the rung that answered
    share_per_rung: list[float]  # share of items answered at each rung
    item_quality: Floats
    item_cpu: Floats


def simulate(table: CalibrationTable, thresholds: list[float] | npt.ArrayLike) -> Simulation:
    """Replay a ladder over a table: each item stops at the first rung whose confidence reaches its threshold.

    >>> t = CalibrationTable(["a", "b"], [[0.9, 1], [0.2, 1]], [[1, 1], [0, 1]], [[1, 5], [1, 5]])
    >>> s = simulate(t, [0.5])
    >>> s.stop_rung.tolist(), s.quality, s.cpu
    ([0, 1], 1.0, 3.5)
    """
    vector = np.asarray(thresholds, np.float64).reshape(1, -1)
    _check_width(table, vector)
    stop = _stops(table.confidence, vector)[0]
    rows = np.arange(len(table))
    item_quality = table.quality[rows, stop]
    item_cpu = np.cumsum(table.cpu, axis=1)[rows, stop]
    counts = np.bincount(stop, minlength=len(table.rungs))
    return Simulation(
        thresholds=[float(t) for t in vector[0]],
        quality=float(item_quality.mean()) if len(table) else 0.0,
        cpu=float(item_cpu.mean()) if len(table) else 0.0,
        stop_rung=stop.astype(np.int64),
        share_per_rung=[float(c) / max(1, len(table)) for c in counts],
        item_quality=item_quality,
        item_cpu=item_cpu,
    )


@dataclass(frozen=True)
class Calibration:
    """The thresholds chosen, what they do on the calibration items, and how they were certified."""

    rungs: list[str]
    thresholds: list[float]
    target: float
    risk: float
    method: str
    n: int  # calibration items in all
    n_order: int  # items that ordered the candidates
    n_test: int  # items that tested them
    quality: float  # the ladder's mean quality on all calibration items
    cpu: float  # its mean CPU-seconds per item
    reference: int  # index of the reference rung
    reference_quality: float
    reference_cpu: float  # mean CPU-seconds per item of climbing straight to the reference rung
    share_per_rung: list[float]
    p_value: float  # of the chosen vector (1.0 when falling back)
    tested: int  # candidates tested before the first failure (or the end of the sequence)
    certified: int
    fallback: bool  # True when nothing was certified and the ladder always climbs to the reference
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_quality(self) -> float:
        return self.quality / self.reference_quality if self.reference_quality > 0 else 1.0

    @property
    def relative_cpu(self) -> float:
        return self.cpu / self.reference_cpu if self.reference_cpu > 0 else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "risk": self.risk,
            "n": self.n,
            "n_order": self.n_order,
            "n_test": self.n_test,
            "quality": round(self.quality, 6),
            "reference_quality": round(self.reference_quality, 6),
            "relative_quality": round(self.relative_quality, 6),
            "cpu_s": round(self.cpu, 6),
            "reference_cpu_s": round(self.reference_cpu, 6),
            "relative_cpu": round(self.relative_cpu, 6),
            "share_per_rung": [round(s, 4) for s in self.share_per_rung],
            "p_value": self.p_value,
            "tested": self.tested,
            "certified": self.certified,
            "fallback": self.fallback,
            **self.extra,
        }

    def to_profile(
        self, task: str, *, params: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None
    ) -> Profile:
        """A versioned profile holding these thresholds, with the numbers and `provenance` (data, command...)."""
        calibration = {
            "created": datetime.now(UTC).date().isoformat(),
            **self.summary(),
            **(provenance or {}),
        }
        return Profile(
            task=task,
            rungs=list(self.rungs),
            thresholds=[round(t, 6) for t in self.thresholds],
            target=self.target,
            risk=self.risk,
            params=dict(params or {}),
            calibration=calibration,
        )


def calibrate(
    table: CalibrationTable,
    *,
    target: float,
    risk: float,
    reference: int = -1,
    candidates: int = 1000,
    method: Method = "wsr",
    order_fraction: float = 0.0,
    seed: int = 0,
    future_items: int | None = None,
) -> Calibration:
    """Thresholds meeting ``quality >= target * reference quality`` with probability >= 1 - risk, at least CPU.

    A cheap rung as good as the strong one is trusted everywhere; nothing certifies a target of 1.0:

    >>> t = CalibrationTable(["a", "b"], [[0.9, 1]] * 500 + [[0.1, 1]] * 500, [[1, 1]] * 1000, [[1, 9]] * 1000)
    >>> c = calibrate(t, target=0.95, risk=0.1)
    >>> c.thresholds, c.fallback, c.cpu
    ([0.1], False, 1.0)
    >>> calibrate(t, target=1.0, risk=0.1).fallback
    True
    """
    if not 0.0 < target <= 1.0:
        raise InvalidRequestError(f"target is a share of the reference quality in (0, 1], got {target}")
    if not 0.0 < risk < 1.0:
        raise InvalidRequestError(f"risk is a probability in (0, 1), got {risk}")
    if not 0.0 <= order_fraction < 1.0:
        raise InvalidRequestError(f"order_fraction must be in [0, 1), got {order_fraction}")
    if method not in ("wsr", "hb"):
        raise InvalidRequestError(f"method must be 'wsr' or 'hb', got {method!r}")
    if future_items is not None and future_items < 1:
        raise InvalidRequestError(f"future_items is a number of items (at least 1), got {future_items}")
    # A promise about the next items shares the risk between the test and the scatter of those items' mean.
    test_risk = risk if future_items is None else risk / 2.0
    k = len(table.rungs)
    ref = reference % k
    if len(table) < 10:
        raise InvalidRequestError(f"calibration needs at least 10 items, got {len(table)}")
    fallback_vector = _stop_at(ref, k)
    full_ref = simulate(table, fallback_vector)
    method_name = f"ltt-{'shared' if order_fraction == 0.0 else 'pareto'}-{method}"
    if future_items is not None:
        method_name += f"-next{future_items}"
    if k == 1:
        return _result(table, fallback_vector, full_ref, target, risk, method_name, 0, len(table), 1.0, 0, 0, True)

    if order_fraction == 0.0:
        # One shared threshold, stepped down from "always climb": an order fixed before seeing any data, so
        # every item can test it.
        order_part, test_part = table.subset(np.arange(0)), table
        sequence = _shared_thresholds(ref, k, candidates)
    else:
        order_part, test_part = table.split(order_fraction, seed)
        grid = _candidate_grid(order_part, ref, candidates)
        order_loss, order_cpu = _evaluate(order_part, grid, ref, target)
        sequence = grid[_pareto_sequence(order_loss, order_cpu)]

    certified: list[tuple[Floats, float]] = []
    tested = 0
    test_ref_quality = test_part.quality[:, ref]
    for block_start in range(0, len(sequence), _BLOCK):
        block = sequence[block_start : block_start + _BLOCK]
        losses = _item_losses(test_part, block, test_ref_quality, target)
        stop = False
        for vector, loss in zip(block, losses, strict=True):
            tested += 1
            alpha = 0.5 if future_items is None else 0.5 - future_margin(loss, future_items, test_risk)
            p = _pvalue(loss, alpha, test_risk, method) if alpha > 0 else 1.0
            if p > test_risk:
                stop = True
                break
            certified.append((vector, p))
        if stop:
            break

    if certified:
        costs = [simulate(table, v).cpu for v, _ in certified]
        vector, p = certified[int(np.argmin(costs))]
    else:
        vector, p = fallback_vector, 1.0  # nothing certified: always climb to the reference
    return _result(
        table,
        vector,
        full_ref,
        target,
        risk,
        method_name,
        len(order_part),
        len(test_part),
        p,
        tested,
        len(certified),
        not certified,
    )


def future_margin(losses: npt.ArrayLike, items: int, delta: float) -> float:
    """How far below 1/2 the expected loss must sit for the mean over `items` future items to stay under 1/2
    with probability about ``1 - delta``: the normal quantile of that mean's scatter, ``z(1 - delta) s / sqrt(m)``,
    with ``s`` the standard deviation of the calibration losses (a plug-in; see docs/calibration.md).

    >>> quiet, noisy = np.full(500, 0.49), np.tile([0.0, 1.0], 250)
    >>> future_margin(quiet, 250, 0.05) < 1e-9, round(future_margin(noisy, 250, 0.05), 3)
    (True, 0.052)
    """
    x = np.clip(np.asarray(losses, np.float64), 0.0, 1.0)
    if len(x) < 2:
        return 0.5
    spread = float(x.std(ddof=1))
    return NormalDist().inv_cdf(1.0 - delta) * spread / math.sqrt(items)


def wsr_pvalue(losses: npt.ArrayLike, alpha: float, delta: float) -> float:
    """p-value for "mean loss > alpha" from a Waudby-Smith–Ramdas betting martingale (losses in [0, 1]).

    The capital ``prod(1 + bet_i * (alpha - loss_i))`` grows when losses sit below ``alpha``; under the null it
    is a non-negative supermartingale starting at 1, so by Ville's inequality 1 / (its largest value) is a valid
    p-value. Each bet is predictable (it uses only earlier losses): the plug-in rule of Bates et al. (2021),
    ``sqrt(2 log(1/delta) / (n var))`` with a running variance, capped just under ``1 / (1 - alpha)`` so that no
    loss in [0, 1] can turn the capital negative. Ladder losses are mostly a hair under ``alpha``: the small
    variance lets the bets grow, and a run of bad items shrinks them again.

    >>> wsr_pvalue(np.zeros(50), 0.5, 0.1) < 1e-6, wsr_pvalue(np.ones(50), 0.5, 0.1)
    (True, 1.0)
    """
    x = np.clip(np.asarray(losses, np.float64), 0.0, 1.0)
    n = len(x)
    if n == 0:
        return 1.0
    steps = np.arange(1, n + 1)
    mean = (0.5 + np.cumsum(x)) / (steps + 1)
    variance = (0.25 + np.cumsum((x - mean) ** 2)) / (steps + 1)
    previous = np.concatenate([[0.25], variance[:-1]])
    cap = 0.999 / max(1e-12, 1.0 - alpha)
    bets = np.minimum(cap, np.sqrt(2.0 * math.log(1.0 / delta) / (n * previous)))
    log_capital = np.cumsum(np.log1p(bets * (alpha - x)))
    return float(min(1.0, math.exp(-max(0.0, float(log_capital.max())))))


def hoeffding_bentkus_pvalue(losses: npt.ArrayLike, alpha: float) -> float:
    """p-value for "mean loss > alpha" from the Hoeffding–Bentkus bound (Bates et al., 2021; losses in [0, 1]).

    >>> hoeffding_bentkus_pvalue(np.zeros(100), 0.5) < 1e-20, hoeffding_bentkus_pvalue(np.ones(100), 0.5)
    (True, 1.0)
    """
    x = np.clip(np.asarray(losses, np.float64), 0.0, 1.0)
    n = len(x)
    if n == 0:
        return 1.0
    mean = float(x.mean())
    a = min(mean, alpha)
    hoeffding = math.exp(-n * _kl_bernoulli(a, alpha))
    bentkus = math.e * _binomial_cdf(math.ceil(n * mean), n, alpha)
    return float(min(1.0, hoeffding, bentkus))


# -- internals ------------------------------------------------------------------------------------------------


def _check_width(table: CalibrationTable, vectors: Floats) -> None:
    if vectors.shape[1] != len(table.rungs) - 1:
        raise ConfigurationError(
            f"{len(table.rungs)} rungs need {len(table.rungs) - 1} thresholds, got {vectors.shape[1]}"
        )


def _stops(confidence: Floats, vectors: Floats) -> npt.NDArray[np.intp]:
    """(vectors, items): index of the first rung whose confidence reaches its threshold (the last rung always)."""
    n, k = confidence.shape
    passes = np.ones((len(vectors), n, k), bool)
    passes[:, :, : k - 1] = confidence[None, :, : k - 1] >= vectors[:, None, :]
    stops: npt.NDArray[np.intp] = np.argmax(passes, axis=2)
    return stops


def _stop_at(rung: int, k: int) -> Floats:
    """The threshold vector that always climbs to `rung` and stops there."""
    vector = np.full(k - 1, NEVER)
    if rung < k - 1:
        vector[rung] = 0.0
    return vector


def _candidate_grid(table: CalibrationTable, ref: int, candidates: int) -> Floats:
    """Per-rung quantile levels of the confidences (plus "never stop"), crossed; rungs above `ref` never answer."""
    free = ref  # rungs below the reference may stop an item; the reference itself always stops it
    if free == 0:
        return _stop_at(ref, len(table.rungs)).reshape(1, -1)
    per_rung = max(2, math.floor(candidates ** (1.0 / free) + 0.5) - 1)
    levels = np.linspace(0.0, 1.0, per_rung)
    axes = []
    for rung in range(free):
        values = np.unique(np.quantile(table.confidence[:, rung], levels))
        axes.append(np.concatenate([values, [NEVER]]))
    tail = _stop_at(ref, len(table.rungs))[free:]
    grid = np.array([list(combo) + list(tail) for combo in itertools.product(*axes)], np.float64)
    return grid


def _shared_thresholds(ref: int, k: int, candidates: int) -> Floats:
    """The 1-D family: every rung below the reference shares one threshold, from 1 down to 0."""
    levels = np.round(np.linspace(1.0, 0.0, max(1, candidates) + 1), 6)
    grid = np.tile(_stop_at(ref, k), (len(levels), 1))
    grid[:, :ref] = levels[:, None]
    return grid


def _item_losses(table: CalibrationTable, vectors: Floats, ref_quality: Floats, target: float) -> Floats:
    """(vectors, items) losses in [0, 1]; a mean at most 1/2 means the target is met."""
    stop = _stops(table.confidence, vectors)
    rows = np.arange(len(table))[None, :]
    ladder_quality = table.quality[rows, stop]
    losses: Floats = (target * ref_quality[None, :] - ladder_quality + 1.0) / 2.0
    return losses


def _evaluate(table: CalibrationTable, grid: Floats, ref: int, target: float) -> tuple[Floats, Floats]:
    """Mean loss and mean CPU per item of every candidate vector on `table`."""
    cumulative = np.cumsum(table.cpu, axis=1)
    rows = np.arange(len(table))[None, :]
    loss = np.empty(len(grid))
    cpu = np.empty(len(grid))
    for start in range(0, len(grid), _BLOCK):
        block = grid[start : start + _BLOCK]
        stop = _stops(table.confidence, block)
        loss[start : start + len(block)] = _item_losses(table, block, table.quality[:, ref], target).mean(axis=1)
        cpu[start : start + len(block)] = cumulative[rows, stop].mean(axis=1)
    return loss, cpu


def _pareto_sequence(loss: Floats, cpu: Floats) -> npt.NDArray[np.intp]:
    """Candidates on the (loss, CPU) Pareto front, safest (lowest estimated loss) first."""
    order = np.lexsort((cpu, loss))
    keep = []
    cheapest = math.inf
    for i in order:
        if cpu[i] < cheapest - 1e-15:
            keep.append(i)
            cheapest = float(cpu[i])
    return np.array(keep, dtype=np.intp)


def _pvalue(losses: Floats, alpha: float, delta: float, method: Method) -> float:
    return wsr_pvalue(losses, alpha, delta) if method == "wsr" else hoeffding_bentkus_pvalue(losses, alpha)


def _kl_bernoulli(a: float, b: float) -> float:
    def term(p: float, q: float) -> float:
        return 0.0 if p <= 0.0 else p * math.log(p / q)

    return term(a, b) + term(1.0 - a, 1.0 - b)


def _binomial_cdf(m: int, n: int, p: float) -> float:
    if m < 0:
        return 0.0
    if m >= n:
        return 1.0
    ks = np.arange(m + 1)
    log_terms = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(k + 1) + math.lgamma(n - k + 1) for k in ks])
        + ks * math.log(p)
        + (n - ks) * math.log1p(-p)
    )
    top = float(log_terms.max())
    return float(min(1.0, math.exp(top) * float(np.exp(log_terms - top).sum())))


def _result(
    table: CalibrationTable,
    vector: Floats,
    reference_run: Simulation,
    target: float,
    risk: float,
    method: str,
    n_order: int,
    n_test: int,
    p_value: float,
    tested: int,
    certified: int,
    fallback: bool,
) -> Calibration:
    run = simulate(table, vector)
    ref = int(reference_run.stop_rung[0]) if len(table) else len(table.rungs) - 1
    return Calibration(
        rungs=list(table.rungs),
        thresholds=[float(t) for t in vector],
        target=target,
        risk=risk,
        method=method,
        n=len(table),
        n_order=n_order,
        n_test=n_test,
        quality=run.quality,
        cpu=run.cpu,
        reference=ref,
        reference_quality=reference_run.quality,
        reference_cpu=reference_run.cpu,
        share_per_rung=run.share_per_rung,
        p_value=float(p_value),
        tested=tested,
        certified=certified,
        fallback=fallback,
    )
