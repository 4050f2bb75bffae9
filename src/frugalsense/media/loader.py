"""The one door every input comes through: size limits, format sniffing, decoding, typed errors.

>>> import io
>>> from PIL import Image
>>> from frugalsense.media import load
>>> from frugalsense.settings import Settings
>>> buf = io.BytesIO()
>>> Image.new("RGB", (8, 6), "red").save(buf, format="PNG")
>>> decoded = load(buf.getvalue(), Settings(data_dir="/tmp/fs-demo"), name="red.png")
>>> decoded.kind, decoded.mime, decoded.frames[0].pixels.shape
('image', 'image/png', (6, 8, 3))
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from frugalsense.errors import (
    CorruptInputError,
    EmptyInputError,
    FrugalsenseError,
    InputTooLargeError,
    InvalidRequestError,
    UnsupportedFormatError,
)
from frugalsense.media.image import decode_image, decode_pages
from frugalsense.media.pdf import decode_pdf
from frugalsense.media.sniff import SUPPORTED_FORMATS, Sniffed, describe_unknown, sniff
from frugalsense.media.types import AudioClip, Decoded, Frame, MediaKind
from frugalsense.media.video import decode_av
from frugalsense.settings import Settings

__all__ = ["load", "load_image_bytes"]

_DEFAULT_NAME = "upload"

_T = TypeVar("_T")


def load(
    source: str | os.PathLike[str] | bytes,
    settings: Settings,
    *,
    name: str | None = None,
    first_only: bool = False,
) -> Decoded:
    """Decode a file path or raw bytes into frames and/or audio, whatever the format.

    The kind comes from the content, never from the name: a picture gives one frame, a PDF (or multi-page TIFF)
    one frame per page, audio an ``AudioClip``, video sampled frames plus its audio track. Pages and video
    frames are decoded as they are used (`LazyFrames`), after their sizes and count were checked against
    ``settings.max_image_pixels`` and, summed, ``settings.max_request_pixels``. `first_only` is for callers that
    use the first picture alone (a face to compare, a picture to search by): only the first page or frame is
    planned and no audio is decoded. Every problem raises a subclass of ``frugalsense.errors.InputError``.

        >>> from frugalsense.media import load
        >>> from frugalsense.settings import Settings
        >>> load(b"just some text", Settings(data_dir="/tmp/fs-demo"), name="photo.jpg")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        frugalsense.errors.UnsupportedFormatError: photo.jpg is plain text, ...
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), settings, name or "the input")
        label = name or _DEFAULT_NAME
    else:
        path = Path(os.fspath(source))
        data = _read_path(path, settings)
        label = name or path.name or _DEFAULT_NAME
    return _decode(data, settings, label, first_only)


def load_image_bytes(data: bytes, settings: Settings) -> Frame:
    """Decode bytes that must be a single picture (the first page of a multi-page TIFF) into an RGB frame.

    >>> import io
    >>> from PIL import Image
    >>> from frugalsense.media import load_image_bytes
    >>> from frugalsense.settings import Settings
    >>> buf = io.BytesIO()
    >>> Image.new("L", (5, 4), 128).save(buf, format="JPEG")
    >>> load_image_bytes(buf.getvalue(), Settings(data_dir="/tmp/fs-demo")).pixels.shape
    (4, 5, 3)
    """
    _check_size(len(data), settings, "the picture")
    sniffed = _sniff_or_raise(data, "the picture")
    if sniffed.family != "image":
        raise UnsupportedFormatError(
            f"expected a picture but got {sniffed.label} content; send a JPEG, PNG, WebP, BMP, TIFF, GIF, "
            "HEIC or AVIF picture"
        )
    return _guarded(lambda: decode_image(data, sniffed, settings), "the picture", sniffed)


def _read_path(path: Path, settings: Settings) -> bytes:
    """Read a file, checking its size before reading so an oversized file is never loaded."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InvalidRequestError(f"no such file: {path}; check the path") from None
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path} ({exc.strerror or exc}); check the path") from exc
    if stat.S_ISDIR(info.st_mode):
        raise InvalidRequestError(f"{path} is a folder, not a file; pass one file")
    if not stat.S_ISREG(info.st_mode):
        # Pipes and devices have no size to check and could block or never end.
        raise InvalidRequestError(f"{path} is not a regular file; save the data to a file first")
    _check_size(info.st_size, settings, str(path))
    try:
        with path.open("rb") as handle:
            # One byte past the limit tells a file that grew since stat() from one that fits exactly.
            data = handle.read(settings.max_upload_bytes + 1)
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from exc
    _check_size(len(data), settings, str(path))
    return data


def _check_size(size: int, settings: Settings, what: str) -> None:
    """Refuse empty input and input over ``settings.max_upload_bytes``."""
    if size == 0:
        raise EmptyInputError(f"{what} is empty (0 bytes); send the file's contents")
    if size > settings.max_upload_bytes:
        raise InputTooLargeError(
            f"{what} is {size:,} bytes, over the limit of {settings.max_upload_bytes:,} bytes "
            "(FRUGALSENSE_MAX_UPLOAD_BYTES); send a smaller file or raise the limit"
        )


def _sniff_or_raise(data: bytes, label: str) -> Sniffed:
    """The sniffed format, or an error that says what the bytes look like and what is supported."""
    sniffed = sniff(data)
    if sniffed is None:
        raise UnsupportedFormatError(
            f"{label} is {describe_unknown(data)}; supported formats: {SUPPORTED_FORMATS}"
        )
    return sniffed


def _decode(data: bytes, settings: Settings, label: str, first_only: bool) -> Decoded:
    """Dispatch to the decoder the magic bytes name and wrap the result with its hash and size."""
    sniffed = _sniff_or_raise(data, label)
    kind: MediaKind
    mime = sniffed.mime
    audio: AudioClip | None = None
    frames: Sequence[Frame]
    if sniffed.family == "image":
        frames, pages = _guarded(
            lambda: decode_pages(data, sniffed, settings, first_only=first_only), label, sniffed
        )
        kind = "document" if pages > 1 else "image"
    elif sniffed.family == "pdf":
        frames = _guarded(lambda: decode_pdf(data, settings, first_only=first_only), label, sniffed)
        kind = "document"
    else:
        result = _guarded(lambda: decode_av(data, sniffed, settings, first_only=first_only), label, sniffed)
        kind, mime, frames, audio = result.kind, result.mime, result.frames, result.audio
    return Decoded(
        kind=kind,
        name=label,
        mime=mime,
        frames=frames,
        audio=audio,
        sha256=hashlib.sha256(data).hexdigest(),
        byte_size=len(data),
    )


def _guarded(work: Callable[[], _T], label: str, sniffed: Sniffed) -> _T:
    """Run a decoder; whatever it failed to translate still leaves as one of our errors, never a library's."""
    try:
        return work()
    except FrugalsenseError:
        raise
    except MemoryError as exc:
        raise InputTooLargeError(
            f"{label} needs more memory to decode than is available; send a smaller file"
        ) from exc
    except Exception as exc:
        raise CorruptInputError(
            f"{label} ({sniffed.label}) could not be decoded ({type(exc).__name__}: {exc}); "
            "the file may be truncated or damaged"
        ) from exc
