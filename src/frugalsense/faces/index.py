"""Exact cosine search over one tenant's faces: a contiguous float32 matrix and one matrix-vector product.

Why not an approximate index (sqlite-vec, usearch, hnswlib, faiss)? At the sizes a small business reaches, exact
search is fast enough and simpler: embeddings are unit vectors, so cosine similarity is a dot product and a whole
gallery is scored by one BLAS matvec. 100,000 faces x 128 dims is 51 MB (n * 128 * 4 bytes) and one query takes a
few milliseconds on a 2-core CPU (``benchmark()`` measures it; ``bench/calibrate_faces.py`` prints it), well
under the 50 ms p95 target for identification. Exact search has no recall loss (an approximate index can miss
the one enrolled face that makes "unknown" wrong), needs no extra dependency, and updates and deletes are
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

    Rows live in arrays that grow by doubling; a delete moves the last row into the hole, so the live rows
    stay contiguous and every search is one matvec over ``matrix[:n]``.
    """

    def __init__(self, dim: int = 128, capacity: int = 1024) -> None:
        self.dim = dim
        self._lock = threading.RLock()
        self._n = 0
        self._matrix = np.zeros((capacity, dim), np.float32)
        self._collection = np.full(capacity, _NONE, np.int32)
        self._person = np.full(capacity, _NONE, np.int32)
        self._cluster = np.full(capacity, _NONE, np.int32)
        self._enrolled = np.zeros(capacity, bool)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._collections, self._persons, self._clusters = _Codes(), _Codes(), _Codes()
        #: face id -> persons that face was corrected as not being
        self.negatives: dict[str, set[str]] = {}
        #: the store's face version for the tenant that these rows reflect
        self.version = 0

    @classmethod
    def from_vectors(cls, vectors: FaceVectors, dim: int = 128) -> VectorIndex:
        n = len(vectors.ids)
        index = cls(dim=vectors.matrix.shape[1] if n else dim, capacity=max(1024, n + n // 4))
        with index._lock:
            if n:
                index._matrix[:n] = vectors.matrix
            index._collection[:n] = [index._collections.code(c) for c in vectors.collection_ids]
            index._person[:n] = [index._persons.code(p) for p in vectors.person_ids]
            index._cluster[:n] = [index._clusters.code(c) for c in vectors.cluster_ids]
            index._enrolled[:n] = vectors.enrolled
            index._ids = list(vectors.ids)
            index._row = {face_id: i for i, face_id in enumerate(vectors.ids)}
            index._n = n
        return index

    def __len__(self) -> int:
        return self._n

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._row

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors themselves (capacity included)."""
        return int(self._matrix.nbytes)

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
        vec = np.asarray(vector, np.float32).reshape(-1)
        with self._lock:
            if self._n == 0 and vec.shape[0] != self.dim:
                # An empty index learns its width from the first face (another embedder, another size).
                self.dim = int(vec.shape[0])
                self._matrix = np.zeros((len(self._matrix), self.dim), np.float32)
            if vec.shape[0] != self.dim:
                raise ValueError(f"expected a {self.dim}-d vector, got {vec.shape[0]}")
            if face_id in self._row:
                raise ValueError(f"{face_id} is already in the index")
            if self._n == len(self._matrix):
                self._grow()
            i = self._n
            self._matrix[i] = vec
            self._collection[i] = self._collections.code(collection_id)
            self._person[i] = self._persons.code(person_id)
            self._cluster[i] = self._clusters.code(cluster_id)
            self._enrolled[i] = enrolled
            self._ids.append(face_id)
            self._row[face_id] = i
            self._n += 1

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
            i = self._row.get(face_id)
            if i is None:
                return
            self._collection[i] = self._collections.code(collection_id)
            self._person[i] = self._persons.code(person_id)
            self._cluster[i] = self._clusters.code(cluster_id)
            self._enrolled[i] = enrolled

    def set_cluster(self, face_id: str, cluster_id: str | None) -> None:
        with self._lock:
            i = self._row.get(face_id)
            if i is not None:
                self._cluster[i] = self._clusters.code(cluster_id)

    def remove_collection(self, collection_id: str) -> int:
        """Drop every face of a collection (it is being erased); returns how many went."""
        with self._lock:
            code = self._collections.lookup(collection_id)
            n = self._n
            keep = self._collection[:n] != code
            if code is None or bool(keep.all()):
                return 0
            # One compaction of the arrays instead of a Python step per face: a collection may hold 200,000.
            rows = np.flatnonzero(keep)
            for face_id in (self._ids[i] for i in np.flatnonzero(~keep)):
                self.negatives.pop(face_id, None)
            for array in (self._matrix, self._collection, self._person, self._cluster, self._enrolled):
                array[: len(rows)] = array[rows]
            self._matrix[len(rows) : n] = 0.0  # no erased embedding lingers in memory
            self._ids = [self._ids[i] for i in rows]
            self._row = {face_id: i for i, face_id in enumerate(self._ids)}
            self._n = len(rows)
            return n - len(rows)

    def remove(self, face_ids: Iterable[str]) -> int:
        """Drop faces (unknown ids are ignored); returns how many went."""
        removed = 0
        with self._lock:
            for face_id in face_ids:
                i = self._row.pop(face_id, None)
                self.negatives.pop(face_id, None)
                if i is None:
                    continue
                last = self._n - 1
                if i != last:
                    moved = self._ids[last]
                    for array in (self._matrix, self._collection, self._person, self._cluster, self._enrolled):
                        array[i] = array[last]
                    self._ids[i] = moved
                    self._row[moved] = i
                self._ids.pop()
                # Zero the freed row: an erased embedding should not linger in memory either.
                self._matrix[last] = 0.0
                self._n -= 1
                removed += 1
        return removed

    def _grow(self) -> None:
        size = max(1024, 2 * len(self._matrix))
        matrix = np.zeros((size, self.dim), np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        self._matrix = matrix
        for name, fill in (("_collection", _NONE), ("_person", _NONE), ("_cluster", _NONE), ("_enrolled", False)):
            old = getattr(self, name)
            new = np.full(size, fill, old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    # -- reads ----------------------------------------------------------------------------------------------

    def similarities(self, vector: Vector) -> npt.NDArray[np.float32]:
        """Cosine similarity of ``vector`` (unit length) to every face, in row order."""
        with self._lock:
            return self._matrix[: self._n] @ np.asarray(vector, np.float32).reshape(-1)

    def _mask(
        self, collection_id: str | None, enrolled_only: bool, unknown_only: bool
    ) -> npt.NDArray[np.bool_] | None:
        mask: npt.NDArray[np.bool_] | None = None
        n = self._n
        if collection_id is not None:
            code = self._collections.lookup(collection_id)
            mask = np.zeros(n, bool) if code is None else self._collection[:n] == code
        if enrolled_only:
            mask = self._enrolled[:n] if mask is None else mask & self._enrolled[:n]
        if unknown_only:
            unknown = self._person[:n] == _NONE
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
            if exclude is not None and exclude in self._row:
                mask = np.ones(self._n, bool) if mask is None else mask.copy()
                mask[self._row[exclude]] = False
            rows = np.flatnonzero(mask) if mask is not None else np.arange(self._n)
            if len(rows) == 0 or top_k <= 0:
                return []
            chosen = scores[rows]
            k = min(top_k, len(rows))
            best = np.argpartition(-chosen, k - 1)[:k]
            best = best[np.argsort(-chosen[best], kind="stable")]
            return [self._hit(int(rows[j]), float(chosen[j])) for j in best]

    def _hit(self, row: int, similarity: float) -> Hit:
        return Hit(
            face_id=self._ids[row],
            similarity=similarity,
            person_id=self._persons.name(int(self._person[row])),
            enrolled=bool(self._enrolled[row]),
            cluster_id=self._clusters.name(int(self._cluster[row])),
        )

    def person_scores(
        self, vector: Vector, *, collection_id: str | None = None, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Each enrolled person's score (the best similarity over their enrolled faces), best first."""
        with self._lock:
            scores = self.similarities(vector)
            mask = self._mask(collection_id, enrolled_only=True, unknown_only=False)
            rows = np.flatnonzero(mask) if mask is not None else np.arange(self._n)
            if len(rows) == 0:
                return []
            chosen = scores[rows]
            # Only the best faces can hold the best persons: rank a shortlist, widen it while it names fewer
            # persons than asked for. Sorting all 100,000 scores would cost more than the matvec itself.
            shortlist = len(rows) if limit is None else max(256, 32 * limit)
            while True:
                if shortlist >= len(rows):
                    top = np.argsort(-chosen, kind="stable")
                else:
                    top = np.argpartition(-chosen, shortlist - 1)[:shortlist]
                    top = top[np.argsort(-chosen[top], kind="stable")]
                persons = self._person[rows[top]]
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
            rows = [(f, self._row[f]) for f in face_ids if f in self._row]
            if not rows:
                return {}
            sims = self._matrix[[r for _, r in rows]] @ np.asarray(vector, np.float32).reshape(-1)
            return {f: float(s) for (f, _), s in zip(rows, sims, strict=True)}

    def cluster_members(self, cluster_id: str, limit: int | None = None) -> list[str]:
        """Faces currently in a cluster (the first ``limit`` of them)."""
        with self._lock:
            code = self._clusters.lookup(cluster_id)
            if code is None or code == _NONE:
                return []
            rows = np.flatnonzero(self._cluster[: self._n] == code)[:limit]
            return [self._ids[int(r)] for r in rows]

    def vectors(self, face_ids: Iterable[str]) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The held faces among ``face_ids`` and their vectors (a copy)."""
        with self._lock:
            held = [f for f in face_ids if f in self._row]
            return held, self._matrix[[self._row[f] for f in held]].copy()

    def unknown_faces(self) -> tuple[list[str], npt.NDArray[np.float32], list[str | None]]:
        """Sightings attributed to nobody: ids, vectors (a copy) and current clusters."""
        with self._lock:
            rows = np.flatnonzero(self._person[: self._n] == _NONE)
            ids = [self._ids[int(r)] for r in rows]
            clusters = [self._clusters.name(int(c)) for c in self._cluster[rows]]
            return ids, self._matrix[rows].copy(), clusters


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
