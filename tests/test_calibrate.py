"""Calibration with a guarantee, on synthetic score distributions whose answer is known in closed form.

The cheap rung's confidence c is uniform on [0, 1] and its answer is right with probability c; the strong rung
is always right. Stopping at the cheap rung when c >= t gives quality Q(t) = 1 - (1 - t)^2 / 2, so the least
threshold meeting a target q is t* = 1 - sqrt(2 (1 - q)).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from frugalsense.calibration.ltt import (
    NEVER,
    CalibrationTable,
    calibrate,
    hoeffding_bentkus_pvalue,
    simulate,
    wsr_pvalue,
)
from frugalsense.errors import InvalidRequestError
from frugalsense.profiles import load_profile


def synthetic(n: int, seed: int) -> CalibrationTable:
    rng = np.random.default_rng(seed)
    c = rng.uniform(size=n)
    right = rng.uniform(size=n) < c
    return CalibrationTable(
        ["cheap", "strong"],
        np.column_stack([c, np.ones(n)]),
        np.column_stack([right, np.ones(n)]).astype(float),
        np.column_stack([np.full(n, 0.01), np.full(n, 0.09)]),
    )


def population_quality(threshold: float) -> float:
    t = min(1.0, max(0.0, threshold))
    return 1.0 - (1.0 - t) ** 2 / 2.0


def analytic_threshold(target: float) -> float:
    return 1.0 - math.sqrt(2.0 * (1.0 - target))


@pytest.mark.parametrize("target", [0.9, 0.95, 0.98])
def test_threshold_lands_just_above_the_analytic_one(target: float) -> None:
    result = calibrate(synthetic(40_000, seed=1), target=target, risk=0.1)
    best = analytic_threshold(target)
    assert not result.fallback
    # Conservative (never below the least safe threshold) but not by much with 40,000 items.
    assert best - 0.01 <= result.thresholds[0] <= best + 0.04
    assert population_quality(result.thresholds[0]) >= target - 1e-3
    assert result.cpu < 0.1  # cheaper than always climbing (0.10 per item)


@pytest.mark.parametrize(("order_fraction", "method"), [(0.0, "wsr"), (0.3, "wsr"), (0.0, "hb")])
def test_guarantee_holds_over_many_draws(order_fraction: float, method: str) -> None:
    """Over 100 calibration sets of 600 items, the chosen threshold's true quality misses the target in at most
    about `risk` of them (binomial slack for 100 draws), and the betting bound still saves CPU in most of them."""
    target, risk = 0.95, 0.1
    misses = savings = 0
    for seed in range(100):
        result = calibrate(
            synthetic(600, seed=100 + seed),
            target=target,
            risk=risk,
            order_fraction=order_fraction,
            method=method,  # type: ignore[arg-type]
            seed=seed,
        )
        misses += population_quality(result.thresholds[0]) < target
        savings += not result.fallback
    assert misses <= 16  # P(Binomial(100, 0.1) > 16) < 0.025
    if method == "wsr":  # Hoeffding-Bentkus ignores the small variance: valid, but it rarely certifies here
        assert savings >= 50


def test_future_items_promise_holds_on_the_next_items_themselves() -> None:
    """With ``future_items=m`` the target holds on the mean of the next m items (not only in expectation) in all
    but about `risk` of 100 draws, while a plain calibration, certified just above the target, misses it there
    far more often; the stricter promise still saves CPU."""
    target, risk, m = 0.95, 0.1, 300
    strict_misses = plain_misses = savings = 0
    for seed in range(100):
        table = synthetic(600, seed=500 + seed)
        future = synthetic(m, seed=900 + seed)
        strict = calibrate(table, target=target, risk=risk, future_items=m)
        plain = calibrate(table, target=target, risk=risk)
        strict_misses += simulate(future, strict.thresholds).quality < target
        plain_misses += simulate(future, plain.thresholds).quality < target
        savings += not strict.fallback
        assert strict.thresholds[0] >= plain.thresholds[0]  # never less careful than the plain promise
    assert strict_misses <= 16  # P(Binomial(100, 0.1) > 16) < 0.025
    assert plain_misses > strict_misses
    assert savings >= 50
    assert strict.method.endswith(f"-next{m}")
    with pytest.raises(InvalidRequestError, match="future_items"):
        calibrate(table, target=target, risk=risk, future_items=0)


def test_impossible_target_falls_back_to_always_strongest() -> None:
    result = calibrate(synthetic(2_000, seed=3), target=1.0, risk=0.1)
    assert result.fallback
    assert result.thresholds == [NEVER]
    assert result.share_per_rung == [0.0, 1.0]
    assert result.quality == result.reference_quality == 1.0


def test_perfect_cheap_rung_is_trusted_everywhere() -> None:
    n = 1_000
    table = CalibrationTable(
        ["cheap", "strong"], np.full((n, 2), 0.7), np.ones((n, 2)), np.tile([0.01, 0.09], (n, 1))
    )
    result = calibrate(table, target=0.95, risk=0.05)
    assert result.share_per_rung[0] == 1.0
    assert result.relative_cpu == pytest.approx(0.1)


def test_three_rungs_climb_only_as_far_as_needed() -> None:
    """A middle rung that is always right lets every unsure item stop there, never at the costly top."""
    rng = np.random.default_rng(5)
    n = 5_000
    c = rng.uniform(size=n)
    quality = np.column_stack([rng.uniform(size=n) < c, np.ones(n), np.ones(n)]).astype(float)
    confidence = np.column_stack([c, np.full(n, 0.8), np.ones(n)])
    cpu = np.tile([0.01, 0.02, 1.0], (n, 1))
    result = calibrate(CalibrationTable(["a", "b", "c"], confidence, quality, cpu), target=0.97, risk=0.1)
    assert result.share_per_rung[2] < 0.01
    assert result.quality >= 0.97


def test_simulate_counts_every_rung_climbed() -> None:
    table = CalibrationTable(
        ["a", "b", "c"],
        [[0.9, 0.0, 1.0], [0.1, 0.9, 1.0], [0.1, 0.1, 1.0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 10, 100]] * 3,
    )
    run = simulate(table, [0.5, 0.5])
    assert run.stop_rung.tolist() == [0, 1, 2]
    assert run.item_cpu.tolist() == [1, 11, 111]
    assert run.quality == 1.0
    assert run.share_per_rung == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.0, "risk": 0.1}, "target"),
        ({"target": 1.2, "risk": 0.1}, "target"),
        ({"target": 0.9, "risk": 1.0}, "risk"),
        ({"target": 0.9, "risk": 0.1, "method": "bonferroni"}, "method"),
        ({"target": 0.9, "risk": 0.1, "order_fraction": 1.0}, "order_fraction"),
    ],
)
def test_bad_requests_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        calibrate(synthetic(100, seed=0), **kwargs)  # type: ignore[arg-type]


def test_pvalues_are_valid_at_the_null_boundary() -> None:
    """Losses with mean exactly alpha: each p-value rejects at level 0.1 in at most about 10% of draws."""
    rng = np.random.default_rng(7)
    alpha, delta = 0.5, 0.1
    p_bad = 0.005 / 0.505  # mostly 0.495, rarely 1.0: the shape of ladder losses
    rejections = {"wsr": 0, "hb": 0}
    for _ in range(400):
        losses = np.where(rng.uniform(size=300) < p_bad, 1.0, 0.495)
        rejections["wsr"] += wsr_pvalue(losses, alpha, delta) <= delta
        rejections["hb"] += hoeffding_bentkus_pvalue(losses, alpha) <= delta
    assert rejections["wsr"] <= 56  # 14%: binomial slack over 400 draws
    assert rejections["hb"] <= 56
    # ...and both see a clear improvement.
    assert wsr_pvalue(np.full(300, 0.3), alpha, delta) < 1e-6
    assert hoeffding_bentkus_pvalue(np.full(300, 0.3), alpha) < 1e-6


def test_table_round_trips_and_splits(tmp_path: Path) -> None:
    table = synthetic(101, seed=9)
    loaded = CalibrationTable.load(table.save(tmp_path / "t.npz"))
    assert loaded.rungs == table.rungs
    np.testing.assert_array_equal(loaded.quality, table.quality)
    first, rest = table.split(0.3, seed=1)
    assert (len(first), len(rest)) == (30, 71)
    with pytest.raises(InvalidRequestError, match="shape"):
        CalibrationTable(["a", "b"], np.zeros((3, 2)), np.zeros((3, 3)), np.zeros((3, 2)))


def test_profile_records_thresholds_and_provenance(tmp_path: Path) -> None:
    result = calibrate(synthetic(3_000, seed=11), target=0.95, risk=0.1)
    profile = result.to_profile("toy", params={"note": "synthetic"}, provenance={"data": "synthetic uniform"})
    profile.save(tmp_path / "toy.json")
    loaded = load_profile("toy", tmp_path)
    assert loaded.thresholds == [round(result.thresholds[0], 6)]
    assert loaded.target == 0.95 and loaded.risk == 0.1
    assert loaded.calibration["method"] == "ltt-shared-wsr"
    assert loaded.calibration["data"] == "synthetic uniform"
    assert loaded.calibration["n"] == 3_000
