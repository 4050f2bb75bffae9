"""The Session protocol every runtime adapter meets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Array", "Session"]

Array = npt.NDArray[np.generic]


@runtime_checkable
class Session(Protocol):
    """A loaded network: named inputs in, outputs out, computed in the calling thread."""

    @property
    def input_names(self) -> list[str]: ...

    def run(self, inputs: Mapping[str, Array]) -> list[Array]: ...
