"""Thumbnails of indexed items: a small JPEG of each picture item's first picture (a photo, a scan, a PDF's
first page, a video's first sampled frame), kept as ``DATA_DIR/thumbnails/<tenant>/<item>.jpg``.

They are files beside the face crops, whatever the database: private to the service's user (folders 0700,
files 0600), written after the item's row commits (a crash in between leaves an item without a thumbnail, never
a thumbnail without an item), and removed before the row when the item goes, and with the tenant's folder when
the tenant goes.

>>> import tempfile
>>> import numpy as np
>>> from pathlib import Path
>>> from frugalsense.media.types import Frame
>>> thumbs = Thumbnails(Path(tempfile.mkdtemp()))
>>> thumbs.save("ten_a", "item_1", make_thumbnail(Frame(np.zeros((900, 600, 3), np.uint8))))
>>> thumbs.read("ten_a", "item_1")[:2], thumbs.exists("ten_b", "item_1")
(b'\\xff\\xd8', False)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from frugalsense.errors import NotFoundError
from frugalsense.media.preview import jpeg_preview
from frugalsense.media.types import Frame
from frugalsense.store.files import private_replace

__all__ = ["THUMBNAIL_QUALITY", "THUMBNAIL_SIDE", "Thumbnails", "make_thumbnail"]

#: longest side of a thumbnail in pixels: sharp at the console's 120 px on a screen of double density
THUMBNAIL_SIDE = 240
#: JPEG quality: about 8-15 KB per thumbnail
THUMBNAIL_QUALITY = 70

_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def make_thumbnail(frame: Frame) -> bytes:
    """A picture's thumbnail as JPEG bytes."""
    return jpeg_preview(frame, THUMBNAIL_SIDE, THUMBNAIL_QUALITY).jpeg


class Thumbnails:
    """The thumbnail files of one data folder. Thread-safe (each write replaces its file atomically)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "thumbnails"

    def path(self, tenant_id: str, item_id: str) -> Path:
        """Where an item's thumbnail lives; an id that could leave the folder is simply not there."""
        if not (_ID.fullmatch(tenant_id) and _ID.fullmatch(item_id)):
            raise NotFoundError(f"no thumbnail of item {item_id!r}")
        return self.root / tenant_id / f"{item_id}.jpg"

    def save(self, tenant_id: str, item_id: str, jpeg: bytes) -> None:
        with private_replace(self.path(tenant_id, item_id), durable=False) as handle:
            handle.write(jpeg)

    def exists(self, tenant_id: str, item_id: str) -> bool:
        return self.path(tenant_id, item_id).is_file()

    def read(self, tenant_id: str, item_id: str) -> bytes:
        """The thumbnail's bytes, only from the tenant's own folder: another tenant's item is not found."""
        try:
            return self.path(tenant_id, item_id).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"item {item_id!r} has no thumbnail: it is not a picture, or was indexed before thumbnails were "
                "kept (index it again to add one)"
            ) from None

    def remove(self, tenant_id: str, item_id: str) -> None:
        self.path(tenant_id, item_id).unlink(missing_ok=True)

    def drop_tenant(self, tenant_id: str) -> None:
        """Every thumbnail of a tenant, with its folder."""
        if _ID.fullmatch(tenant_id):
            shutil.rmtree(self.root / tenant_id, ignore_errors=True)
