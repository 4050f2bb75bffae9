"""What a batch job runs over: folders (walked as `frugalsense index` walks them), files, and manifests.

A manifest is a text file named with ``@``: one path per line (``#`` starts a comment, blank lines are skipped),
or JSON lines each holding a ``"path"``. Relative paths in a manifest are taken from the manifest's folder, so a
manifest travels with its archive. Every path comes out absolute and once, in the order given.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.jpg").write_bytes(b"x")
    >>> _ = (folder / "list.txt").write_text("# receipts\\na.jpg\\n\\n" + '{"path": "a.jpg"}\\n')
    >>> [p.name for p in job_inputs(["@" + str(folder / "list.txt")])]
    ['a.jpg']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from frugalsense.errors import InvalidRequestError
from frugalsense.search.sources import walk

__all__ = ["job_inputs", "read_manifest"]


def read_manifest(manifest: Path) -> Iterator[Path]:
    """The paths a manifest lists (text lines or JSON lines with a "path"), absolute."""
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"cannot read the manifest {manifest} ({exc}); name a UTF-8 text file") from exc
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                entry = json.loads(line)
                line = str(entry["path"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidRequestError(
                    f'{manifest}, line {number}: a JSON line needs a "path" string ({exc})'
                ) from exc
        path = Path(os.path.expanduser(line))
        yield (path if path.is_absolute() else manifest.parent / path).resolve()


def job_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every file a job covers: folders walked, files as named, ``@manifest`` entries; absolute, each once."""
    named: list[Path] = []
    for raw in paths:
        text = os.fspath(raw)
        if text.startswith("@"):
            manifest = Path(text[1:]).resolve()
            if not manifest.is_file():
                raise InvalidRequestError(f"no manifest at {manifest}; write one path per line")
            named.extend(read_manifest(manifest))
        else:
            named.append(Path(text))
    return list(walk(named))
