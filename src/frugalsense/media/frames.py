"""Pages and video frames decoded on demand, one at a time, so a long input never holds all its pictures at once.

A decoder checks sizes and counts from the file's headers and hands back a `LazyFrames`: its length and every
picture's size are known before a pixel is decoded; iterating decodes the pictures in order, each one released
before the next is made; indexing decodes one picture (the last one indexed is kept, so ``frames[0]`` twice costs
one decode).

>>> import io
>>> from PIL import Image
>>> from frugalsense.media import load
>>> from frugalsense.settings import Settings
>>> pages = [Image.new("RGB", (72, 36 + 36 * i), "white") for i in range(3)]
>>> buf = io.BytesIO()
>>> pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=72)
>>> frames = load(buf.getvalue(), Settings(data_dir="/tmp/fs-demo", pdf_dpi=72)).frames
>>> len(frames), frames.pixels, frames.size(2)
(3, 15552, (72, 108))
>>> [f.height for f in frames], frames[1].page
([36, 72, 108], 2)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, overload

from frugalsense.media.types import Frame

__all__ = ["FrameReader", "LazyFrames"]


class FrameReader(Protocol):
    """Decodes the pictures of one input on demand (a PDF's pages, a TIFF's pages, a video's sampled frames)."""

    def read(self, index: int) -> Frame:
        """The picture at `index`, decoded now."""
        ...

    def read_all(self, indices: range) -> Iterator[Frame]:
        """The pictures at `indices` (increasing), decoded in order from one opened file, one alive at a time."""
        ...


class LazyFrames(Sequence[Frame]):
    """A sequence of pictures whose pixels are decoded only when a picture is taken from it."""

    def __init__(
        self, reader: FrameReader, sizes: Sequence[tuple[int, int]], indices: range | None = None
    ) -> None:
        self._reader = reader
        self._sizes = sizes
        self._indices = indices if indices is not None else range(len(sizes))
        self._last: tuple[int, Frame] | None = None

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> LazyFrames: ...

    def __getitem__(self, index: int | slice) -> Frame | LazyFrames:
        if isinstance(index, slice):
            return LazyFrames(self._reader, self._sizes, self._indices[index])
        position = self._indices[index]  # raises IndexError as a list would
        last = self._last
        if last is not None and last[0] == position:
            return last[1]
        self._last = None  # let the previous picture go before the next one is made
        frame = self._reader.read(position)
        self._last = (position, frame)
        return frame

    def __iter__(self) -> Iterator[Frame]:
        if self._indices.step > 0:
            return self._reader.read_all(self._indices)
        return (self._reader.read(position) for position in self._indices)

    def size(self, index: int) -> tuple[int, int]:
        """(width, height) of a picture, as its header states, without decoding it."""
        return self._sizes[self._indices[index]]

    @property
    def pixels(self) -> int:
        """Pixels all these pictures decode to, from their headers."""
        return sum(w * h for w, h in (self._sizes[i] for i in self._indices))

    def __repr__(self) -> str:
        return f"LazyFrames({len(self)} pictures, {self.pixels:,} pixels, decoded on demand)"
