"""The files an index run picks up: folders walked for known endings, each file read within the upload limit."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from frugalsense.errors import InputTooLargeError, InvalidRequestError

__all__ = ["SUFFIXES", "read_file", "walk"]

#: file endings a folder walk picks up (a file named on the command line is tried whatever its name)
SUFFIXES = frozenset(
    {
        *(".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".avif", ".pdf"),
        *(".wav", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".flac"),
        *(".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"),
    }
)


def walk(paths: Iterable[str | os.PathLike[str]]) -> Iterable[Path]:
    """Files to index: files as named, folders walked (hidden entries skipped, known endings only), each once."""
    seen: set[Path] = set()
    for raw in paths:
        path = Path(os.fspath(raw)).resolve()
        found: Iterable[Path]
        if path.is_dir():
            found = (
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found = iter([path])
        for file in found:
            if file not in seen:
                seen.add(file)
                yield file


def read_file(path: Path, limit: int) -> bytes:
    try:
        if not path.is_file():
            raise InvalidRequestError(f"{path} is not a regular file; pass files or folders")
        size = path.stat().st_size
        if size > limit:
            raise InputTooLargeError(
                f"{path} is {size:,} bytes, over the limit of {limit:,} (FRUGALSENSE_MAX_UPLOAD_BYTES)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path} ({exc.strerror or exc}); check the path") from exc
