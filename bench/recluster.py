"""Re-clustering unknown faces: the hand-written average linkage it replaced against SciPy's, side by side.

    python bench/recluster.py                 # n = 500, 1,000 and 3,000 (RECLUSTER_MAX), median of 3 runs
    python bench/recluster.py --sizes 3000 --runs 5

Data: realistic SFace-like unit vectors (128-d), made up so the answer is known: groups of 2 to 6 sightings of
one stranger, members of a group at cosine about 0.5 to 0.8 from each other (drawn per group), and one-off
strangers at cosine about 0 (random directions). Threshold: the shipped identify threshold, as
`FaceGallery.recluster` uses. Both algorithms must give the same partition (labels are numbered by first row, so
the arrays must be equal); "planted found" counts groups recovered exactly, members and nobody else.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt

from frugalsense.faces.clusters import RECLUSTER_MAX, average_linkage
from frugalsense.faces.profile import load_face_profile

Vectors = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def reference_average_linkage(vectors: Vectors, threshold: float) -> Labels:
    """The algorithm the gallery ran before SciPy: a dense n x n similarity matrix, merging the most similar pair
    of groups while their mean similarity is >= threshold (Lance-Williams update). At worst O(n^3)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = (vectors @ vectors.T).astype(np.float32)
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n, np.float32)
    owner = np.arange(n)
    while True:
        i, j = divmod(int(np.argmax(sim)), n)
        if sim[i, j] < threshold:
            break
        merged = (size[i] * sim[i] + size[j] * sim[j]) / (size[i] + size[j])
        sim[i, :] = merged
        sim[:, i] = merged
        sim[i, i] = -np.inf
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        size[i] += size[j]
        owner[owner == j] = i
    first: dict[int, int] = {}
    return np.array([first.setdefault(int(g), len(first)) for g in owner], np.int64)


def strangers(n: int, seed: int, grouped: float = 0.6) -> tuple[Vectors, Labels]:
    """`n` unit vectors, about `grouped` of them in planted groups; the planted group of each (-1 for one-offs)."""
    rng = np.random.default_rng(seed)
    rows: list[npt.NDArray[np.float64]] = []
    truth: list[int] = []
    group = 0
    while len(rows) < grouped * n:
        centre = rng.standard_normal(128)
        centre /= np.linalg.norm(centre)
        rho = rng.uniform(0.5, 0.8)  # the cosine two members of this group share, on average
        for _ in range(min(int(rng.integers(2, 7)), n - len(rows))):
            noise = rng.standard_normal(128)
            noise /= np.linalg.norm(noise)
            rows.append(np.sqrt(rho) * centre + np.sqrt(1 - rho) * noise)
            truth.append(group)
        group += 1
    while len(rows) < n:
        rows.append(rng.standard_normal(128))
        truth.append(-1)
    order = rng.permutation(n)
    matrix = np.array(rows)[order]
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix.astype(np.float32), np.array(truth, np.int64)[order]


def median_seconds(run: Callable[[], Labels], runs: int) -> tuple[float, Labels]:
    times, labels = [], np.zeros(0, np.int64)
    for _ in range(runs):
        started = time.perf_counter()
        labels = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), labels


def planted_found(labels: Labels, truth: Labels) -> tuple[int, int]:
    """Planted groups recovered exactly, of all planted groups."""
    found = 0
    groups = [g for g in np.unique(truth) if g >= 0]
    for g in groups:
        members = np.flatnonzero(truth == g)
        label = labels[members[0]]
        found += int(np.array_equal(np.flatnonzero(labels == label), members))
    return found, len(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, RECLUSTER_MAX])
    parser.add_argument("--runs", type=int, default=3, help="runs per algorithm and size (the median is shown)")
    args = parser.parse_args(argv)
    threshold = load_face_profile().identify_threshold
    print(f"average linkage at the identify threshold {threshold} (cut at cosine distance {1 - threshold:.3f})")
    print(f"median of {args.runs} runs, wall-clock seconds\n")
    print("| faces | hand-written (s) | SciPy (s) | speed-up | same partition | clusters (>= 2) | planted found |")
    print("|---:|---:|---:|---:|---|---:|---|")
    identical = True
    average_linkage(strangers(10, seed=0)[0], threshold)  # SciPy's import is not part of the timing
    for n in args.sizes:
        vectors, truth = strangers(n, seed=n)
        old_s, old = median_seconds(partial(reference_average_linkage, vectors, threshold), args.runs)
        new_s, new = median_seconds(partial(average_linkage, vectors, threshold), args.runs)
        same = bool(np.array_equal(old, new))
        identical &= same
        sizes = np.bincount(new)
        found, planted = planted_found(new, truth)
        print(
            f"| {n:,} | {old_s:.3f} | {new_s:.3f} | {old_s / new_s:.0f}x | {'yes' if same else 'NO'} | "
            f"{int(np.sum(sizes >= 2))} | {found} of {planted} |"
        )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
