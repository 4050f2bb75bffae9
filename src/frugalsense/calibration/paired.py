"""Is a cheaper variant (int8) as good as the reference (fp32) on the same items, within a stated margin?

Both variants answer the same items, so the evidence is in the items where they disagree: ``b`` items only the
reference gets right, ``c`` only the variant. A point difference on a few hundred items says little (8 against
1 is a 1.4-point loss on 500 photos, and chance alone makes such splits), so the decision is a test:

- the **loss** is ``(b - c) / n``, the reference's top-1 minus the variant's;
- its **95% interval** is Newcombe's hybrid score interval for paired proportions (method 10 of Newcombe, 1998,
  Stat. Med. 17:2635): Wilson intervals of the two marginal rates, combined with their correlation. It keeps its
  width when nobody disagrees (a bootstrap interval collapses to a point there, and would pass any model on a
  handful of items);
- the variant **passes** when the interval's upper end is at most the margin: "the loss is at most the margin",
  with 95% confidence (the upper end of a two-sided 95% interval is a one-sided 97.5% bound);
- McNemar's exact test (two-sided binomial test of ``b`` against ``b + c`` at one half) says whether the two
  differ at all; a paired bootstrap interval is there to compare with;
- **items needed**: how many items, at the rates seen, make the interval decide either way with 80% power
  (the normal approximation for paired proportions, Connor 1987).

Offline code: the int8 bench (``bench/int8_gate.py``) writes the decisions into the ``int8-gate`` profile that
the models read; nothing here runs in the server.

    >>> test = PairedTest(both=440, reference_only=8, variant_only=1, neither=51)
    >>> round(test.loss * 100, 2), test.passes(margin=0.01)
    (1.4, False)
    >>> round(mcnemar_exact(8, 1), 4)
    0.0391
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PairedTest", "items_needed", "mcnemar_exact", "newcombe_interval", "wilson_interval"]


def mcnemar_exact(reference_only: int, variant_only: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of the discordant split against one half.

    >>> mcnemar_exact(0, 5), mcnemar_exact(3, 3)
    (0.0625, 1.0)
    """
    from scipy.stats import binomtest

    discordant = reference_only + variant_only
    if discordant == 0:
        return 1.0
    return float(binomtest(reference_only, discordant, 0.5, alternative="two-sided").pvalue)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion.

    >>> [round(v, 4) for v in wilson_interval(0, 10)]
    [0.0, 0.2775]
    """
    if n <= 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(
    both: int, reference_only: int, variant_only: int, neither: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's method-10 interval for the paired difference (reference rate minus variant rate)."""
    n = both + reference_only + variant_only + neither
    if n == 0:
        return (-1.0, 1.0)
    right_ref, right_var = both + reference_only, both + variant_only
    p1, p2 = right_ref / n, right_var / n
    l1, u1 = wilson_interval(right_ref, n, confidence)
    l2, u2 = wilson_interval(right_var, n, confidence)
    # phi: the correlation of the two answers over items, its positive part shrunk by n/2 (Newcombe's
    # continuity correction: a weaker correlation, a wider interval); 0 when a margin is empty.
    margins = right_ref * (n - right_ref) * right_var * (n - right_var)
    cross = both * neither - reference_only * variant_only
    shrunk = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = shrunk / math.sqrt(margins) if margins > 0 else 0.0
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    difference = p1 - p2
    return (
        max(-1.0, difference - math.sqrt(max(0.0, below))),
        min(1.0, difference + math.sqrt(max(0.0, above))),
    )


def items_needed(
    loss: float, discordant_rate: float, margin: float, *, confidence: float = 0.95, power: float = 0.8
) -> float:
    """Items for the interval to fall on one side of `margin` with probability `power`, if the true loss and
    share of disagreeing items are these (normal approximation; infinite when the loss is the margin).

    >>> round(items_needed(0.0, 0.03, 0.01))
    2355
    """
    from scipy.stats import norm

    gap = abs(margin - loss)
    if gap == 0:
        return math.inf
    variance = max(discordant_rate - loss * loss, 1e-12)
    z = _z(confidence) + float(norm.ppf(power))
    return math.ceil(z * z * variance / (gap * gap))


@dataclass(frozen=True)
class PairedTest:
    """The 2x2 table of one reference and one variant on the same items, and what it supports."""

    both: int  # both right
    reference_only: int  # only the reference right (b)
    variant_only: int  # only the variant right (c)
    neither: int

    def __post_init__(self) -> None:
        if min(self.both, self.reference_only, self.variant_only, self.neither) < 0:
            raise ValueError("a paired table counts items: no negative counts")

    @classmethod
    def from_answers(cls, reference_right: npt.ArrayLike, variant_right: npt.ArrayLike) -> PairedTest:
        """From per-item correctness of the two variants (same items, same order).

        >>> PairedTest.from_answers([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
        PairedTest(both=2, reference_only=1, variant_only=1, neither=1)
        """
        ref = np.asarray(reference_right, bool)
        var = np.asarray(variant_right, bool)
        if ref.shape != var.shape or ref.ndim != 1:
            raise ValueError(f"paired answers need two equal 1-d arrays, got {ref.shape} and {var.shape}")
        return cls(
            int(np.sum(ref & var)), int(np.sum(ref & ~var)), int(np.sum(~ref & var)), int(np.sum(~ref & ~var))
        )

    @property
    def n(self) -> int:
        return self.both + self.reference_only + self.variant_only + self.neither

    @property
    def reference_rate(self) -> float:
        return (self.both + self.reference_only) / self.n if self.n else 0.0

    @property
    def variant_rate(self) -> float:
        return (self.both + self.variant_only) / self.n if self.n else 0.0

    @property
    def loss(self) -> float:
        """The reference's rate minus the variant's (positive: the variant is worse)."""
        return (self.reference_only - self.variant_only) / self.n if self.n else 0.0

    @property
    def discordant(self) -> int:
        return self.reference_only + self.variant_only

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided interval of the loss (Newcombe's method 10)."""
        return newcombe_interval(self.both, self.reference_only, self.variant_only, self.neither, confidence)

    def mcnemar_p(self) -> float:
        return mcnemar_exact(self.reference_only, self.variant_only)

    def bootstrap_interval(
        self, confidence: float = 0.95, *, resamples: int = 10_000, seed: int = 0
    ) -> tuple[float, float]:
        """Percentile interval of the loss over paired resamples of the items (a resample of n paired items
        is a multinomial draw of the table's four cells); the same seed gives the same interval."""
        if self.n == 0:
            return (-1.0, 1.0)
        cells = np.array([self.both, self.reference_only, self.variant_only, self.neither], np.float64)
        draws = np.random.default_rng(seed).multinomial(self.n, cells / self.n, size=resamples)
        losses = (draws[:, 1] - draws[:, 2]) / self.n
        tail = (1 - confidence) / 2
        low, high = np.quantile(losses, [tail, 1 - tail])
        return (float(low), float(high))

    def passes(self, margin: float, confidence: float = 0.95) -> bool:
        """The variant is within `margin` of the reference: the interval's upper end is at most `margin`."""
        return self.interval(confidence)[1] <= margin

    def fails(self, margin: float, confidence: float = 0.95) -> bool:
        """The variant is shown worse than `margin` allows: even the interval's lower end is above it."""
        return self.interval(confidence)[0] > margin

    def items_needed(self, margin: float, confidence: float = 0.95, power: float = 0.8) -> float:
        """Items to decide at the rates seen here (disagreements at least one in n, so none seen is not
        read as none ever)."""
        rate = max(self.discordant, 1) / self.n if self.n else 1.0
        return items_needed(self.loss, rate, margin, confidence=confidence, power=power)
