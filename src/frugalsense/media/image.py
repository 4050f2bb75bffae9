"""Pictures: size checked from the header before any pixel is decoded, EXIF orientation applied, any mode to RGB.

>>> import io
>>> from PIL import Image
>>> from frugalsense.media.image import decode_image
>>> from frugalsense.media.sniff import sniff
>>> from frugalsense.settings import Settings
>>> buf = io.BytesIO()
>>> Image.new("RGBA", (4, 3), (255, 0, 0, 0)).save(buf, format="PNG")
>>> data = buf.getvalue()
>>> frame = decode_image(data, sniff(data), Settings(data_dir="/tmp/fs-demo"))
>>> frame.pixels.shape, frame.pixels[0, 0].tolist()
((3, 4, 3), [255, 255, 255])
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageOps

from frugalsense.budget import release_with, reserve_picture
from frugalsense.errors import CorruptInputError, FrugalsenseError, InputTooLargeError, UnsupportedFormatError
from frugalsense.media.frames import LazyFrames
from frugalsense.media.sniff import Sniffed
from frugalsense.media.types import Frame
from frugalsense.settings import Settings

__all__ = ["check_pixels", "check_request_pixels", "decode_image", "decode_pages"]

_WHITE = (255, 255, 255)
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}

_heif_lock = threading.Lock()
_heif_ready = False


def _register_heif() -> None:
    """Teach Pillow HEIF on first use: importing pillow-heif loads libheif, which most inputs never need."""
    global _heif_ready
    with _heif_lock:
        if not _heif_ready:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_ready = True


def check_pixels(width: int, height: int, settings: Settings, what: str) -> None:
    """Refuse a picture (or page, or video frame) whose pixel count is over ``settings.max_image_pixels``."""
    if width <= 0 or height <= 0:
        raise CorruptInputError(f"{what} claims a size of {width}x{height} pixels; the file is damaged")
    if width * height > settings.max_image_pixels:
        raise InputTooLargeError(
            f"{what} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{settings.max_image_pixels:,} (FRUGALSENSE_MAX_IMAGE_PIXELS); downscale it or raise the limit"
        )


def check_request_pixels(total: int, settings: Settings, what: str) -> None:
    """Refuse an input whose pictures add up to more than ``settings.max_request_pixels``, before decoding any."""
    if total > settings.max_request_pixels:
        raise InputTooLargeError(
            f"{what} would decode to {total:,} pixels, over the request budget of {settings.max_request_pixels:,} "
            "pixels (FRUGALSENSE_MAX_REQUEST_PIXELS); send fewer or smaller pages or frames, or raise the budget"
        )


def decode_image(data: bytes, sniffed: Sniffed, settings: Settings) -> Frame:
    """Decode a picture to one RGB frame: the first page of a TIFF, the first (primary) picture of an animated
    GIF/WebP or a HEIF collection."""
    with _open(data, sniffed, settings) as image:
        return _to_frame(image, sniffed.label, settings, page=None)


def decode_pages(
    data: bytes, sniffed: Sniffed, settings: Settings, *, first_only: bool = False
) -> tuple[Sequence[Frame], int]:
    """The pictures of an image file and how many pages it has: every page of a multi-page TIFF (decoded one at
    a time as they are used, see `LazyFrames`), else one picture. `first_only` keeps only the first page."""
    if sniffed.decoder != "TIFF":
        return [decode_image(data, sniffed, settings)], 1
    with _open(data, sniffed, settings) as image:
        sizes = _tiff_sizes(image, sniffed.label, settings)
        if len(sizes) == 1:
            return [_to_frame(image, sniffed.label, settings, page=None)], 1
    frames = LazyFrames(_TiffPages(data, sniffed, settings), sizes)
    chosen = frames[:1] if first_only else frames
    check_request_pixels(chosen.pixels, settings, f"the {len(chosen)}-page TIFF")
    return chosen, len(sizes)


def _open(data: bytes, sniffed: Sniffed, settings: Settings) -> Image.Image:
    """Open a picture with the decoder the magic bytes named: headers only, no pixels yet."""
    if sniffed.decoder == "HEIF":
        _register_heif()
    try:
        return Image.open(io.BytesIO(data), formats=[sniffed.decoder])
    except Exception as exc:
        raise _translate(exc, sniffed.label, settings) from exc


def _tiff_sizes(image: Image.Image, label: str, settings: Settings) -> list[tuple[int, int]]:
    """Every page's size from its header (no pixels decoded), each checked against the per-picture limit."""
    try:
        count = int(getattr(image, "n_frames", 1))
    except Exception as exc:
        raise _translate(exc, label, settings) from exc
    if count > settings.max_pdf_pages:
        raise InputTooLargeError(
            f"the TIFF has {count} pages, over the limit of {settings.max_pdf_pages} "
            "(FRUGALSENSE_MAX_PDF_PAGES); split it or raise the limit"
        )
    sizes = []
    for index in range(count):
        try:
            image.seek(index)
        except Exception as exc:
            raise _translate(exc, f"{label} page {index + 1}", settings) from exc
        check_pixels(image.width, image.height, settings, f"the {label} page {index + 1} picture")
        sizes.append((image.width, image.height))
    image.seek(0)
    return sizes


class _TiffPages:
    """Reads the pages of one multi-page TIFF on demand (see `LazyFrames`)."""

    def __init__(self, data: bytes, sniffed: Sniffed, settings: Settings) -> None:
        self._data, self._sniffed, self._settings = data, sniffed, settings

    def read(self, index: int) -> Frame:
        return next(self.read_all(range(index, index + 1)))

    def read_all(self, indices: range) -> Iterator[Frame]:
        label = self._sniffed.label
        with _open(self._data, self._sniffed, self._settings) as image:
            for index in indices:
                what = f"{label} page {index + 1}"
                try:
                    image.seek(index)
                except Exception as exc:
                    raise _translate(exc, what, self._settings) from exc
                frame = _to_frame(image, what, self._settings, page=index + 1)
                yield frame
                del frame  # released before the next page is decoded


def _to_frame(image: Image.Image, label: str, settings: Settings, *, page: int | None) -> Frame:
    """Check the header size, then decode, orient and convert one picture; library errors become ours."""
    check_pixels(image.width, image.height, settings, f"the {label} picture")
    check_request_pixels(image.width * image.height, settings, f"the {label} picture")
    release = reserve_picture(image.width, image.height, f"the {label} picture")
    try:
        image.load()
        oriented = image
        if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            oriented = ImageOps.exif_transpose(image)
        pixels = _rgb_pixels(oriented)
    except BaseException as exc:
        release()
        if isinstance(exc, Exception):
            raise _translate(exc, label, settings) from exc
        raise
    release_with(pixels, release)
    return Frame(pixels=pixels, page=page)


def _rgb_pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    """RGB uint8 pixels of any Pillow mode, alpha composited on white so transparent areas do not turn black."""
    if image.mode in _HIGH_DEPTH_MODES:
        return _high_depth_pixels(image)
    rgb = image
    if image.mode != "RGB":
        try:
            if image.has_transparency_data:
                rgba = image.convert("RGBA")
                rgb = Image.new("RGB", image.size, _WHITE)
                rgb.paste(rgba, mask=rgba.getchannel("A"))
                del rgba
            else:
                rgb = image.convert("RGB")
        except ValueError as exc:
            raise UnsupportedFormatError(
                f"pictures in colour mode {image.mode} are not supported ({exc}); save it as RGB and retry"
            ) from exc
    # np.asarray copies once (through bytes) and gives a read-only array, which suits a frozen, shared Frame.
    pixels: npt.NDArray[np.uint8] = np.asarray(rgb, dtype=np.uint8)
    return pixels


def _high_depth_pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    """16-bit, 32-bit and float greyscale scaled to 8 bits; Pillow's own convert clips them to white."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        gray = (values >> 8).astype(np.uint8)
    else:
        floats = np.nan_to_num(values.astype(np.float32))
        low, high = float(floats.min(initial=0.0)), float(floats.max(initial=0.0))
        if image.mode == "F" and low >= 0 and high <= 1:
            floats *= 255
        elif low >= 0 and high <= 255:
            pass
        elif low >= 0 and high <= 65535:
            floats /= 257  # 16-bit data stored as 32-bit ints ("I" mode from older Pillow or TIFF)
        else:
            floats = (floats - low) * (255 / (high - low))
        gray = np.clip(np.rint(floats), 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[:, :, np.newaxis], 3, axis=2)
    rgb.flags.writeable = False
    return rgb


def _translate(exc: Exception, label: str, settings: Settings) -> FrugalsenseError:
    """Map whatever Pillow (or a plugin) raised to our error tree."""
    if isinstance(exc, FrugalsenseError):
        return exc
    if isinstance(exc, Image.DecompressionBombError):
        # Pillow checks its own (process-wide) cap while reading the header, before our check can run.
        return InputTooLargeError(
            f"the {label} picture is too large to decode safely ({exc}); downscale it below "
            f"{settings.max_image_pixels:,} pixels (FRUGALSENSE_MAX_IMAGE_PIXELS)"
        )
    if isinstance(exc, MemoryError):
        return InputTooLargeError(f"the {label} picture needs more memory than is available; downscale it")
    reason = str(exc) or type(exc).__name__
    return CorruptInputError(
        f"the {label} picture could not be decoded ({reason}); the file may be truncated or damaged"
    )
