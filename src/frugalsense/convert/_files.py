"""File plumbing shared by the converters: content digests and atomic writes into the model cache."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_target", "file_digest", "finish_conversion", "temp_next_to"]


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


def temp_next_to(final: Path) -> Path:
    """A fresh temporary file in ``final``'s folder, so the later rename stays on one file system."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); converted models are ordinary shared cache files.
    os.chmod(name, 0o644)
    return Path(name)


@contextmanager
def atomic_target(final: Path) -> Iterator[Path]:
    """A temporary path next to ``final`` that replaces it only if the block succeeds (no half-written models)."""
    tmp = temp_next_to(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


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
    with atomic_target(sidecar) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    paths["sidecar"] = sidecar
    return paths
