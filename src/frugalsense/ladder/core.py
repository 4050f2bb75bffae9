"""Rungs and ladders: a request climbs only as far as it must.

A rung runs one model (or combines earlier rungs' outputs, like an ensemble) and says how sure it is, in [0, 1].
The ladder stops at the first rung whose confidence clears that rung's threshold; the last rung always answers.
Thresholds are data (a calibrated `Profile`), never literals in code.

    >>> from frugalsense.ledger import Meter
    >>> class Half:
    ...     name = "half"
    ...     def run(self, item, previous, meter):
    ...         return Outcome(output=item / 2, confidence=0.9)
    >>> class Exact:
    ...     name = "exact"
    ...     def run(self, item, previous, meter):
    ...         return Outcome(output=item / 2, confidence=1.0)
    >>> ladder = Ladder("demo", [Half(), Exact()], thresholds=[0.95])
    >>> ladder.run(8, Meter(0.05)).climbed
    ['half', 'exact']
    >>> Ladder("demo", [Half(), Exact()], thresholds=[0.5]).run(8, Meter(0.05)).climbed
    ['half']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from frugalsense.errors import ConfigurationError
from frugalsense.ledger import Meter

__all__ = ["Ladder", "LadderResult", "Outcome", "Rung"]

In = TypeVar("In")
Out = TypeVar("Out")
In_contra = TypeVar("In_contra", contravariant=True)


@dataclass(frozen=True)
class Outcome(Generic[Out]):
    """One rung's answer and how sure it is (in [0, 1])."""

    output: Out
    confidence: float
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")


class Rung(Protocol[In_contra]):
    """A step of a ladder. `previous` holds the outcomes of the rungs below it (for ensembles and fusion)."""

    @property
    def name(self) -> str: ...

    def run(self, item: In_contra, previous: Sequence[Outcome[Any]], meter: Meter) -> Outcome[Any]: ...


@dataclass(frozen=True)
class LadderResult(Generic[Out]):
    output: Out
    confidence: float
    rung: int  # index of the rung that answered
    climbed: list[str]  # names of every rung that ran
    outcomes: list[Outcome[Any]]


class Ladder(Generic[In]):
    """An ordered list of rungs with one threshold per rung but the last."""

    def __init__(self, task: str, rungs: Sequence[Rung[In]], thresholds: Sequence[float]) -> None:
        if not rungs:
            raise ConfigurationError(f"ladder {task!r} has no rungs")
        if len(thresholds) != len(rungs) - 1:
            raise ConfigurationError(
                f"ladder {task!r} has {len(rungs)} rungs, so it needs {len(rungs) - 1} thresholds, "
                f"not {len(thresholds)}"
            )
        self.task = task
        self.rungs = list(rungs)
        self.thresholds = [float(t) for t in thresholds]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rungs]

    def models(self) -> list[Any]:
        """The models the rungs hold (each once, in rung order), so a caller can load them ahead of requests."""
        from frugalsense.models.base import Model

        found: dict[int, Any] = {}
        for rung in self.rungs:
            for value in vars(rung).values():
                held = value if isinstance(value, list | tuple) else [value]
                for candidate in held:
                    if isinstance(candidate, Model):
                        found.setdefault(id(candidate), candidate)
        return list(found.values())

    def run(self, item: In, meter: Meter) -> LadderResult[Any]:
        outcomes: list[Outcome[Any]] = []
        for i, rung in enumerate(self.rungs):
            outcome = rung.run(item, outcomes, meter)
            outcomes.append(outcome)
            last = i == len(self.rungs) - 1
            if last or outcome.confidence >= self.thresholds[i]:
                return LadderResult(
                    output=outcome.output,
                    confidence=outcome.confidence,
                    rung=i,
                    climbed=[r.name for r in self.rungs[: i + 1]],
                    outcomes=outcomes,
                )
        raise AssertionError("unreachable: the last rung always answers")
