"""The vector index: one tenant's item vectors for one encoder, a float32 matrix in memory and in a file.

Exact search: vectors are unit length, so cosine similarity is one matrix-vector product. 100,000 vectors of
384 floats are 154 MB and one product takes a few milliseconds on one core (``bench/search.py`` measures the whole
query), with no recall lost to an approximation and deletes that take effect at once. The database holds every
vector too (the truth, erased with its item); the file in ``DATA_DIR/search/`` is a snapshot stamped with the
database's version for that tenant and encoder, so a restart reads one file instead of 100,000 rows, and a stale
file is simply rebuilt. Deleting an item removes the file at once (it is written again, without the item, at the
next save), so a deleted item's vector never waits on disk for a later save.

    >>> index = SemanticIndex()
    >>> index.add([7, 8], ["page 1", "page 1"], np.eye(2, dtype=np.float32))
    >>> index.search(np.array([0.8, 0.6], np.float32), 1)
    [(7, 0.800000011920929, 'page 1')]
"""

from __future__ import annotations

import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from frugalsense.store.base import SearchStore
from frugalsense.store.files import private_folder, private_replace
from frugalsense.store.items import WriteOutcome
from frugalsense.vectors import VectorMatrix, best_first

__all__ = ["IndexCache", "SemanticIndex", "vector_file"]

Vector = npt.NDArray[np.float32]


def vector_file(data_dir: Path, tenant_id: str, encoder: str) -> Path:
    """Where a tenant's vectors for one encoder are kept."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{tenant_id}.{encoder}")
    return data_dir / "search" / f"{safe}.npz"


class SemanticIndex:
    """Rows of (item rowid, part, unit vector) in one `VectorMatrix`, and the snapshot file. Thread-safe.

    An item may have several rows (pages, frames, speech windows): a row's id is (item rowid, its number among the
    item's rows), so an item's rows are found, and removed, by id.
    """

    def __init__(self, dim: int = 0, capacity: int = 1024) -> None:
        self._lock = threading.RLock()
        self.version = 0
        self._rows: VectorMatrix[tuple[int, int]] = VectorMatrix(
            dim, capacity, columns={"item": (np.int64, 0), "part": (object, "")}
        )
        self._counts: dict[int, int] = {}  # item rowid -> rows it has

    @property
    def dim(self) -> int:
        return self._rows.dim

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, item_rowids: Sequence[int], parts: Sequence[str], matrix: npt.NDArray[np.float32]) -> None:
        if len(item_rowids) == 0:
            return
        with self._lock:
            if len(self._rows) and matrix.shape[1] != self.dim:
                raise ValueError(f"vectors of {matrix.shape[1]} dims added to an index of {self.dim}")
            ids: list[tuple[int, int]] = []
            for item in item_rowids:
                number = self._counts.get(int(item), 0)
                self._counts[int(item)] = number + 1
                ids.append((int(item), number))
            self._rows.add(ids, matrix, item=item_rowids, part=list(parts))

    def remove_items(self, item_rowids: Iterable[int]) -> None:
        with self._lock:
            doomed = [(int(item), k) for item in item_rowids for k in range(self._counts.pop(int(item), 0))]
            # From the bottom row up, as rows were always removed: the rows left keep the order they had.
            doomed.sort(key=lambda key: self._rows.row(key) or 0, reverse=True)
            self._rows.remove(doomed)

    def search(self, query: Vector, top_k: int, allowed: set[int] | None = None) -> list[tuple[int, float, str]]:
        """The ``top_k`` items most similar to ``query``: (item rowid, best similarity, the part that matched)."""
        with self._lock:
            n = len(self._rows)
            if n == 0 or top_k <= 0 or query.shape[-1] != self.dim:
                return []
            scores = self._rows.scores(query)
            items = self._rows.column("item")
            if allowed is not None:
                keep = np.isin(items, np.fromiter(allowed, np.int64, len(allowed)))
                scores = np.where(keep, scores, -np.inf)
            parts = self._rows.column("part")
            # Several rows (pages, frames) can belong to one item: take extra rows, then keep each item's best.
            wanted = min(n, max(4 * top_k, 64))
            while True:
                rows = best_first(scores, wanted)
                out: list[tuple[int, float, str]] = []
                seen: set[int] = set()
                for row in rows:
                    if not np.isfinite(scores[row]):
                        break
                    item = int(items[row])
                    if item not in seen:
                        seen.add(item)
                        out.append((item, float(scores[row]), str(parts[row])))
                        if len(out) == top_k:
                            return out
                if wanted >= n:
                    return out
                wanted = min(n, wanted * 4)

    def save(self, path: Path) -> None:
        """Write the snapshot atomically (a crash leaves the old file or the new one, never half of one), private
        to the service's user."""
        with self._lock, private_replace(path) as handle:
            np.savez(
                handle,
                vectors=self._rows.matrix,
                items=self._rows.column("item"),
                parts=np.array(self._rows.column("part").tolist(), dtype=str),
                version=np.array(self.version, np.int64),
            )

    @classmethod
    def load(cls, path: Path) -> SemanticIndex | None:
        """The snapshot in ``path``, or None when there is none or it cannot be read."""
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors = np.asarray(data["vectors"], np.float32)
                items = np.asarray(data["items"], np.int64)
                parts = [str(p) for p in data["parts"]]
                version = int(data["version"])
        except (OSError, KeyError, ValueError):
            return None
        index = cls(dim=int(vectors.shape[1]) if vectors.ndim == 2 else 0, capacity=max(1024, len(items)))
        index.add(items.tolist(), parts, vectors)
        index.version = version
        return index


def _stamp(path: Path) -> int | None:
    """The database version a vector file was saved at (read alone, not the vectors), or None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return int(data["version"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


class IndexCache:
    """The loaded indexes of one process, kept in step with the database.

    Every write goes through `write`, which runs the SQL and applies the same change in memory under one lock,
    so two indexing threads never apply their changes out of order. A version that moved without us (another
    process wrote) makes the next `get` reload: from the file when its stamp matches, else from the database.
    """

    def __init__(self, store: SearchStore, data_dir: Path, *, save_every_s: float = 60.0) -> None:
        self.store = store
        self.data_dir = data_dir
        self.save_every_s = save_every_s
        self._lock = threading.RLock()
        self._indexes: dict[tuple[str, str], SemanticIndex] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._saved_at = time.monotonic()
        if (data_dir / "search").is_dir():
            private_folder(data_dir / "search")  # an older version left it readable by others

    def get(self, tenant_id: str, encoder: str) -> SemanticIndex:
        key = (tenant_id, encoder)
        with self._lock:
            version = self.store.version(tenant_id, encoder)
            index = self._indexes.get(key)
            if index is not None and index.version == version:
                return index
            path = vector_file(self.data_dir, tenant_id, encoder)
            loaded = SemanticIndex.load(path) if path.is_file() else None
            if loaded is None or loaded.version != version:
                stored = self.store.vectors(tenant_id, encoder)
                loaded = SemanticIndex()
                loaded.add(stored.item_rowids.tolist(), stored.parts, stored.matrix)
                loaded.version = stored.version
                if stored.version:
                    loaded.save(path)
                else:
                    path.unlink(missing_ok=True)
            self._indexes[key] = loaded
            self._dirty.discard(key)
            return loaded

    def write(self, tenant_id: str, encoder: str, work: Callable[[], WriteOutcome]) -> WriteOutcome:
        """Run one database write and mirror it in the loaded index. A delete takes the vector file away at once:
        the deleted item's vectors must not wait on disk for the next save."""
        key = (tenant_id, encoder)
        with self._lock:
            outcome = work()
            if outcome.item is None:
                vector_file(self.data_dir, tenant_id, encoder).unlink(missing_ok=True)
            index = self._indexes.get(key)
            if index is None:
                return outcome
            if index.version != outcome.version_before:
                del self._indexes[key]  # missed someone else's change: reload on the next search
                self._dirty.discard(key)
                return outcome
            if outcome.replaced_rowid is not None:
                index.remove_items([outcome.replaced_rowid])
            if outcome.vector_rows:
                added = self.store.vector_rows(outcome.vector_rows)
                index.add(added.item_rowids.tolist(), added.parts, added.matrix)
            index.version = outcome.version_after
            self._dirty.add(key)
            if time.monotonic() - self._saved_at >= self.save_every_s:
                self.flush()
            return outcome

    def flush(self) -> None:
        """Write the snapshots of indexes changed since they were last written. One that another process changed
        meanwhile is not written (it may hold vectors that process deleted): it is dropped, to reload."""
        with self._lock:
            for key in sorted(self._dirty):
                index = self._indexes.get(key)
                if index is None:
                    continue
                if index.version == self.store.version(*key):
                    index.save(vector_file(self.data_dir, *key))
                else:
                    del self._indexes[key]
            self._dirty.clear()
            self._saved_at = time.monotonic()

    def snapshot(self, tenant_id: str, encoder: str) -> None:
        """Make the tenant's vector file current: save its loaded index, or when none is loaded (a process that
        only wrote, such as ``frugalsense index``) rebuild a stale file from the database, so the next start
        reads the file instead of every vector row."""
        key = (tenant_id, encoder)
        with self._lock:
            if key in self._indexes:
                self.flush()
                return
            if _stamp(vector_file(self.data_dir, tenant_id, encoder)) != self.store.version(tenant_id, encoder):
                self.get(tenant_id, encoder)  # rebuilds from the database and saves
                del self._indexes[key]  # this process did not need it in memory

    def evict(self, tenant_id: str) -> None:
        """Forget a tenant's loaded indexes (after a flush); the next search reads the file again."""
        with self._lock:
            self.flush()
            for key in [k for k in self._indexes if k[0] == tenant_id]:
                del self._indexes[key]

    def drop_tenant(self, tenant_id: str) -> int:
        """Forget a tenant and delete its vector files (after the tenant was erased from the database); returns
        how many files were deleted."""
        removed = 0
        with self._lock:
            for key in [k for k in self._indexes if k[0] == tenant_id]:
                del self._indexes[key]
                self._dirty.discard(key)
            folder = self.data_dir / "search"
            if folder.is_dir():
                prefix = vector_file(self.data_dir, tenant_id, "").name[: -len(".npz")]
                for path in folder.iterdir():
                    if path.name.startswith(prefix):
                        path.unlink(missing_ok=True)
                        removed += 1
        return removed
