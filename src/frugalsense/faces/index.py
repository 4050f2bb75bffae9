"""Exact cosine search over one tenant's faces: a contiguous float32 matrix and one matrix-vector product.

Why not an approximate index (sqlite-vec, usearch, hnswlib, faiss)? At the sizes a small business reaches, exact
search is fast enough and simpler: embeddings are unit vectors, so cosine similarity is a dot product and a whole
gallery is scored by one matrix-vector product (`frugalsense.vectors.VectorMatrix`, in the calling thread, so the
receipt sees all of it). 100,000 faces x 128 dims is 51 MB (n * 128 * 4 bytes) and one query takes a few
milliseconds on one core (``benchmark()`` measures it; ``bench/calibrate_faces.py`` prints it), well
under the 50 ms p95 target for identification. Exact search has no recall loss (an approximate index can miss
the one enrolled face that makes "unknown" wrong), needs no extra library, and updates and deletes are
immediate, which erasure needs. Past about 1-2 million faces per tenant the matvec reaches tens of milliseconds
and the matrix hundreds of MB: switch to HNSW there, behind the same methods.

    >>> import numpy as np
    >>> index = VectorIndex(dim=3)
    >>> a, b = np.array([1, 0, 0], np.float32), np.array([0, 1, 0], np.float32)
    >>> index.add("face_a", a, collection_id="col_1", person_id="per_1", enrolled=True)
    >>> index.add("face_b", b, collection_id="col_1")
    >>> [(hit.face_id, round(hit.similarity, 2)) for hit in index.search(np.array([0.9, 0.1, 0], np.float32), 2)]
    [('face_a', 0.9), ('face_b', 0.1)]
    >>> index.person_scores(np.array([1, 0, 0], np.float32), collection_id="col_1")
    [('per_1', 1.0)]
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.store.base import FaceVectors
from frugalsense.vectors import VectorMatrix, best_first

__all__ = ["Hit", "VectorIndex", "benchmark"]

Vector = npt.NDArray[np.float32]

_NONE = -1  # code of "no collection / person / cluster"


@dataclass(frozen=True)
class Hit:
    face_id: str
    similarity: float
    person_id: str | None
    enrolled: bool
    cluster_id: str | None


class _Codes:
    """Interns strings (collection, person and cluster ids) as small ints so filters are array comparisons."""

    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, name: str | None) -> int:
        if name is None:
            return _NONE
        found = self.by_name.get(name)
        if found is None:
            found = self.by_name[name] = len(self.names)
            self.names.append(name)
        return found

    def lookup(self, name: str | None) -> int | None:
        """The code of a name already seen, None for a name never seen (so nothing can match it)."""
        return _NONE if name is None else self.by_name.get(name)

    def name(self, code: int) -> str | None:
        return None if code == _NONE else self.names[code]


class VectorIndex:
    """One tenant's face embeddings (unit vectors) with the facts the searches filter on. Thread-safe.

    The vectors live in one `VectorMatrix` (contiguous rows, one product per search); the facts are its columns,
    strings interned as small ints so filters are array comparisons.
    """

    def __init__(self, dim: int = 128, capacity: int = 1024) -> None:
        self._lock = threading.RLock()
        self._rows: VectorMatrix[str] = VectorMatrix(
            dim,
            capacity,
            columns={
                "collection": (np.int32, _NONE),
                "person": (np.int32, _NONE),
                "cluster": (np.int32, _NONE),
                "enrolled": (np.bool_, False),
            },
        )
        self._collections, self._persons, self._clusters = _Codes(), _Codes(), _Codes()
        #: face id -> persons that face was corrected as not being
        self.negatives: dict[str, set[str]] = {}
        #: the store's face version for the tenant that these rows reflect
        self.version = 0
        self._enrolled_counts: dict[str | None, int] = {}  # collection -> enrolled faces; cleared on writes

    @classmethod
    def from_vectors(cls, vectors: FaceVectors, dim: int = 128) -> VectorIndex:
        n = len(vectors.ids)
        index = cls(dim=vectors.matrix.shape[1] if n else dim, capacity=max(1024, n + n // 4))
        with index._lock:
            index._rows.add(
                vectors.ids,
                vectors.matrix,
                collection=[index._collections.code(c) for c in vectors.collection_ids],
                person=[index._persons.code(p) for p in vectors.person_ids],
                cluster=[index._clusters.code(c) for c in vectors.cluster_ids],
                enrolled=vectors.enrolled,
            )
        return index

    @property
    def dim(self) -> int:
        return self._rows.dim

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._rows

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors themselves (capacity included)."""
        return self._rows.nbytes

    # -- writes ---------------------------------------------------------------------------------------------

    def add(
        self,
        face_id: str,
        vector: Vector,
        *,
        collection_id: str | None = None,
        person_id: str | None = None,
        enrolled: bool = False,
        cluster_id: str | None = None,
    ) -> None:
        vec = np.asarray(vector, np.float32).reshape(1, -1)
        with self._lock:
            self._enrolled_counts.clear()
            self._rows.add(
                [face_id],
                vec,
                collection=self._collections.code(collection_id),
                person=self._persons.code(person_id),
                cluster=self._clusters.code(cluster_id),
                enrolled=enrolled,
            )

    def update(
        self,
        face_id: str,
        *,
        collection_id: str | None,
        person_id: str | None,
        enrolled: bool,
        cluster_id: str | None,
    ) -> None:
        """Replace a face's facts (after a correction or a clustering); a face not held is ignored."""
        with self._lock:
            self._enrolled_counts.clear()
            i = self._rows.row(face_id)
            if i is None:
                return
            self._rows.column("collection")[i] = self._collections.code(collection_id)
            self._rows.column("person")[i] = self._persons.code(person_id)
            self._rows.column("cluster")[i] = self._clusters.code(cluster_id)
            self._rows.column("enrolled")[i] = enrolled

    def set_cluster(self, face_id: str, cluster_id: str | None) -> None:
        with self._lock:
            i = self._rows.row(face_id)
            if i is not None:
                self._rows.column("cluster")[i] = self._clusters.code(cluster_id)

    def remove_collection(self, collection_id: str) -> int:
        """Drop every face of a collection (it is being erased); returns how many went."""
        with self._lock:
            self._enrolled_counts.clear()
            code = self._collections.lookup(collection_id)
            if code is None:
                return 0
            gone = self._rows.keep(self._rows.column("collection") != code)
            for face_id in gone:
                self.negatives.pop(face_id, None)
            return len(gone)

    def remove(self, face_ids: Iterable[str]) -> int:
        """Drop faces (unknown ids are ignored); returns how many went."""
        with self._lock:
            self._enrolled_counts.clear()
            doomed = list(face_ids)
            for face_id in doomed:
                self.negatives.pop(face_id, None)
            return self._rows.remove(doomed)

    # -- reads ----------------------------------------------------------------------------------------------

    def similarities(self, vector: Vector) -> npt.NDArray[np.float32]:
        """Cosine similarity of ``vector`` (unit length) to every face, in row order."""
        with self._lock:
            return self._rows.scores(vector)

    def _mask(
        self, collection_id: str | None, enrolled_only: bool, unknown_only: bool
    ) -> npt.NDArray[np.bool_] | None:
        mask: npt.NDArray[np.bool_] | None = None
        if collection_id is not None:
            code = self._collections.lookup(collection_id)
            collections = self._rows.column("collection")
            mask = np.zeros(len(collections), bool) if code is None else collections == code
        if enrolled_only:
            enrolled = self._rows.column("enrolled")
            mask = enrolled if mask is None else mask & enrolled
        if unknown_only:
            unknown = self._rows.column("person") == _NONE
            mask = unknown if mask is None else mask & unknown
        return mask

    def search(
        self,
        vector: Vector,
        top_k: int = 10,
        *,
        collection_id: str | None = None,
        enrolled_only: bool = False,
        unknown_only: bool = False,
        exclude: str | None = None,
    ) -> list[Hit]:
        """The ``top_k`` most similar faces, best first, among those the filters keep."""
        with self._lock:
            scores = self.similarities(vector)
            mask = self._mask(collection_id, enrolled_only, unknown_only)
            excluded = None if exclude is None else self._rows.row(exclude)
            if excluded is not None:
                mask = np.ones(len(self._rows), bool) if mask is None else mask.copy()
                mask[excluded] = False
            rows = np.flatnonzero(mask) if mask is not None else np.arange(len(self._rows))
            if len(rows) == 0 or top_k <= 0:
                return []
            chosen = scores[rows]
            return [self._hit(int(rows[j]), float(chosen[j])) for j in best_first(chosen, top_k)]

    def _hit(self, row: int, similarity: float) -> Hit:
        return Hit(
            face_id=self._rows.ids[row],
            similarity=similarity,
            person_id=self._persons.name(int(self._rows.column("person")[row])),
            enrolled=bool(self._rows.column("enrolled")[row]),
            cluster_id=self._clusters.name(int(self._rows.column("cluster")[row])),
        )

    def enrolled_faces(self, collection_id: str | None = None) -> int:
        """How many enrolled faces (of persons) a collection holds: the comparisons an identification makes, the
        gallery size its threshold is chosen for."""
        with self._lock:
            found = self._enrolled_counts.get(collection_id)
            if found is None:
                mask = self._mask(collection_id, enrolled_only=True, unknown_only=False)
                persons = self._rows.column("person")
                chosen = persons if mask is None else persons[mask]
                found = self._enrolled_counts[collection_id] = int(np.count_nonzero(chosen != _NONE))
            return found

    def person_scores(
        self, vector: Vector, *, collection_id: str | None = None, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Each enrolled person's score (the best similarity over their enrolled faces), best first."""
        with self._lock:
            scores = self.similarities(vector)
            mask = self._mask(collection_id, enrolled_only=True, unknown_only=False)
            rows = np.flatnonzero(mask) if mask is not None else np.arange(len(self._rows))
            if len(rows) == 0:
                return []
            chosen = scores[rows]
            # Only the best faces can hold the best persons: rank a shortlist, widen it while it names fewer
            # persons than asked for.
            shortlist = len(rows) if limit is None else max(256, 32 * limit)
            while True:
                top = best_first(chosen, shortlist)
                persons = self._rows.column("person")[rows[top]]
                # The first time a person appears in best-first order is that person's best face.
                _, first = np.unique(persons, return_index=True)
                if limit is None or len(first) >= limit or shortlist >= len(rows):
                    break
                shortlist *= 4
            first.sort()
            if limit is not None:
                first = first[:limit]
            return [(str(self._persons.name(int(persons[j]))), float(chosen[top[j]])) for j in first]

    def face_similarity(self, vector: Vector, face_ids: Iterable[str]) -> dict[str, float]:
        """Similarity of ``vector`` to particular faces (those held)."""
        with self._lock:
            held = [(f, r) for f in face_ids if (r := self._rows.row(f)) is not None]
            if not held:
                return {}
            sims = self._rows.scores_at([r for _, r in held], vector)
            return {f: float(s) for (f, _), s in zip(held, sims, strict=True)}

    def cluster_members(self, cluster_id: str, limit: int | None = None) -> list[str]:
        """Faces currently in a cluster (the first ``limit`` of them)."""
        with self._lock:
            code = self._clusters.lookup(cluster_id)
            if code is None or code == _NONE:
                return []
            rows = np.flatnonzero(self._rows.column("cluster") == code)[:limit]
            return [self._rows.ids[int(r)] for r in rows]

    def vectors(self, face_ids: Iterable[str]) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The held faces among ``face_ids`` and their vectors (a copy)."""
        with self._lock:
            held = [(f, r) for f in face_ids if (r := self._rows.row(f)) is not None]
            return [f for f, _ in held], self._rows.vectors_at([r for _, r in held])

    def unknown_faces(self) -> tuple[list[str], npt.NDArray[np.float32], list[str | None]]:
        """Sightings attributed to nobody: ids, vectors (a copy) and current clusters."""
        with self._lock:
            rows = np.flatnonzero(self._rows.column("person") == _NONE)
            ids = [self._rows.ids[int(r)] for r in rows]
            clusters = [self._clusters.name(int(c)) for c in self._rows.column("cluster")[rows]]
            return ids, self._rows.vectors_at(rows), clusters


def benchmark(
    n: int = 100_000, dim: int = 128, queries: int = 200, *, persons: int | None = None
) -> dict[str, Any]:
    """Time identification-style queries (``person_scores`` over every face enrolled) on random unit vectors.

    >>> result = benchmark(n=2_000, queries=20)
    >>> result["faces"], result["p95_ms"] < 50
    (2000, True)
    """
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n, dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    people = persons or max(1, n // 5)
    vectors = FaceVectors(
        ids=[f"face_{i}" for i in range(n)],
        collection_ids=["col_bench"] * n,
        person_ids=[f"per_{i % people}" for i in range(n)],
        enrolled=[True] * n,
        cluster_ids=[None] * n,
        matrix=matrix,
    )
    started = time.perf_counter()
    index = VectorIndex.from_vectors(vectors)
    load_ms = (time.perf_counter() - started) * 1000
    probes = rng.standard_normal((queries, dim), dtype=np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    identify_ms, matvec_ms = [], []
    for probe in probes:
        t0 = time.perf_counter()
        index.similarities(probe)
        t1 = time.perf_counter()
        index.person_scores(probe, collection_id="col_bench", limit=3)
        t2 = time.perf_counter()
        matvec_ms.append((t1 - t0) * 1000)
        identify_ms.append((t2 - t1) * 1000)
    identify_ms.sort()
    return {
        "faces": n,
        "dim": dim,
        "persons": people,
        "matrix_mb": round(n * dim * 4 / 1e6, 1),
        "load_ms": round(load_ms, 1),
        "matvec_p50_ms": round(statistics.median(matvec_ms), 3),
        "p50_ms": round(statistics.median(identify_ms), 3),
        "p95_ms": round(identify_ms[min(len(identify_ms) - 1, int(0.95 * len(identify_ms)))], 3),
    }
