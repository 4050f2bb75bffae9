"""Small JPEG copies of pictures for people to look at: the search index's thumbnails and the pages and frames
the console draws an analysis on. Never larger than the picture; the scale takes the picture's coordinates
(boxes, text lines) onto the copy.

>>> import numpy as np
>>> from frugalsense.media.types import Frame
>>> preview = jpeg_preview(Frame(np.zeros((600, 1200, 3), np.uint8)), max_side=240)
>>> (preview.width, preview.height, preview.scale, preview.jpeg[:2])
(240, 120, 0.2, b'\\xff\\xd8')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from frugalsense.media.types import Frame

__all__ = ["Preview", "jpeg_preview"]


@dataclass(frozen=True)
class Preview:
    """A JPEG copy of a picture: its bytes, its size in pixels, and the picture's pixels per copy pixel."""

    jpeg: bytes
    width: int
    height: int
    #: the copy's pixels per pixel of the picture: a box at x in the picture is at x * scale on the copy
    scale: float

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or not 0 < self.scale <= 1:
            raise ValueError(f"a preview needs a size and a scale in (0, 1], got {self.width}x{self.height}")


def jpeg_preview(frame: Frame, max_side: int, quality: int = 70) -> Preview:
    """The picture shrunk (area averaging) to at most ``max_side`` pixels a side, as a JPEG of ``quality``."""
    import cv2

    if max_side < 1 or not 1 <= quality <= 100:
        raise ValueError(f"max_side must be positive and quality 1-100, got {max_side} and {quality}")
    longest = max(frame.width, frame.height)
    scale = min(1.0, max_side / longest)
    bgr = np.ascontiguousarray(frame.pixels[:, :, ::-1])
    if scale < 1.0:
        size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
        bgr = np.asarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), np.uint8)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {frame.width}x{frame.height} picture as JPEG")
    return Preview(bytes(buffer), int(bgr.shape[1]), int(bgr.shape[0]), scale)
