"""Group recurring unknown faces: incremental assignment on insert, and average-linkage re-clustering.

Single linkage alone chains strangers together: at a false-accept rate of 1e-3 per pair, a new face compared with
1,000 unknown faces links to some stranger about two times in three. So a face joins a cluster only when its
nearest member clears the strict threshold *and* its mean similarity to the cluster (a sample of members) clears
the identify threshold; re-clustering uses average linkage, which needs a whole group to agree.

    >>> import numpy as np
    >>> vectors = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99]], np.float32)
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> average_linkage(vectors, threshold=0.9).tolist()
    [0, 0, 1, 1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.faces.index import VectorIndex

__all__ = ["Cluster", "average_linkage", "nearest_cluster", "reuse_cluster_ids"]

#: members compared with a new face when checking the cluster's mean similarity
_SAMPLE = 32


@dataclass(frozen=True)
class Cluster:
    """Unknown faces that look like one person, most recent last."""

    id: str
    face_ids: list[str]
    first_seen: str
    last_seen: str
    sources: list[str]

    @property
    def size(self) -> int:
        return len(self.face_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "size": self.size,
            "face_ids": self.face_ids,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "sources": self.sources,
        }


def nearest_cluster(
    index: VectorIndex,
    vector: npt.NDArray[np.float32],
    *,
    link_threshold: float,
    mean_threshold: float,
    avoid: Sequence[str] = (),
) -> str | None:
    """The cluster an unknown face should join, or None for "start a new one".

    ``avoid`` lists clusters the face cannot belong to (another face in the same photo is already in them).
    """
    for hit in index.search(vector, top_k=8, unknown_only=True):
        if hit.similarity < link_threshold:
            return None
        if hit.cluster_id is None or hit.cluster_id in avoid:
            continue
        sims = index.face_similarity(vector, index.cluster_members(hit.cluster_id, limit=_SAMPLE))
        if sims and float(np.mean(list(sims.values()))) >= mean_threshold:
            return hit.cluster_id
    return None


def average_linkage(vectors: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    """Agglomerative clustering of unit vectors: merge the two groups with the highest mean pairwise cosine
    similarity while it is at least ``threshold``. Returns a group label per row (0, 1, ... by first row).

    Memory is n x n float32 and time at worst cubic, so callers cap n (a few thousand faces).
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = (vectors @ vectors.T).astype(np.float32)
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n, np.float32)
    parent = np.arange(n)
    while True:
        flat = int(np.argmax(sim))
        i, j = divmod(flat, n)
        if sim[i, j] < threshold:
            break
        # Lance-Williams update for average linkage: the merged group's similarity to any other group is the
        # size-weighted mean of its two parts' similarities.
        merged = (size[i] * sim[i] + size[j] * sim[j]) / (size[i] + size[j])
        sim[i], sim[:, i] = merged, merged
        sim[i, i] = -np.inf
        sim[j], sim[:, j] = -np.inf, -np.inf
        size[i] += size[j]
        parent[parent == j] = i
    _, labels = np.unique(parent, return_inverse=True)
    # Renumber by first appearance so labels are stable for a given input order.
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(label), len(order)) for label in labels], np.int64)


def reuse_cluster_ids(
    labels: Sequence[int], previous: Sequence[str | None], make_id: Callable[[], str]
) -> list[str]:
    """Name new groups after the cluster most of their members were in, so ids users saw stay valid."""
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), []).append(row)
    taken: set[str] = set()
    names: dict[int, str] = {}
    # Bigger groups choose first: they are the likelier heirs of an old cluster.
    for label, rows in sorted(groups.items(), key=lambda item: -len(item[1])):
        votes = Counter(previous[r] for r in rows if previous[r] is not None and previous[r] not in taken)
        name = str(votes.most_common(1)[0][0]) if votes else make_id()
        taken.add(name)
        names[label] = name
    return [names[int(label)] for label in labels]
