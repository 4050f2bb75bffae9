"""Unit vectors with ids in one contiguous float32 matrix, scored by one product in the calling thread.

Both exact indexes (a tenant's faces in `frugalsense.faces.index`, a tenant's item vectors in
`frugalsense.search.index`) are this matrix plus what is theirs alone. Vectors are unit length, so cosine
similarity is a dot product and a whole matrix is scored by one matrix-vector product: 100,000 x 128 floats in
about 3 ms on one core, with no recall lost to an approximation and deletes that take effect at once.

The product runs with the process's BLAS held to one thread (`pin_blas_to_one_thread`, from the first product on).
OpenBLAS would otherwise split it over threads of its own, which then spin for milliseconds after each call: CPU
the calling thread's clock, and so the request's receipt, never sees (at 100,000 faces about half of an
identification's CPU went missing). Measured single-threaded at 100,000 x 128 (thread CPU per product): OpenBLAS
3.3 ms, ``np.einsum`` 5.5 ms, a chunked product 5 ms, ``cv2.gemm`` 6.8 ms; OpenBLAS on two threads spent 6-8 ms
of process CPU for the same product.

    >>> rows = VectorMatrix(columns={"person": (np.int32, -1)})
    >>> rows.add(["a", "b", "c"], np.eye(3, dtype=np.float32), person=[7, 8, 9])
    >>> scores = rows.scores(np.array([0.6, 0.8, 0.0], np.float32))
    >>> [rows.ids[int(r)] for r in best_first(scores, 2)]
    ['b', 'a']
    >>> rows.remove(["a"]), rows.ids, rows.column("person").tolist()
    (1, ['c', 'b'], [9, 8])
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["VectorMatrix", "best_first", "pin_blas_to_one_thread", "product"]

K = TypeVar("K", bound=Hashable)
Floats = npt.NDArray[np.float32]


class _BlasPin:
    """Holds the process's BLAS to one thread from the first product on, for good.

    Not a limit set and restored around each product: OpenBLAS keeps one thread pool for the whole process, and
    threadpoolctl lets only one Python thread at a time change it (others are silently ignored), so two requests'
    products overlapping in a worker pool would restore the limit under each other. Every BLAS call on a request
    path wants one thread anyway, as ONNX Runtime and OpenCV are pinned to one intra-op thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False

    def hold(self) -> None:
        if self._held:
            return
        with self._lock:
            if self._held:
                return
            from threadpoolctl import threadpool_info, threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
            # Another thread may control the limit right now (its own `threadpool_limits` block): then this was
            # ignored, and the next product tries again.
            self._held = all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")


_PIN = _BlasPin()


def pin_blas_to_one_thread() -> None:
    """Hold BLAS to the calling thread from now on, where `frugalsense.ledger.Meter`'s thread clock sees it.

    >>> pin_blas_to_one_thread()
    >>> from threadpoolctl import threadpool_info
    >>> {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    {1}
    """
    _PIN.hold()


def product(matrix: Floats, vector: Floats) -> Floats:
    """``matrix @ vector`` in the calling thread."""
    _PIN.hold()
    return np.asarray(matrix @ vector, np.float32)


def best_first(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Positions of the ``k`` highest scores, highest first (ties in position order when all are taken).

    >>> best_first(np.array([0.1, 0.9, 0.5], np.float32), 2).tolist()
    [1, 2]
    """
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, np.intp)
    if k >= n:
        return np.argsort(-scores, kind="stable")
    # Partition first: sorting all of 100,000 scores would cost more than the product itself.
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


class VectorMatrix(Generic[K]):
    """Rows of (id, unit vector, a value per named column), kept contiguous: a matrix that grows by doubling, a
    delete that moves the last row into the hole, so the live rows are always ``matrix[:n]``. Not thread-safe: its
    owner holds a lock around it, with its own state.
    """

    def __init__(
        self,
        dim: int = 0,
        capacity: int = 1024,
        columns: Mapping[str, tuple[npt.DTypeLike, Any]] | None = None,
    ) -> None:
        self.dim = dim
        self._n = 0
        self._matrix: Floats = np.zeros((capacity, dim), np.float32)
        self._fills = dict(columns or {})
        self._columns = {name: np.full(capacity, fill, dtype) for name, (dtype, fill) in self._fills.items()}
        self._ids: list[K] = []
        self._row: dict[K, int] = {}

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return key in self._row

    @property
    def ids(self) -> list[K]:
        """The id of every live row, in row order (the list itself: read it, do not change it)."""
        return self._ids

    @property
    def matrix(self) -> Floats:
        """The live rows (a view)."""
        return self._matrix[: self._n]

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors (capacity included)."""
        return int(self._matrix.nbytes)

    def row(self, key: K) -> int | None:
        return self._row.get(key)

    def column(self, name: str) -> npt.NDArray[Any]:
        """A column's live values (a view: writing to it changes the rows)."""
        return self._columns[name][: self._n]

    # -- writes ---------------------------------------------------------------------------------------------

    def add(self, ids: Sequence[K], vectors: npt.ArrayLike, **values: Any) -> None:
        """Append rows; ``values`` gives each named column one value per row, or one value for all of them."""
        m = len(ids)
        if m == 0:
            return
        block = np.asarray(vectors, np.float32).reshape(m, -1)
        if self._n == 0 and block.shape[1] != self.dim:
            # An empty matrix learns its width from its first rows (another model, another size).
            self.dim = int(block.shape[1])
            self._matrix = np.zeros((len(self._matrix), self.dim), np.float32)
        if block.shape[1] != self.dim:
            raise ValueError(f"vectors of {block.shape[1]} dims added to a matrix of {self.dim}")
        start, need = self._n, self._n + m
        new = dict(zip(ids, range(start, need), strict=True))
        if len(new) != m or (self._row and not self._row.keys().isdisjoint(new.keys())):
            held = next((key for key in ids if key in self._row), None)
            raise ValueError(f"{held if held is not None else 'an id'} is in the matrix already")
        if need > len(self._matrix):
            self._grow(need)
        self._matrix[start:need] = block
        for name, array in self._columns.items():
            array[start:need] = values.get(name, self._fills[name][1])
        self._ids.extend(ids)
        if self._row:
            self._row.update(new)
        else:
            self._row = new  # a whole index loaded at once: no second copy of 100,000 entries
        self._n = need

    def remove(self, ids: Iterable[K]) -> int:
        """Drop rows by id, in the order given (unknown ids are ignored); returns how many went."""
        removed = 0
        for key in ids:
            i = self._row.pop(key, None)
            if i is None:
                continue
            last = self._n - 1
            if i != last:
                moved = self._ids[last]
                self._matrix[i] = self._matrix[last]
                for array in self._columns.values():
                    array[i] = array[last]
                self._ids[i] = moved
                self._row[moved] = i
            self._ids.pop()
            self._matrix[last] = 0.0  # a deleted vector does not linger in memory either
            self._n -= 1
            removed += 1
        return removed

    def keep(self, mask: npt.NDArray[np.bool_]) -> list[K]:
        """Keep only the live rows where ``mask`` is true, in their order; returns the ids that went.

        One compaction of the arrays instead of a step per row: a collection being erased may hold 200,000.
        """
        n = self._n
        gone = [self._ids[int(i)] for i in np.flatnonzero(~mask[:n])]
        if not gone:
            return []
        rows = np.flatnonzero(mask[:n])
        kept = len(rows)
        self._matrix[:kept] = self._matrix[rows]
        self._matrix[kept:n] = 0.0
        for name, array in self._columns.items():
            array[:kept] = array[rows]
            array[kept:n] = self._fills[name][1]
        self._ids = [self._ids[int(i)] for i in rows]
        self._row = {key: i for i, key in enumerate(self._ids)}
        self._n = kept
        return gone

    def _grow(self, need: int) -> None:
        size = max(need, 1024, 2 * len(self._matrix))
        matrix = np.zeros((size, self.dim), np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        self._matrix = matrix
        for name, old in self._columns.items():
            array = np.full(size, self._fills[name][1], old.dtype)
            array[: self._n] = old[: self._n]
            self._columns[name] = array

    # -- reads ----------------------------------------------------------------------------------------------

    def scores(self, query: npt.ArrayLike) -> Floats:
        """Cosine similarity of ``query`` (unit length) to every live row, in row order."""
        return product(self._matrix[: self._n], np.asarray(query, np.float32).reshape(-1))

    def scores_at(self, rows: Sequence[int] | npt.NDArray[np.intp], query: npt.ArrayLike) -> Floats:
        """Cosine similarity of ``query`` to particular rows, in the order given."""
        return product(self._matrix[np.asarray(rows, np.intp)], np.asarray(query, np.float32).reshape(-1))

    def vectors_at(self, rows: Sequence[int] | npt.NDArray[np.intp]) -> Floats:
        """Particular rows' vectors (a copy)."""
        return self._matrix[np.asarray(rows, np.intp)]
