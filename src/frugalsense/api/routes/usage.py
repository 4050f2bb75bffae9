"""GET /v1/usage: the caller's CPU-seconds and dollars per day and feature, beside two clouds' list prices.

Every receipt the HTTP edge returns is noted here (`record_usage`, called where the response is made) and
written to the usage ledger in the metadata pool right after, never on the event loop; a read writes whatever
is still waiting first, so it always includes every answer already sent.

With the CPU goes what a cloud would bill for the same answers: each image feature's units, one per picture it
analysed (a PDF's pages, a video's sampled frames; `pictures_in` reads them off an analysis), priced per unit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.limits import WorkPools
from frugalsense.api.work import metadata
from frugalsense.console.prices import PICTURE_FEATURES, PRICES_AS_OF, cloud_usd, features_of
from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import CostReceipt
from frugalsense.store.usage import Ledger, UsageEntry

__all__ = ["UsageRecorder", "pictures_in", "record_usage", "router"]

router = APIRouter(tags=["usage"])

#: the longest span one report covers
MAX_DAYS = 366
#: pictures per image feature, or one number for every image feature a receipt shows
Pictures = Mapping[str, int] | int | None


class CloudPrice(BaseModel):
    aws_rekognition: float | None = Field(description="USD at AWS Rekognition Image list price (None: not sold)")
    google_vision: float | None = Field(description="USD at Google Cloud Vision list price (None: not sold)")


class UsageRow(BaseModel):
    day: str = Field(description="ISO date, UTC")
    feature: str = Field(description="faces, identify, labels, moderation, text, speech, search or shared")
    cpu_seconds: float
    usd: float = Field(description="the CPU-seconds at the server's price per CPU-hour")
    count: int = Field(description="requests that used the feature")
    units: int = Field(
        description="what a cloud bills: pictures analysed (one per photo, page or sampled video frame) for image "
        "features; requests for the others"
    )
    cloud_usd: CloudPrice = Field(description="the units at each cloud's list price per picture")


class UsageTotals(BaseModel):
    cpu_seconds: float
    usd: float
    requests: int = Field(description="metered requests (each bills some shared work)")
    aws_rekognition_usd: float
    google_vision_usd: float


class UsageReport(BaseModel):
    since: str
    until: str
    price_per_cpu_hour: float
    cloud_prices_as_of: str
    rows: list[UsageRow]
    totals: UsageTotals


class UsageRecorder:
    """Receipts noted on the event loop, written to the ledger in the metadata pool one batch at a time."""

    def __init__(self, pools: WorkPools, open_ledger: Callable[[], Ledger]) -> None:
        self._pools = pools
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._pending: list[UsageEntry] = []
        self._lock = threading.Lock()
        self._writing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def note(self, tenant_id: str, receipt: CostReceipt, pictures: Pictures = None) -> None:
        """Split a receipt by feature and queue it; a write is scheduled on the running loop. ``pictures``: how
        many pictures each image feature answered for (a cache hit answers without spending, and still counts),
        or one number for every image feature on the receipt; by default each analysed one picture."""
        day = datetime.now(UTC).date().isoformat()
        price = receipt.price_per_cpu_hour / 3600.0
        entries = [
            UsageEntry(tenant_id, day, f, s, s * price, 1, units)
            for f, (s, units) in features_of(receipt, pictures).items()
        ]
        with self._lock:
            self._pending.extend(entries)
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write everything noted so far; returns once it is in the ledger."""
        async with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                await self._pools.metadata(lambda: self.ledger().add(batch))

    def ledger(self) -> Ledger:
        """The ledger's own connection, opened on first use (in the metadata pool)."""
        if self._ledger is None:
            self._ledger = self._open_ledger()
        return self._ledger


_MADE = threading.Lock()


def recorder_of(request: Request) -> UsageRecorder:
    state = request.app.state
    found: UsageRecorder | None = getattr(state, "usage", None)
    if found is None:
        with _MADE:
            found = getattr(state, "usage", None)
            if found is None:
                found = state.usage = UsageRecorder(state.pools, state.store.usage_ledger)
    return found


def record_usage(request: Request, receipt: CostReceipt, pictures: Pictures = None) -> None:
    """Bill a receipt the response is about to carry to the caller's tenant in the usage ledger, with the
    pictures each image feature answered for (see `UsageRecorder.note`; default: one each, as for a photo)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        recorder_of(request).note(principal.tenant_id, receipt, pictures)


def pictures_in(body: Mapping[str, object]) -> dict[str, int] | None:
    """How many pictures each image feature answered for in an analysis's JSON (its pages, each naming the
    features that ran on it), or None for a body that is not one.

    >>> pictures_in({"pages": [{"faces": [], "text": []}, {"faces": [], "text": []}]})
    {'faces': 2, 'text': 2}
    >>> pictures_in({"faces": []}) is None
    True
    """
    pages = body.get("pages")
    if not isinstance(pages, list):
        return None
    counts: dict[str, int] = {}
    for page in pages:
        for feature in PICTURE_FEATURES:
            if isinstance(page, dict) and feature in page:
                counts[feature] = counts.get(feature, 0) + 1
    return counts


def _day(value: str | None, default: date, name: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"'{name}' must be an ISO date such as 2026-01-31, got {value!r}") from None


@router.get("/usage", summary="Your CPU-seconds and dollars per day and feature, beside cloud list prices")
async def usage(
    request: Request,
    p: Principal = Depends(authenticate),
    since: str | None = Query(None, max_length=10, description="first day (ISO date; default 30 days ago)"),
    until: str | None = Query(None, max_length=10, description="last day (ISO date; default today, UTC)"),
) -> UsageReport:
    today = datetime.now(UTC).date()
    last = _day(until, today, "until")
    first = _day(since, last - timedelta(days=29), "since")
    if first > last or (last - first).days >= MAX_DAYS:
        raise InvalidRequestError(f"'since' must be on or before 'until', at most {MAX_DAYS} days apart")
    recorder = recorder_of(request)
    await recorder.flush()
    entries = await metadata(
        request, lambda: recorder.ledger().daily(p.tenant_id, first.isoformat(), last.isoformat())
    )
    rows = [UsageRow(**e.to_dict(), cloud_usd=CloudPrice(**cloud_usd(e.feature, e.billable))) for e in entries]
    totals = UsageTotals(
        cpu_seconds=round(sum(e.cpu_seconds for e in entries), 6),
        usd=sum(e.usd for e in entries),
        requests=sum(e.count for e in entries if e.feature == "shared"),
        aws_rekognition_usd=round(sum(r.cloud_usd.aws_rekognition or 0.0 for r in rows), 6),
        google_vision_usd=round(sum(r.cloud_usd.google_vision or 0.0 for r in rows), 6),
    )
    return UsageReport(
        since=first.isoformat(),
        until=last.isoformat(),
        price_per_cpu_hour=request.app.state.settings.price_per_cpu_hour,
        cloud_prices_as_of=PRICES_AS_OF,
        rows=rows,
        totals=totals,
    )
