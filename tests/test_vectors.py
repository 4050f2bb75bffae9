"""The shared vector matrix against a plain dictionary model of the same rows, and BLAS held to one thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from frugalsense.vectors import VectorMatrix, best_first


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_adds_removes_and_compactions_keep_every_row_with_its_id_and_columns() -> None:
    rng = np.random.default_rng(3)
    rows: VectorMatrix[str] = VectorMatrix(capacity=4, columns={"tag": (np.int32, -1)})
    model: dict[str, tuple[np.ndarray, int]] = {}
    serial = 0
    for step in range(60):
        action = rng.integers(0, 3)
        if action == 0 or not model:
            count = int(rng.integers(1, 40))
            ids = [f"r{serial + i}" for i in range(count)]
            serial += count
            vectors = _unit(rng, count)
            tags = rng.integers(0, 5, count)
            rows.add(ids, vectors, tag=tags)
            model.update({key: (v, int(t)) for key, v, t in zip(ids, vectors, tags, strict=True)})
        elif action == 1:
            doomed = [k for k in model if rng.random() < 0.3] + ["never-held"]
            assert rows.remove(doomed) == len(doomed) - 1
            for key in doomed[:-1]:
                del model[key]
        else:
            tag = int(rng.integers(0, 5))
            gone = rows.keep(rows.column("tag") != tag)
            assert sorted(gone) == sorted(k for k, (_, t) in model.items() if t == tag), step
            model = {k: vt for k, vt in model.items() if vt[1] != tag}
        assert len(rows) == len(model) and sorted(rows.ids) == sorted(model)
        assert all(rows.row(key) == i for i, key in enumerate(rows.ids))
        np.testing.assert_array_equal(rows.matrix, np.array([model[k][0] for k in rows.ids]).reshape(-1, 16))
        assert rows.column("tag").tolist() == [model[k][1] for k in rows.ids]
        query = _unit(rng, 1)[0]
        brute = np.array([float(model[k][0] @ query) for k in rows.ids], np.float32)
        np.testing.assert_allclose(rows.scores(query), brute, atol=1e-5)


def test_freed_rows_are_zeroed_and_duplicate_ids_refused() -> None:
    rows: VectorMatrix[int] = VectorMatrix(dim=2)
    rows.add([1, 2, 3], np.eye(3, 2, dtype=np.float32))
    rows.remove([1])
    rows.keep(np.array([True, False]))
    assert rows.ids == [3] and len(rows) == 1
    with pytest.raises(ValueError, match="already"):
        rows.add([3], np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="dims"):
        rows.add([4], np.ones((1, 5), np.float32))


@pytest.mark.parametrize("k", [0, 1, 5, 99, 100, 500])
def test_best_first_is_a_sort_of_the_scores(k: int) -> None:
    scores = np.random.default_rng(k).random(100).astype(np.float32)
    expected = np.argsort(-scores, kind="stable")[:k]
    np.testing.assert_array_equal(best_first(scores, k), expected)


def _blas_threads() -> list[int]:
    return [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_a_product_in_a_worker_thread_holds_blas_to_one_thread() -> None:
    """As in the server: the main thread once set and restored a limit of its own, a worker thread multiplies."""
    assert _blas_threads(), "numpy's BLAS is visible to threadpoolctl"
    with threadpool_limits(limits=2, user_api="blas"):
        pass
    rows: VectorMatrix[int] = VectorMatrix()
    rows.add(list(range(2000)), _unit(np.random.default_rng(1), 2000, 128))
    seen: list[list[int]] = []

    def worker() -> None:
        rows.scores(rows.matrix[0])
        seen.append(_blas_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [[1] * len(_blas_threads())]
    assert _blas_threads() == seen[0]  # for the whole process, not only while the product ran
