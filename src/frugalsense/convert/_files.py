"""File plumbing shared by the converters: content digests and atomic writes into the model cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.atomic import atomic_write

__all__ = [
    "cached_conversion",
    "conversion_lock",
    "file_digest",
    "finish_conversion",
    "lowest_cosine",
    "quiet_session",
]


@contextlib.contextmanager
def conversion_lock(out_dir: Path) -> Iterator[None]:
    """Hold the model folder's lock while converting into it: processes sharing the folder (a node's Ray actors,
    several servers) convert one at a time, and the later ones find the earlier one's files through the sidecar.
    A folder the process may not write to gets no lock (it can hold no conversion either)."""
    import fcntl

    try:
        handle = (out_dir / ".convert.lock").open("a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_digest(*paths: Path) -> str:
    """sha256 over the files' names and bytes, read in 1 MiB chunks (weights are tens of MB)."""
    digest = hashlib.sha256()
    for path in paths:
        if len(paths) > 1:
            digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def finish_conversion(
    meta: dict[str, Any],
    paths: dict[str, Path],
    *,
    int8_path: Path,
    int8: bool,
    quantize: Callable[[Path, Path], dict[str, Any]],
    sidecar: Path,
    started: float,
) -> dict[str, Path]:
    """The common tail of a conversion: the optional int8 variant, then the sidecar that marks the work done.

    `quantize(fp32_path, int8_path)` returns its record with a "kept" flag; the sidecar is written last, so an
    interrupted conversion is redone rather than trusted.
    """
    # An int8 file from an older source or converter must not outlive the sidecar that described it.
    int8_path.unlink(missing_ok=True)
    if int8:
        meta["int8"] = quantize(paths["fp32"], int8_path)
        if meta["int8"]["kept"]:
            meta["int8"]["bytes"] = int8_path.stat().st_size
            paths["int8"] = int8_path
    meta["seconds"] = round(time.perf_counter() - started, 2)
    with atomic_write(sidecar) as handle:
        handle.write(json.dumps(meta, indent=2).encode() + b"\n")
    paths["sidecar"] = sidecar
    return paths


def cached_conversion(
    sidecar: Path,
    fp32_path: Path,
    int8_path: Path,
    *,
    source_sha256: str,
    converter_version: str,
    int8: bool,
) -> dict[str, Path] | None:
    """The files of an earlier conversion when its sidecar records the same source and converter (and, if int8
    is asked for, that int8 was tried), else None: the work must be redone."""
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("source_sha256") != source_sha256 or meta.get("converter_version") != converter_version:
        return None
    paths = {"fp32": fp32_path}
    if int8:
        int8_meta = meta.get("int8")
        if not isinstance(int8_meta, dict):
            return None  # an fp32-only conversion; int8 was never tried
        if int8_meta.get("kept"):
            paths["int8"] = int8_path
    paths["sidecar"] = sidecar
    if not all(p.is_file() for p in paths.values()):
        return None
    return paths


def quiet_session(onnx_path: Path) -> Any:
    """An ONNX Runtime session on one thread, warnings off: for checking a converted graph, not for serving."""
    import onnxruntime as ort  # deferred: building graphs does not need the runtime

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def lowest_cosine(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    """The smallest row-wise cosine similarity of two (rows, dim) arrays, in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    return float(cos.min())
