"""One SQLite connection behind a lock: the plumbing every table-owning class of the database file shares."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from frugalsense.store.files import make_private, private_file
from frugalsense.store.migrations import apply_migrations
from frugalsense.store.validation import Limits

__all__ = ["Database"]

#: how long an erasure's checkpoint waits for readers of older snapshots to finish before it gives up
_CHECKPOINT_PATIENCE_S = 5.0


class Database:
    """A connection to one database file (``":memory:"`` for a throw-away one), migrated on open. Thread-safe.

    The file, its write-ahead log and its shared memory are 0600 and their folder 0700, whatever the umask.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000, limits: Limits | None = None) -> None:
        self.path = str(path)
        self.limits = limits or Limits()
        if self.path != ":memory:":
            # SQLite gives the log and the shared memory the database file's mode: create that one private.
            private_file(Path(self.path))
            for suffix in ("-wal", "-shm"):
                make_private(Path(self.path + suffix))
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

    def checkpoint(self) -> bool:
        """Fold the write-ahead log into the database file and empty it, so page images holding erased bytes
        leave the log (after an erasure). False when readers of older snapshots kept it from finishing."""
        deadline = time.monotonic() + _CHECKPOINT_PATIENCE_S
        while True:
            # TRUNCATE empties the log file too, so old page images with deleted rows do not linger in it.
            with self._lock:
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

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
