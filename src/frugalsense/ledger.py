"""The cost ledger: the code that spends CPU writes it into the request's receipt as it goes.

>>> meter = Meter(price_per_cpu_hour=0.05)
>>> with meter.stage("decode"):
...     _ = sum(range(10_000))
>>> receipt = meter.receipt
>>> receipt.stages[0].stage, receipt.cpu_seconds >= 0
('decode', True)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from frugalsense.budget import current_limits
from frugalsense.priority import lower_priority

__all__ = ["Clock", "CostReceipt", "Meter", "StageCost"]

#: "thread": CPU time of the calling thread, right when the runtime computes in that thread (ONNX Runtime and
#: OpenCV with one intra-op thread, dlib, Tesseract). "process": CPU time of the whole process, for runtimes that
#: compute in threads of their own (CTranslate2); exact when requests do not overlap, an upper bound otherwise.
Clock = Literal["thread", "process"]

_CLOCKS = {"thread": time.thread_time, "process": time.process_time}


@dataclass(frozen=True)
class StageCost:
    """One metered stage of one request."""

    stage: str
    model: str | None
    cpu_s: float
    wall_ms: float
    items: int = 1
    clock: Clock = "thread"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "model": self.model,
            "cpu_s": round(self.cpu_s, 6),
            "wall_ms": round(self.wall_ms, 3),
            "items": self.items,
            "clock": self.clock,
            "note": self.note,
        }


@dataclass
class CostReceipt:
    """What a request cost: every stage, the CPU-seconds they add up to, and the price of those seconds."""

    price_per_cpu_hour: float
    stages: list[StageCost] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        return sum(s.cpu_s for s in self.stages)

    @property
    def wall_ms(self) -> float:
        return sum(s.wall_ms for s in self.stages)

    @property
    def cost_usd(self) -> float:
        return self.cpu_seconds / 3600.0 * self.price_per_cpu_hour

    @property
    def models(self) -> list[str]:
        """Models used, in the order they first ran."""
        return list(dict.fromkeys(s.model for s in self.stages if s.model))

    def merge(self, other: CostReceipt) -> None:
        self.stages.extend(other.stages)

    def summary(self) -> str:
        """One line, as the CLI prints it and the HTTP layer puts it in a header."""
        return f"cpu_s={self.cpu_seconds:.4f}; usd={self.cost_usd:.8f}; stages={len(self.stages)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_seconds": round(self.cpu_seconds, 6),
            "wall_ms": round(self.wall_ms, 3),
            "cost_usd": self.cost_usd,
            "price_per_cpu_hour": self.price_per_cpu_hour,
            "models": self.models,  # the rungs climbed, in order: why the request cost what it did
            "stages": [s.to_dict() for s in self.stages],
        }


class Meter:
    """Measures stages into one receipt. Not shared between requests.

    Work between stages (dispatching features, assembling the result, garbage collection) is CPU the request
    used too: `finish` bills whatever the calling thread spent outside every stage as one "overhead" stage, so
    the receipt adds up to the thread's CPU time from the meter's creation.

    >>> meter = Meter(price_per_cpu_hour=0.05)
    >>> with meter.stage("decode"):
    ...     _ = sum(range(10_000))
    >>> _ = [str(i) for i in range(10_000)]  # unmetered glue
    >>> [s.stage for s in meter.finish().stages]
    ['decode', 'overhead']
    """

    def __init__(
        self,
        price_per_cpu_hour: float,
        *,
        cpu_budget_s: float | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.receipt = CostReceipt(price_per_cpu_hour=price_per_cpu_hour)
        limits = current_limits()  # what the HTTP layer allows the request it works for (frugalsense.budget)
        #: past this many CPU-seconds the request's thread gives way to small requests (`check`)
        self.large_cpu_s = limits.large_cpu_s if limits is not None else None
        if limits is not None:
            cpu_budget_s = limits.cpu_budget_s if cpu_budget_s is None else cpu_budget_s
            cancelled = limits.cancelled if cancelled is None else cancelled
        #: the request stops at the next stage once its receipt passes this many CPU-seconds
        self.cpu_budget_s = cpu_budget_s
        #: set by whoever waits for the answer when it no longer does (the HTTP client went away)
        self.cancelled = cancelled
        self._thread0 = time.thread_time()
        self._covered = 0.0  # calling-thread CPU spent inside outermost stages
        self._depth = 0
        self._finished = False

    @contextmanager
    def stage(
        self, stage: str, model: str | None = None, *, items: int = 1, clock: Clock = "thread", note: str = ""
    ) -> Iterator[None]:
        self.check()
        cpu = _CLOCKS[clock]
        thread0, cpu0, wall0 = time.thread_time(), cpu(), time.perf_counter()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            cost = StageCost(
                stage=stage,
                model=model,
                cpu_s=max(0.0, cpu() - cpu0),
                wall_ms=(time.perf_counter() - wall0) * 1000.0,
                items=items,
                clock=clock,
                note=note,
            )
            self.record(cost, covered_thread_s=time.thread_time() - thread0)

    def check(self) -> None:
        """Stop the request here if nobody waits for it any more or it has spent its CPU budget; past
        ``large_cpu_s``, lower its thread's priority (`frugalsense.priority`).

        Called when every stage starts, and by long stages between their own steps (pages, audio segments).

        >>> meter = Meter(0.05, cpu_budget_s=0.0)
        >>> meter.record(StageCost("ocr", None, 0.5, 500.0), covered_thread_s=0.5)
        >>> meter.check()
        Traceback (most recent call last):
        ...
        frugalsense.errors.BudgetExceededError: the request spent 0.500 CPU-s, over its budget of 0 CPU-s ...
        """
        from frugalsense.errors import BudgetExceededError, CancelledError

        if self.cancelled is not None and self.cancelled.is_set():
            raise CancelledError("the client went away; the work was stopped")
        if self.large_cpu_s is None and self.cpu_budget_s is None:
            return
        spent = self.receipt.cpu_seconds
        if self.large_cpu_s is not None and spent > self.large_cpu_s:
            lower_priority()
        if self.cpu_budget_s is not None and spent > self.cpu_budget_s:
            raise BudgetExceededError(
                f"the request spent {spent:.3f} CPU-s, over its budget of {self.cpu_budget_s:g} CPU-s "
                "(FRUGALSENSE_MAX_REQUEST_CPU_SECONDS); send fewer pages, a shorter recording or fewer "
                "features, or raise the budget"
            )

    def record(self, cost: StageCost, *, covered_thread_s: float) -> None:
        """Add a stage measured elsewhere (e.g. a batch's share); `covered_thread_s` is this thread's CPU in it."""
        self.receipt.stages.append(cost)
        if self._depth == 0:
            self._covered += max(0.0, covered_thread_s)

    def finish(self, stage: str = "overhead") -> CostReceipt:
        """Bill the calling thread's CPU outside every stage (once) and return the receipt."""
        if not self._finished:
            self._finished = True
            unmetered = time.thread_time() - self._thread0 - self._covered
            note = "between stages: feature dispatch, result assembly, garbage collection"
            self.receipt.stages.append(StageCost(stage, None, max(0.0, unmetered), 0.0, note=note))
        return self.receipt
