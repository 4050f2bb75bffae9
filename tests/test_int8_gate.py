"""The int8 gate is a paired test: exact McNemar p-values and Newcombe's interval checked against answers worked
out by hand or published, the bootstrap reproducible by its seed, the interval's coverage checked by brute force,
and the shipped profile's decisions re-derived from the counts it records."""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pytest

from frugalsense.calibration.paired import (
    PairedTest,
    items_needed,
    mcnemar_exact,
    newcombe_interval,
    wilson_interval,
)
from frugalsense.models.text import int8_gate_choice
from frugalsense.profiles import load_profile


def _two_sided_binomial(k: int, n: int) -> float:
    """By hand: twice the smaller tail of Binomial(n, 1/2), capped at 1."""
    tail = sum(comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("fp32_only", "int8_only", "expected"),
    [
        (0, 5, 2 / 32),  # 0.0625: five against none is not enough at 5%
        (0, 6, 2 / 64),
        (8, 1, 20 / 512),  # the "8 photos only fp32 gets right, 1 the other way": p = 0.039
        (1, 8, 20 / 512),  # symmetric
        (2, 10, 2 * (1 + 12 + 66) / 4096),
        (3, 3, 1.0),
        (0, 0, 1.0),  # nobody disagrees: no evidence of a difference
    ],
)
def test_exact_mcnemar_on_small_tables(fp32_only: int, int8_only: int, expected: float) -> None:
    assert mcnemar_exact(fp32_only, int8_only) == pytest.approx(expected, rel=1e-9)
    if fp32_only + int8_only:
        assert expected == pytest.approx(_two_sided_binomial(fp32_only, fp32_only + int8_only))


def test_wilson_interval_closed_form() -> None:
    z = 1.959963984540054
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(z * z / (10 + z * z))  # no successes: upper end z^2 / (n + z^2)
    low, high = wilson_interval(5, 10)
    half = z * math.sqrt(0.25 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half))


def test_newcombe_interval_matches_the_published_example() -> None:
    """Cavo et al. (2012) as worked in Fagerland, Lydersen & Laake, *Statistical Analysis of Contingency Tables*
    (ch. 8): 59 / 6 / 16 / 80, difference -0.0621 with the square-and-add interval -0.1186 to -0.0046."""
    low, high = newcombe_interval(59, 6, 16, 80)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)
    test = PairedTest(59, 6, 16, 80)
    assert test.loss == pytest.approx(-10 / 161)
    assert test.interval() == (low, high)


def test_no_disagreement_is_not_proof_on_a_handful_of_items() -> None:
    """Twenty photos both variants get right: the bootstrap interval collapses to [0, 0] and would pass int8 on
    nothing; the score interval keeps its width and does not."""
    test = PairedTest(both=20, reference_only=0, variant_only=0, neither=0)
    assert test.bootstrap_interval(seed=1) == (0.0, 0.0)
    low, high = test.interval()
    assert low < 0 < high and high > 0.1
    assert not test.passes(margin=0.01) and not test.fails(margin=0.01)
    assert test.items_needed(margin=0.01) > 20


def test_bootstrap_is_reproducible_with_a_seed_and_near_the_score_interval() -> None:
    test = PairedTest(both=430, reference_only=14, variant_only=4, neither=52)
    first = test.bootstrap_interval(seed=7)
    assert test.bootstrap_interval(seed=7) == first
    assert test.bootstrap_interval(seed=8) != first
    # On 18 disagreements the two intervals agree to a fraction of a point.
    assert np.allclose(first, test.interval(), atol=0.004)
    assert first[0] < test.loss < first[1]


def test_the_score_interval_covers_the_true_loss_by_brute_force() -> None:
    """2,000 tables drawn with a known loss (0.4 points, 3% of items disagreeing, n = 500): the 95% interval
    must hold the true loss about 95% of the time (Newcombe's method is slightly conservative)."""
    rng = np.random.default_rng(0)
    cells = np.array([0.86, 0.017, 0.013, 0.11])  # both, fp32 only, int8 only, neither
    truth = cells[1] - cells[2]
    draws = rng.multinomial(500, cells, size=2000)
    covered = [lo <= truth <= hi for lo, hi in (PairedTest(*map(int, row)).interval() for row in draws)]
    assert 0.93 <= np.mean(covered) <= 0.99


@pytest.mark.parametrize(
    ("table", "decision"),
    [
        ((440, 8, 1, 51), "undecided"),  # the Lite0 case: 1.4 points lost, interval wide
        ((9_000, 10, 10, 980), "passes"),  # ten thousand items, 20 disagreements: loss within 1 point
        ((9_000, 300, 50, 650), "fails"),  # 2.5 points lost, shown beyond the margin
    ],
)
def test_the_gate_decides_on_the_interval(table: tuple[int, int, int, int], decision: str) -> None:
    test = PairedTest(*table)
    assert test.passes(0.01) is (decision == "passes")
    assert test.fails(0.01) is (decision == "fails")


def test_items_needed_follows_the_normal_approximation() -> None:
    # (z_0.975 + z_0.8)^2 * (psi - loss^2) / (margin - loss)^2
    z = 1.959963984540054 + 0.8416212335729143
    assert items_needed(0.0, 0.02, 0.01) == math.ceil(z * z * 0.02 / 0.01**2)
    assert items_needed(0.004, 0.02, 0.01) == math.ceil(z * z * (0.02 - 0.004**2) / 0.006**2)
    assert items_needed(0.01, 0.02, 0.01) == math.inf  # a loss right at the margin is never decided
    assert items_needed(0.0, 0.04, 0.01) > items_needed(0.0, 0.02, 0.01)  # more disagreement, more items


def test_the_shipped_profile_states_its_promise_and_its_decisions_follow_from_its_counts() -> None:
    profile = load_profile("int8-gate")
    params = profile.params
    margin, confidence = params["margin_points"] / 100, params["confidence"]
    assert "int8 only" in params["promise"] and f"{params['margin_points']:g} point" in params["promise"]
    tested = 0
    for name, entry in params["models"].items():
        assert int8_gate_choice(name) == entry["use"]
        if "n" not in entry:
            assert entry["use"] == "fp32"  # nothing measured, nothing risked
            continue
        test = PairedTest(entry["both_right"], entry["fp32_only"], entry["int8_only"], entry["neither"])
        assert test.n == entry["n"]
        assert entry["use"] == ("int8" if test.passes(margin, confidence) else "fp32"), name
        assert [round(100 * v, 2) for v in test.interval(confidence)] == entry["interval_points"]
        tested += 1
    assert tested >= 3  # EfficientNet-Lite0/1/2 at least
