"""Runtimes: one small adapter per inference engine, all behind the `Session` protocol.

A model asks for a session by runtime name and file; it never imports an engine itself. Engines that are whole
pipelines rather than networks have an adapter of their own, imported by the model when it loads: `opencv`
(YuNet, SFace alignment), `dlib` (shape predictor + ResNet), `rapidocr` (PP-OCR and its parts), `tesseract`,
`whisper` (faster-whisper on CTranslate2). Each imports its engine lazily and says what to install when it is
missing.
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
