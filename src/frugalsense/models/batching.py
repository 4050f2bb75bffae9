"""Grouping concurrent single-item requests for one model into small batches.

Leader/follower: the first caller to arrive waits `window_ms` for company, then runs everyone's items as one
batch in its own thread and hands each caller its output; the batch's CPU time is split evenly between the
callers' receipts. Whether this pays depends on the model and the machine (on 2 cores, two requests running
side by side already use both cores), so it is off by default and measured by bench/service.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

__all__ = ["Batcher"]

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    def __init__(self, run: Callable[[Sequence[In]], list[Out]], *, window_ms: float, max_batch: int) -> None:
        self._run = run
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[tuple[In, Future[tuple[Out, float, int]]]] = []
        self._leader_waiting = False
        self.batches = 0
        self.items = 0

    def submit(self, item: In) -> tuple[Out, float, int]:
        """Run `item` in some batch; returns its output, its share of the batch's CPU-seconds, the batch size."""
        future: Future[tuple[Out, float, int]] = Future()
        with self._lock:
            self._pending.append((item, future))
            lead = not self._leader_waiting
            if lead:
                self._leader_waiting = True
            full = len(self._pending) >= self.max_batch
        if lead:
            deadline = time.perf_counter() + self.window_s
            while not full and time.perf_counter() < deadline:
                time.sleep(min(0.0005, max(0.0, deadline - time.perf_counter())))
                with self._lock:
                    full = len(self._pending) >= self.max_batch
            with self._lock:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                self._leader_waiting = bool(self._pending)
            if self._pending:
                # Items beyond this batch need a leader of their own; the next arriving caller would take
                # the role too late, so this thread starts one.
                threading.Thread(target=self._drain, daemon=True).start()
            self._execute(batch)
        return future.result()

    def _drain(self) -> None:
        with self._lock:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._leader_waiting = bool(self._pending)
        if batch:
            self._execute(batch)
        if self._pending:
            self._drain()

    def _execute(self, batch: list[tuple[In, Future[tuple[Out, float, int]]]]) -> None:
        start = time.thread_time()
        try:
            outputs = self._run([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        share = (time.thread_time() - start) / len(batch)
        self.batches += 1
        self.items += len(batch)
        for (_, future), output in zip(batch, outputs, strict=True):
            future.set_result((output, share, len(batch)))

    def stats(self) -> dict[str, Any]:
        return {"batches": self.batches, "items": self.items, "mean_batch": self.items / max(1, self.batches)}
