"""Runtimes: one small adapter per inference engine, all behind the `Session` protocol.

A model asks for a session by runtime name and file; it never imports an engine itself.
"""

from __future__ import annotations

from pathlib import Path

from frugalsense.errors import ConfigurationError
from frugalsense.runtimes.base import Array, Session

__all__ = ["Array", "Session", "open_session"]


def open_session(runtime: str, path: Path, *, threads: int = 1) -> Session:
    """Open `path` with the named runtime ("onnxruntime" or "opencv")."""
    if runtime == "onnxruntime":
        from frugalsense.runtimes.ort import OrtSession

        return OrtSession(path, threads=threads)
    if runtime == "opencv":
        from frugalsense.runtimes.opencv import OpenCVSession

        return OpenCVSession(path, threads=threads)
    raise ConfigurationError(f"unknown runtime {runtime!r}; use 'onnxruntime' or 'opencv'")
