"""Atomic file writes, the one way the package replaces a file: a crash leaves the old file or the new one.

The new bytes go to a temporary file beside the target (same file system, so the rename is atomic), are synced
(``durable``), and renamed over the target only when the writing block ends without an error. Private data
(faces, snapshots) is written 0600; converted models and calibration caches are ordinary 0644 files.

    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "profile.json"
    >>> with atomic_write(target, mode=0o600) as handle:
    ...     _ = handle.write(b"{}")
    >>> target.read_bytes(), oct(target.stat().st_mode & 0o777)
    (b'{}', '0o600')
    >>> with atomic_path(target) as tmp:   # for libraries that write to a path themselves
    ...     _ = tmp.write_bytes(b'{"v": 2}')
    >>> target.read_bytes()
    b'{"v": 2}'
    >>> try:
    ...     with atomic_write(target) as handle:
    ...         _ = handle.write(b"half")
    ...         raise RuntimeError("crashed mid-write")
    ... except RuntimeError:
    ...     pass
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'{"v": 2}', ['profile.json'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_write"]

SHARED_MODE = 0o644


@contextmanager
def atomic_path(final: Path, *, mode: int = SHARED_MODE, durable: bool = True) -> Iterator[Path]:
    """A fresh temporary path beside ``final``. When the block ends without an error and the temporary file
    exists, it is synced (``durable``) and renamed over ``final``; a block that deletes it leaves ``final`` as it
    was. The temporary file is always gone afterwards."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, mode)
            if durable:
                _sync(tmp)
            os.replace(tmp, final)
            if durable:
                _sync_folder(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_write(final: Path, *, mode: int = SHARED_MODE, durable: bool = True) -> Iterator[BinaryIO]:
    """An open binary handle whose bytes replace ``final`` atomically when the block ends without an error."""
    with atomic_path(final, mode=mode, durable=durable) as tmp, open(tmp, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        yield handle


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the platform allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
