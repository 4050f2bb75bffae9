"""PDF documents: one RGB frame per page, rendered with pdfium at ``settings.pdf_dpi`` when the page is used.

>>> import io
>>> from PIL import Image
>>> from frugalsense.media.pdf import decode_pdf
>>> from frugalsense.settings import Settings
>>> buf = io.BytesIO()
>>> Image.new("RGB", (72, 36), "white").save(buf, format="PDF", resolution=72)
>>> pages = decode_pdf(buf.getvalue(), Settings(data_dir="/tmp/fs-demo", pdf_dpi=144))
>>> [(p.page, p.width, p.height) for p in pages]
[(1, 144, 72)]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import cv2
import numpy as np
import pypdfium2 as pdfium

from frugalsense.budget import release_with, reserve_picture
from frugalsense.errors import CorruptInputError, FrugalsenseError, InputTooLargeError, UnsupportedFormatError
from frugalsense.media.frames import LazyFrames
from frugalsense.media.image import check_pixels, check_request_pixels
from frugalsense.media.types import Frame
from frugalsense.settings import Settings

__all__ = ["decode_pdf"]

#: PDF canvas units per inch.
_POINTS_PER_INCH = 72.0

# pdfium keeps global state and is not thread-safe; the HTTP server may decode from several threads at once.
# Re-entrant: a page generator dropped half-way closes its document from whatever runs the garbage collector.
_pdfium_lock = threading.RLock()


def decode_pdf(data: bytes, settings: Settings, *, first_only: bool = False) -> LazyFrames:
    """The pages (1-based ``Frame.page``), rendered one at a time as they are used.

    The page count (``settings.max_pdf_pages``), each page's pixels at ``settings.pdf_dpi``
    (``settings.max_image_pixels``) and their sum (``settings.max_request_pixels``) are checked from the page
    sizes the document states, before any page is rendered. `first_only` keeps only the first page.
    """
    with _pdfium_lock:
        document = _open(data)
        try:
            sizes = _page_sizes(document, settings, 1 if first_only else None)
        finally:
            document.close()
    pages = "the first page of the PDF" if first_only else f"the {len(sizes)} pages of the PDF"
    check_request_pixels(sum(w * h for w, h in sizes), settings, f"{pages} at {settings.pdf_dpi} dpi")
    return LazyFrames(_PdfPages(data, settings.pdf_dpi / _POINTS_PER_INCH, sizes), sizes)


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except Exception as exc:
        raise _translate(exc, "the PDF") from exc


def _page_sizes(document: pdfium.PdfDocument, settings: Settings, limit: int | None) -> list[tuple[int, int]]:
    """Check the page count, then each page's size in pixels as rendered, from the page boxes alone."""
    count = len(document)
    if count == 0:
        raise CorruptInputError("the PDF has no pages; the file may be truncated or damaged")
    if count > settings.max_pdf_pages:
        raise InputTooLargeError(
            f"the PDF has {count} pages, over the limit of {settings.max_pdf_pages} "
            "(FRUGALSENSE_MAX_PDF_PAGES); split it or raise the limit"
        )
    scale = settings.pdf_dpi / _POINTS_PER_INCH
    sizes = []
    for index in range(count if limit is None else min(limit, count)):
        label = f"page {index + 1} of the PDF"
        try:
            width, height = document.get_page_size(index)
        except Exception as exc:
            raise _translate(exc, label) from exc
        # Checked before rendering: a page can declare a huge media box and pdfium would allocate it.
        size = (math.ceil(width * scale), math.ceil(height * scale))  # as pdfium sizes its bitmap
        check_pixels(*size, settings, f"{label} at {settings.pdf_dpi} dpi")
        sizes.append(size)
    return sizes


class _PdfPages:
    """Renders the pages of one PDF on demand (see `LazyFrames`); pdfium is only touched under its lock."""

    def __init__(self, data: bytes, scale: float, sizes: list[tuple[int, int]]) -> None:
        self._data, self._scale, self._sizes = data, scale, sizes

    def read(self, index: int) -> Frame:
        return next(self.read_all(range(index, index + 1)))

    def read_all(self, indices: range) -> Iterator[Frame]:
        with _pdfium_lock:
            document = _open(self._data)
        try:
            for index in indices:
                # The page's memory is reserved before pdfium's lock is taken: waiting for it holds no one up.
                release = reserve_picture(*self._sizes[index], f"page {index + 1} of the PDF")
                try:
                    with _pdfium_lock:
                        frame = _render(document, index, self._scale)
                except BaseException:
                    release()
                    raise
                release_with(frame.pixels, release)
                yield frame
                del frame  # released before the next page is rendered
        finally:
            with _pdfium_lock:
                document.close()


def _render(document: pdfium.PdfDocument, index: int, scale: float) -> Frame:
    """Render one page to a compact, read-only RGB frame."""
    label = f"page {index + 1} of the PDF"
    try:
        page = document[index]
    except Exception as exc:
        raise _translate(exc, label) from exc
    try:
        # pdfium allocates the bitmap (BGRx or BGR rows, possibly padded): the default, a zero-filled ctypes
        # buffer, is filled while holding the interpreter lock, ~0.1 s for a 60 Mpx page.
        bitmap = page.render(scale=scale, bitmap_maker=pdfium.PdfBitmap.new_foreign)
        try:
            # OpenCV copies it to a compact RGB array that outlives pdfium's buffer, without holding the
            # interpreter lock: a numpy copy of a 60 Mpx page would stall every other request for ~0.1 s.
            raw = bitmap.to_numpy()
            code = cv2.COLOR_BGRA2RGB if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
            pixels = np.asarray(cv2.cvtColor(raw, code), dtype=np.uint8)
            del raw
        finally:
            bitmap.warn_on_close = False  # safe: nothing refers to pdfium's buffer any more
            bitmap.close()
    except Exception as exc:
        raise _translate(exc, label) from exc
    finally:
        page.close()
    pixels.flags.writeable = False  # the same contract as decoded pictures: frames are shared, not edited
    return Frame(pixels=pixels, page=index + 1)


def _translate(exc: Exception, label: str) -> FrugalsenseError:
    """Map pdfium's errors to our error tree, keeping its reason in the message."""
    if isinstance(exc, FrugalsenseError):
        return exc
    if isinstance(exc, MemoryError):
        return InputTooLargeError(f"{label} needs more memory than is available; lower FRUGALSENSE_PDF_DPI")
    reason = str(exc) or type(exc).__name__
    if "password" in reason.lower():
        return UnsupportedFormatError(f"{label} is password-protected ({reason}); remove the password and retry")
    return CorruptInputError(f"{label} could not be read ({reason}); the file may be truncated or damaged")
