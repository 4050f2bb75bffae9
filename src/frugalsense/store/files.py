"""Files under the data folder are private to the service's user: folders 0700, files 0600, whatever the umask.

Faces, their crops and embeddings are biometric data; the umask of whoever started the service must not decide
who else on the machine can read them.

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = private_folder(Path(tempfile.mkdtemp()) / "data" / "crops")
    >>> oct(folder.stat().st_mode & 0o777)
    '0o700'
    >>> with private_replace(folder / "a.jpg") as handle:
    ...     _ = handle.write(b"jpeg")
    >>> oct((folder / "a.jpg").stat().st_mode & 0o777)
    '0o600'
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["FILE_MODE", "FOLDER_MODE", "make_private", "private_file", "private_folder", "private_replace"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def make_private(path: Path) -> None:
    """Narrow an existing file to 0600 or folder to 0700 (left alone: missing paths, paths owned by another
    user, and shared sticky folders such as /tmp)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid():
        return
    if stat.S_ISDIR(info.st_mode):
        if info.st_mode & stat.S_ISVTX:
            return
        wanted = FOLDER_MODE
    else:
        wanted = FILE_MODE
    if stat.S_IMODE(info.st_mode) != wanted:
        os.chmod(path, wanted)


def private_folder(path: Path) -> Path:
    """``path`` as a private folder: the missing levels are created 0700, and the folder itself narrowed."""
    missing = []
    level = path
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, FOLDER_MODE)  # mkdir's mode goes through the umask; set it exactly
    make_private(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as a 0600 file if it is missing (so whatever opens it next keeps that mode), or
    narrow it to 0600; its folder is made private."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        # Changed by name, never opened: closing a descriptor of a database file drops every POSIX lock this
        # process holds on it, and SQLite's connections rely on those.
        make_private(path)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


@contextmanager
def private_replace(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """Write ``path`` as a 0600 file, atomically: into a temporary file beside it, then renamed over it, so a
    crash leaves the old file or the new one, never half of one. ``durable`` syncs the bytes first."""
    private_folder(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # an older file of that name may have had another mode
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
