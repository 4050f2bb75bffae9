"""What one request may spend, carried with its work: CPU-seconds, a cancel flag, a share of the server memory.

The HTTP layer sets the limits around a request's work (`request_limits`); every `Meter` made inside picks up the
CPU budget and the cancel flag, and every picture decoded inside reserves its bytes from the memory budget first
(`reserve_picture`), so the galleries, the index and the analyzer need no parameter of their own. Library calls
outside any `request_limits` run unreserved.

>>> budget = MemoryBudget(1_000)
>>> with request_limits(RequestLimits(memory=budget)):
...     release = reserve_picture(10, 10, "the picture")
...     budget.held
900
>>> release(); budget.held
0
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from frugalsense.errors import OverloadedError
from frugalsense.priority import lower_priority

__all__ = [
    "BYTES_PER_DECODED_PIXEL",
    "MemoryBudget",
    "RequestLimits",
    "current_limits",
    "give_back_memory",
    "limit_heap_arenas",
    "release_with",
    "request_limits",
    "reserve",
    "reserve_picture",
]

#: after a picture this large is let go, freed heap pages are handed back to the system
_TRIM_AFTER_BYTES = 64 * 1024 * 1024

#: Bytes a decoded picture holds per pixel while a request works on it, measured on a 59 Mpx photo through
#: faces, labels, moderation and the text gate (+545 MB): the decoder's buffer, the RGB frame, the BGR copy the
#: detectors read and the models' resized copies.
BYTES_PER_DECODED_PIXEL = 9


class MemoryBudget:
    """Bytes the server may hold for requests at once: bodies, and the working memory of pictures and models.

    A request's body is admitted or refused at once (`try_reserve`). Working memory waits for room (`reserve`),
    but only a request that holds none yet ever waits: one that already holds some gets the rest at once, so no
    two requests can each hold memory while waiting for the other's (the budget may then be passed for a moment,
    by what requests already under way still need). Small pictures (an eighth of the budget or less: a phone
    photo) never wait either: at most a worker's worth each, they cannot add up, and a huge page held by one
    tenant must not hold up every other tenant's photos. A request may always start when nobody else holds
    memory, or nothing larger than the budget could ever run. Bodies are admitted against the bodies held, not
    against pictures being worked on: those are bounded by the workers, and one tenant's page larger than the
    whole budget must not turn every other tenant's upload away while it is read. Thread-safe.

    >>> budget = MemoryBudget(100)
    >>> budget.try_reserve(60), budget.try_reserve(60), budget.held
    (True, False, 60)
    >>> budget.release(60); budget.held
    0
    >>> page = object(); budget.reserve(150, page, 0), budget.try_reserve(60), budget.held  # a page over it
    (True, True, 210)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._by_owner: dict[int, int] = {}  # everything an owner holds, bodies included
        self._working: dict[int, int] = {}  # what an owner holds for its work
        self._freed = threading.Condition()

    def try_reserve(self, size: int, owner: object = None) -> bool:
        """Admit a body of `size` bytes now, or refuse it (never waits)."""
        with self._freed:
            if not self._body_fits(size, owner):
                return False
            self._add(size, owner)
            return True

    def would_fit(self, size: int) -> bool:
        """Whether `try_reserve(size)` for a new owner would admit a body now (a check, nothing reserved)."""
        with self._freed:
            return self._body_fits(size, None)

    def reserve(self, size: int, owner: object, timeout_s: float) -> bool:
        """Working memory for `owner`: waits up to `timeout_s` for room; False if none came in time."""
        deadline = time.monotonic() + timeout_s
        with self._freed:
            small = size <= self.limit // 8
            while not (small or self._working.get(id(owner), 0) or self._fits(size, owner)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._freed.wait(left)
            self._add(size, owner)
            self._working[id(owner)] = self._working.get(id(owner), 0) + size
            return True

    def _body_fits(self, size: int, owner: object) -> bool:
        mine = self._by_owner.get(id(owner), 0) - self._working.get(id(owner), 0) if owner is not None else 0
        bodies = self.held - sum(self._working.values())  # the rest is pictures and models being worked on
        return bodies - mine <= 0 or bodies + size <= self.limit

    def _fits(self, size: int, owner: object) -> bool:
        mine = self._by_owner.get(id(owner), 0) if owner is not None else 0
        return self.held - mine <= 0 or self.held + size <= self.limit

    def _add(self, size: int, owner: object) -> None:
        self.held += size
        if owner is not None:
            self._by_owner[id(owner)] = self._by_owner.get(id(owner), 0) + size

    def release(self, size: int, owner: object = None, *, working: bool = False) -> None:
        with self._freed:
            self.held = max(0, self.held - size)
            if owner is not None:
                _take_away(self._by_owner, id(owner), size)
                if working:
                    _take_away(self._working, id(owner), size)
            self._freed.notify_all()


def _take_away(held: dict[int, int], key: int, size: int) -> None:
    left = held.get(key, 0) - size
    if left > 0:
        held[key] = left
    else:
        held.pop(key, None)


@dataclass(frozen=True, eq=False)
class RequestLimits:
    """What one request may spend, and the flag its caller sets when nobody waits for the answer any more."""

    cpu_budget_s: float | None = None
    cancelled: threading.Event | None = None
    #: the server's memory budget, which decoded pictures reserve from
    memory: MemoryBudget | None = None
    #: how long a picture waits for memory before the request is refused (503)
    memory_wait_s: float = 10.0
    #: past this many CPU-seconds, or a picture of this many pixels, the request's thread gives way to small
    #: requests (`frugalsense.priority.lower_priority`; a no-op outside the server's lowerable threads)
    large_cpu_s: float | None = None
    large_pixels: int | None = None


_limits: ContextVar[RequestLimits | None] = ContextVar("frugalsense_request_limits", default=None)


def current_limits() -> RequestLimits | None:
    """The limits of the request this code works for, if any."""
    return _limits.get()


@contextmanager
def request_limits(limits: RequestLimits) -> Iterator[None]:
    """Every Meter created and every picture decoded inside (in this thread, or in work started from it with its
    context) gets `limits`.

    >>> from frugalsense.ledger import Meter
    >>> with request_limits(RequestLimits(cpu_budget_s=2.0)):
    ...     Meter(0.05).cpu_budget_s
    2.0
    >>> Meter(0.05).cpu_budget_s is None
    True
    """
    token = _limits.set(limits)
    try:
        yield
    finally:
        _limits.reset(token)


def _nothing() -> None:
    return None


def reserve_picture(width: int, height: int, what: str) -> Callable[[], None]:
    """Reserve the memory a `width` x `height` picture takes before it is decoded; returns its release. A
    picture over the request's `RequestLimits.large_pixels` lowers its thread's priority first."""
    limits = _limits.get()
    if limits is not None and limits.large_pixels is not None and width * height >= limits.large_pixels:
        lower_priority()
    return reserve(width * height * BYTES_PER_DECODED_PIXEL, f"{what} needs")


def reserve(size: int, what: str) -> Callable[[], None]:
    """Reserve `size` bytes of the server's memory budget for the request this code works for; returns the
    release (safe to call more than once).

    Waits while other requests hold the memory; raises OverloadedError (503) if none comes free in time.
    Outside a request with a memory budget, nothing is reserved. `what` starts the error message
    ("the picture needs").
    """
    limits = _limits.get()
    if limits is None or limits.memory is None:
        return _nothing
    budget = limits.memory
    if not budget.reserve(size, limits, limits.memory_wait_s):
        raise OverloadedError(
            f"{what} {size / 2**20:.0f} MiB and the server's memory budget "
            f"(FRUGALSENSE_MEMORY_BUDGET_BYTES, {budget.limit / 2**20:.0f} MiB) is in use; retry shortly",
            status=503,
            retry_after=2,
        )
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            budget.release(size, limits, working=True)
            if size >= _TRIM_AFTER_BYTES:
                give_back_memory()

    return release


def release_with(array: Any, release: Callable[[], None]) -> None:
    """Release a picture's reservation when its pixels are garbage-collected (frames are shared, not copied)."""
    if release is not _nothing:
        weakref.finalize(array, release)


def _libc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def give_back_memory() -> None:
    """Return freed heap pages to the system after a large request (glibc keeps them otherwise, and the server's
    resident size would stay at a burst's peak). A no-op where the C library is not glibc."""
    with suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


def limit_heap_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread heaps: each worker thread would otherwise keep its own heap of freed pictures.

    Measured on three 59 Mpx photos in a row: +838 MB peak and +397 MB kept afterwards with the default number of
    arenas, +643 MB and +114 MB with two. Call it before the worker threads start; a no-op off glibc.
    """
    m_arena_max = -8  # mallopt's parameter number in glibc's malloc.h
    with suppress(OSError, AttributeError):
        _libc().mallopt(m_arena_max, arenas)
