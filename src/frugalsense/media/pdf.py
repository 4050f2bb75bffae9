"""PDF documents: one RGB frame per page, rendered with pdfium at ``settings.pdf_dpi``.

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

import threading

import numpy as np
import pypdfium2 as pdfium

from frugalsense.errors import CorruptInputError, FrugalsenseError, InputTooLargeError, UnsupportedFormatError
from frugalsense.media.image import check_pixels
from frugalsense.media.types import Frame
from frugalsense.settings import Settings

__all__ = ["decode_pdf"]

#: PDF canvas units per inch.
_POINTS_PER_INCH = 72.0

# pdfium keeps global state and is not thread-safe; the HTTP server may decode from several threads at once.
_pdfium_lock = threading.Lock()


def decode_pdf(data: bytes, settings: Settings) -> list[Frame]:
    """Render every page (1-based ``Frame.page``), refusing documents over ``settings.max_pdf_pages``."""
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(data)
        except Exception as exc:
            raise _translate(exc, "the PDF") from exc
        try:
            return _render_pages(document, settings)
        finally:
            document.close()


def _render_pages(document: pdfium.PdfDocument, settings: Settings) -> list[Frame]:
    """Check the page count, then render page by page so only one bitmap is alive at a time."""
    count = len(document)
    if count == 0:
        raise CorruptInputError("the PDF has no pages; the file may be truncated or damaged")
    if count > settings.max_pdf_pages:
        raise InputTooLargeError(
            f"the PDF has {count} pages, over the limit of {settings.max_pdf_pages} "
            "(FRUGALSENSE_MAX_PDF_PAGES); split it or raise the limit"
        )
    scale = settings.pdf_dpi / _POINTS_PER_INCH
    frames = []
    for index in range(count):
        label = f"page {index + 1} of the PDF"
        try:
            page = document[index]
        except Exception as exc:
            raise _translate(exc, label) from exc
        try:
            width, height = page.get_size()
            # Checked before rendering: a page can declare a huge media box and pdfium would allocate it.
            check_pixels(
                round(width * scale), round(height * scale), settings, f"{label} at {settings.pdf_dpi} dpi"
            )
            bitmap = page.render(scale=scale, rev_byteorder=True)
            try:
                # The bitmap rows may be padded; copying gives a compact array that outlives pdfium's buffer.
                pixels = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8, copy=True)
            finally:
                bitmap.close()
        except Exception as exc:
            raise _translate(exc, label) from exc
        finally:
            page.close()
        pixels.flags.writeable = False  # the same contract as decoded pictures: frames are shared, not edited
        frames.append(Frame(pixels=pixels, page=index + 1))
    return frames


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
