"""Reads go through a connection of their own per thread (WAL: readers never wait for a writer) on a real SQLite
file: a read during another thread's long write answers at once with the last commit, a thread inside a write
reads its own changes, and a worker thread's reader is closed once the thread has ended."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from frugalsense.store import SQLiteStore


def test_a_read_does_not_wait_for_another_threads_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "frugalsense.db")
    first = store.create_tenant("first")
    inside = threading.Event()
    seen_inside: list[list[str]] = []

    def long_write() -> None:
        with store._write() as conn:
            conn.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", ("t_uncommitted", "pending", "x")
            )
            seen_inside.append([t.name for t in store.list_tenants()])  # this thread sees its own write
            inside.set()
            time.sleep(1.5)  # a large erasure's transaction, held open

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(10)
    started = time.monotonic()
    during = [t.name for t in store.list_tenants()]
    took = time.monotonic() - started
    writer.join()
    after = [t.name for t in store.list_tenants()]
    store.close()
    assert took < 0.5, took  # not behind the 1.5 s write
    assert during == [first.name]  # the last commit, not the write under way
    assert "pending" in seen_inside[0] and "pending" in after


def test_readers_of_ended_threads_are_closed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "frugalsense.db")
    store.create_tenant("one")
    for _ in range(5):
        worker = threading.Thread(target=store.list_tenants)
        worker.start()
        worker.join()
    store.list_tenants()  # this thread's reader prunes the ended threads'
    assert len(store._readers) == 1
    store.close()
    assert store._readers == {}
