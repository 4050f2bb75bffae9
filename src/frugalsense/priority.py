"""Work that turns out large gives way: its thread drops to a lower CPU priority, so small requests keep the cores.

On Linux every thread has a nice value of its own. The server runs model work on the threads of a
`LowerablePool`; when a request shows it is large (a big picture reserved, a second of CPU spent: see
`frugalsense.budget`), the code working for it calls `lower_priority()`, and from then on the scheduler gives that
thread's core to any normal-priority thread that wants it (another tenant's identify, the event loop, database
reads). The request is not slowed when nothing else runs: a lowered thread still gets an idle core.

A thread goes back to its priority when its task ends. Raising a priority again needs a privilege (CAP_SYS_NICE or
a nice resource limit: ``LimitNICE=`` in systemd, ``ulimit -e``) that a service usually lacks, and a container
running as root lacks too; where it is refused, the thread ends and a fresh one takes its place, so a lowered
priority never outlives the task that earned it.

    >>> pool = LowerablePool("example", nice=5)
    >>> pool.run(lambda: 2 + 2)
    4
    >>> pool.run(lower_priority) == supported()       # lowered for this task only
    True
    >>> lower_priority()                              # not a pool thread: nothing changes
    False
    >>> pool.close()
"""

from __future__ import annotations

import contextvars
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["LowerablePool", "lower_priority", "supported"]

_T = TypeVar("_T")


class _ThreadState:
    """What a pool thread knows of its own priority."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.base = _get_nice()
        self.lowered = False


_local = threading.local()


def supported() -> bool:
    """True where threads have priorities of their own (Linux)."""
    return sys.platform.startswith("linux") and hasattr(os, "setpriority")


def _get_nice() -> int:
    if not supported():
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _set_nice(value: int) -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), value)


def lower_priority() -> bool:
    """Lower the calling thread's CPU priority until its task ends, when it is a `LowerablePool` thread and not
    lowered yet. True when it was lowered by this call."""
    state: _ThreadState | None = getattr(_local, "state", None)
    if state is None or state.lowered or state.nice <= 0 or not supported():
        return False
    try:
        _set_nice(min(19, state.base + state.nice))
    except OSError:
        return False
    state.lowered = True
    return True


class _Task:
    __slots__ = ("call", "future")

    def __init__(self, call: Callable[[], Any], future: Future[Any]) -> None:
        self.call, self.future = call, future


class LowerablePool:
    """Threads for blocking work whose tasks may lower their own priority (`lower_priority`).

    Threads start as tasks need them and wait for the next task when done; there are never more than the most
    tasks ever running at once (the server bounds that with its worker count). ``nice``: how much
    `lower_priority` adds to a thread's nice value (0: never lowered).
    """

    def __init__(self, name: str, *, nice: int) -> None:
        self.name = name
        self.nice = max(0, min(19, nice))
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._closed = False
        #: threads ended because the system would not give them their priority back
        self.retired = 0

    def submit(self, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` on a pool thread, in a copy of the caller's context (context variables carry over)."""
        future: Future[_T] = Future()
        call = contextvars.copy_context().run
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} threads are closed")
            self._tasks.put(_Task(lambda: call(fn), future))
            if self._idle:
                self._idle -= 1
            else:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()
        return future

    def run(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on a pool thread and wait for its result (its exception is raised here)."""
        return self.submit(fn).result()

    @property
    def threads(self) -> int:
        return self._threads

    def close(self) -> None:
        """Let every thread end once the tasks given so far are done."""
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._tasks.put(None)

    def _work(self) -> None:
        state = _local.state = _ThreadState(self.nice)
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, call, result, error = task.future, task.call, None, None
            del task
            runs = future.set_running_or_notify_cancel()
            if runs:
                try:
                    result = call()
                except BaseException as exc:  # handed to the waiting caller, as concurrent.futures does
                    error = exc
            del call
            # Back to the normal priority (or retire) and count this thread idle before the caller hears back,
            # so a caller that submits again at once finds it and no thread is started for nothing.
            retire = state.lowered and not self._restore(state)
            with self._lock:
                if retire:
                    self._threads -= 1
                    self.retired += 1
                else:
                    self._idle += 1
            if runs:
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            del future
            result = error = None  # an idle thread holds nothing of the last request
            if retire:
                return

    @staticmethod
    def _restore(state: _ThreadState) -> bool:
        try:
            _set_nice(state.base)
        except OSError:  # raising a priority needs CAP_SYS_NICE or RLIMIT_NICE
            return False
        state.lowered = False
        return True
