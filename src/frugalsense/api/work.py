"""How a route gets its blocking work done: admission before the body is read, then one of the two pools.

p: Principal = Depends(admitted)          # file routes: memory reserved for the body before it is read
await metadata(request, lambda: ...)      # database work: its own threads
await infer(request, p, lambda: ...)      # model work: fair slot, CPU budget, stopped if the client leaves
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from fastapi import Depends, Request

from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.limits import WorkPools, body_reservation, memory_refusal, watch_disconnect
from frugalsense.budget import MemoryBudget, RequestLimits, give_back_memory

__all__ = ["admitted", "infer", "metadata"]

_T = TypeVar("_T")

#: after a request that reserved this much, freed memory is handed back to the system
_TRIM_AFTER_BYTES = 16 * 1024 * 1024


async def admitted(request: Request, principal: Principal = Depends(authenticate)) -> AsyncIterator[Principal]:
    """FastAPI dependency for routes that take files: the caller, once memory for the body is reserved.

    Past the server's memory budget the request is refused with 503 and Retry-After before its body is read.
    """
    budget: MemoryBudget = request.app.state.memory
    limits = request_limits_of(request)
    size = body_reservation(request.headers, request.app.state.settings.max_upload_bytes)
    if not budget.try_reserve(size, limits):
        raise memory_refusal(budget)
    try:
        yield principal
    finally:
        budget.release(size, limits)
        if size >= _TRIM_AFTER_BYTES:
            await metadata(request, give_back_memory)


async def metadata(request: Request, fn: Callable[[], _T]) -> _T:
    """Run a database read or write off the event loop, in the metadata pool."""
    pools: WorkPools = request.app.state.pools
    return await pools.metadata(fn)


async def infer(request: Request, principal: Principal, fn: Callable[[], _T]) -> _T:
    """Run model work for the caller's tenant; it stops at its next stage if the client disconnects.

    Call it after the body has been read: from then on the only message the client can send is a disconnect.
    """
    pools: WorkPools = request.app.state.pools
    limits = request_limits_of(request)
    assert limits.cancelled is not None
    watcher = watch_disconnect(request.receive, limits.cancelled)
    try:
        return await pools.infer(principal.tenant_id, fn, limits)
    finally:
        watcher.cancel()


def request_limits_of(request: Request) -> RequestLimits:
    """The request's limits, made on first use: its body and its pictures reserve memory as one owner."""
    limits: RequestLimits | None = getattr(request.state, "limits", None)
    if limits is None:
        pools: WorkPools = request.app.state.pools
        limits = request.state.limits = pools.limits()
    return limits
