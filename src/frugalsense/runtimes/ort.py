"""ONNX Runtime sessions, single-threaded by default so the calling thread's CPU clock sees all the work."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from frugalsense.errors import ModelUnavailableError
from frugalsense.runtimes.base import Array

__all__ = ["OrtSession"]


class OrtSession:
    def __init__(self, path: Path, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelUnavailableError("onnxruntime is not installed: pip install onnxruntime") from exc
        if not Path(path).is_file():
            raise ModelUnavailableError(f"model file {path} is missing; run `frugalsense models prepare`")
        options = ort.SessionOptions()
        # One intra-op thread computes in the caller's thread: the receipt's thread clock is then exact, and
        # a 2-core box serves two requests at once instead of two threads fighting over one request.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # With more than one thread, pool threads that spin while idle burn CPU nobody's receipt sees.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    def run(self, inputs: Mapping[str, Array]) -> list[Array]:
        return list(self._session.run(None, dict(inputs)))
