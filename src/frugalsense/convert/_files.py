"""File plumbing shared by the converters: content digests and atomic writes into the model cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_target", "file_digest", "temp_next_to"]


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
