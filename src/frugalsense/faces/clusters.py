"""Group recurring unknown faces: incremental assignment on insert, and average-linkage re-clustering
(`scipy.cluster.hierarchy`, run without the gallery's lock).

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

from frugalsense.faces._base import GalleryBase
from frugalsense.faces.index import VectorIndex
from frugalsense.store.base import FaceRecord, Person
from frugalsense.store.sqlite import new_id

__all__ = ["RECLUSTER_MAX", "Cluster", "Clustering", "average_linkage", "nearest_cluster", "reuse_cluster_ids"]

#: unknown faces re-clustered at once (the condensed distance matrix is n(n-1)/2 float64: 36 MB at 3,000)
RECLUSTER_MAX = 3000

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

    Average linkage never merges below an earlier merge, so this is SciPy's average-linkage tree on cosine
    distance cut at ``1 - threshold``. Memory is n(n - 1)/2 float64 and time quadratic, so callers cap n.
    """
    n = len(vectors)
    if n < 2:
        return np.zeros(n, np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    tree = linkage(pdist(np.asarray(vectors, np.float64), "cosine"), method="average")
    flat = fcluster(tree, t=1.0 - threshold, criterion="distance")
    # Renumber by first appearance so labels are stable for a given input order.
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(label), len(order)) for label in flat], np.int64)


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


class Clustering(GalleryBase):
    """`FaceGallery.clusters`, `recluster` and `promote_cluster`."""

    def clusters(self, tenant_id: str, min_size: int = 2) -> list[Cluster]:
        """Groups of unknown sightings that look like one person, biggest first."""
        groups: dict[str, list[FaceRecord]] = {}
        for record in self.store.list_faces(tenant_id, unknown_only=True):
            if record.cluster_id is not None:
                groups.setdefault(record.cluster_id, []).append(record)
        out = [
            Cluster(
                id=cluster_id,
                face_ids=[f.id for f in faces],
                first_seen=faces[0].created_at,
                last_seen=faces[-1].created_at,
                sources=list(dict.fromkeys(f.source_name for f in faces)),
            )
            for cluster_id, faces in groups.items()
            if len(faces) >= max(1, min_size)
        ]
        return sorted(out, key=lambda c: (-c.size, c.last_seen))

    def recluster(self, tenant_id: str) -> list[Cluster]:
        """Recompute clusters of unknown faces with average linkage (the most recent ``RECLUSTER_MAX``).

        The faces are read under the gallery's lock, clustered without it (identification, enrolment and erasure
        go on meanwhile), and the new clusters written under it again, only to faces still unknown and still in
        the cluster they were in when read: a face named, re-clustered or erased meanwhile keeps what happened.
        """
        with self._lock(tenant_id):
            ids, vectors, previous = self._index(tenant_id).unknown_faces()
        ids, vectors, previous = ids[-RECLUSTER_MAX:], vectors[-RECLUSTER_MAX:], previous[-RECLUSTER_MAX:]
        labels = average_linkage(vectors, self.profile.identify_threshold)
        names = reuse_cluster_ids(labels.tolist(), previous, lambda: new_id("clu"))
        moves = {f: (old, c) for f, c, old in zip(ids, names, previous, strict=True) if c != old}
        with self._lock(tenant_id):
            now_ids, _, now_clusters = self._index(tenant_id).unknown_faces()
            now = dict(zip(now_ids, now_clusters, strict=True))
            changes = {f: c for f, (old, c) in moves.items() if f in now and now[f] == old}
            if changes:
                self.store.set_clusters(tenant_id, changes)
                mirror = self._changed(tenant_id)  # None: it reloads with the new clusters on next use
                for face_id, cluster in changes.items():
                    if mirror is not None:
                        mirror.set_cluster(face_id, cluster)
        return self.clusters(tenant_id)

    def promote_cluster(self, tenant_id: str, cluster_id: str, collection_id: str, name: str) -> Person:
        """Name a cluster: a new person in ``collection_id`` whose enrolled faces are the cluster's faces."""
        with self._lock(tenant_id):
            person = self.store.promote_cluster(tenant_id, cluster_id, collection_id, name)
            index = self._changed(tenant_id) or self._index(tenant_id)
            for record in self.store.list_faces(tenant_id, person_id=person.id):
                index.update(
                    record.id,
                    collection_id=record.collection_id,
                    person_id=record.person_id,
                    enrolled=record.enrolled,
                    cluster_id=None,
                )
        return person
