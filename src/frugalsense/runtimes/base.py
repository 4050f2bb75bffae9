"""The Session protocol and the function that opens one for a runtime name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError

__all__ = ["Session", "open_session"]

Array = npt.NDArray[np.generic]


@runtime_checkable
class Session(Protocol):
    """A loaded network: named inputs in, outputs out, computed in the calling thread."""

    @property
    def input_names(self) -> list[str]: ...

    def run(self, inputs: Mapping[str, Array]) -> list[Array]: ...


def open_session(runtime: str, path: Path, *, threads: int = 1) -> Session:
    """Open `path` with the named runtime ("onnxruntime" or "opencv")."""
    if runtime == "onnxruntime":
        from frugalsense.runtimes.ort import OrtSession

        return OrtSession(path, threads=threads)
    if runtime == "opencv":
        from frugalsense.runtimes.opencv import OpenCVSession

        return OpenCVSession(path, threads=threads)
    raise ConfigurationError(f"unknown runtime {runtime!r}; use 'onnxruntime' or 'opencv'")
