"""Re-clustering unknown faces: SciPy's average linkage gives the partition of the definition, checked against a
brute-force reference (every merge recomputes every pair of groups' mean similarity from the vectors)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from frugalsense.faces.clusters import average_linkage


def brute_force_average_linkage(vectors: npt.NDArray[np.float32], threshold: float) -> list[int]:
    """Merge the two groups whose mean pairwise cosine similarity is highest while it is >= threshold; labels
    numbered by first row. Slow on purpose: nothing is updated incrementally."""
    sims = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    groups = [[i] for i in range(len(vectors))]
    while len(groups) > 1:
        best, pair = -np.inf, (0, 0)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                mean = float(sims[np.ix_(groups[a], groups[b])].mean())
                if mean > best:
                    best, pair = mean, (a, b)
        if best < threshold:
            break
        a, b = pair
        groups[a] = groups[a] + groups.pop(b)
    owner = {row: g for g, members in enumerate(groups) for row in members}
    first: dict[int, int] = {}
    return [first.setdefault(owner[row], len(first)) for row in range(len(vectors))]


def clustered(n: int, seed: int) -> npt.NDArray[np.float32]:
    """About half the rows in groups of 2-5 (members at cosine 0.5-0.8 to each other), the rest random."""
    rng = np.random.default_rng(seed)
    rows: list[npt.NDArray[np.float64]] = []
    while len(rows) < n // 2:
        centre = rng.standard_normal(128)
        centre /= np.linalg.norm(centre)
        rho = rng.uniform(0.5, 0.8)
        for _ in range(int(rng.integers(2, 6))):
            noise = rng.standard_normal(128)
            rows.append(np.sqrt(rho) * centre + np.sqrt(1 - rho) * noise / np.linalg.norm(noise))
    rows += list(rng.standard_normal((n - len(rows), 128)))
    matrix = np.array(rows)[rng.permutation(len(rows))]
    unit: npt.NDArray[np.float32] = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    return unit


@pytest.mark.parametrize(("n", "seed", "threshold"), [(40, 1, 0.364), (80, 2, 0.364), (80, 3, 0.5), (60, 4, 0.2)])
def test_scipy_gives_the_partition_of_the_definition(n: int, seed: int, threshold: float) -> None:
    vectors = clustered(n, seed)
    labels = average_linkage(vectors, threshold)
    assert labels.tolist() == brute_force_average_linkage(vectors, threshold)
    assert 1 < labels.max() + 1 < n  # some groups merged, not everything: the case says something


def test_merges_need_the_whole_group_to_agree() -> None:
    """a-b are 0.8 alike and b-c 0.6, a-c not at all: single linkage at 0.5 would chain all three; average linkage
    joins a and b, then c's mean similarity to them is 0.3, under 0.5, so c stays apart (and joins at 0.25)."""
    a, c = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    vectors = np.array([a, 0.8 * a + 0.6 * c, c], np.float32)
    assert average_linkage(vectors, 0.5).tolist() == brute_force_average_linkage(vectors, 0.5) == [0, 0, 1]
    assert average_linkage(vectors, 0.25).tolist() == [0, 0, 0]


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_faces_to_merge(n: int) -> None:
    assert average_linkage(np.ones((n, 128), np.float32) / np.sqrt(128), 0.364).tolist() == [0] * n
