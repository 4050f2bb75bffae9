"""One SQLite connection behind a lock: the plumbing every table-owning class of the database file shares."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from frugalsense.store.migrations import apply_migrations

__all__ = ["Database"]


class Database:
    """A connection to one database file (``":memory:"`` for a throw-away one), migrated on open. Thread-safe."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        for pragma in (
            "journal_mode = WAL",
            # FULL: the write-ahead log is synced on every commit, so an acknowledged write survives kill -9
            # and power loss; NORMAL would only survive a crash of the process.
            "synchronous = FULL",
            "foreign_keys = ON",
            f"busy_timeout = {int(busy_timeout_ms)}",
            # Embeddings are biometric data: deleted rows are overwritten with zeros, not just unlinked.
            "secure_delete = ON",
            "journal_size_limit = 67108864",
        ):
            self._conn.execute(f"PRAGMA {pragma}")
        with self._lock:
            self.migrated = apply_migrations(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before the caller's method returns."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()
