"""Audio tracks: decoded with PyAV (FFmpeg) and resampled to mono float32 at 16 kHz.

>>> import io, wave
>>> from frugalsense.media.audio import decode_audio
>>> from frugalsense.media.sniff import sniff
>>> from frugalsense.settings import Settings
>>> buf = io.BytesIO()
>>> with wave.open(buf, "wb") as w:
...     w.setnchannels(2); w.setsampwidth(2); w.setframerate(44_100); w.writeframes(bytes(4 * 44_100))
>>> data = buf.getvalue()
>>> clip = decode_audio(data, sniff(data), Settings(data_dir="/tmp/fs-demo"))
>>> clip.sample_rate, round(clip.duration_s, 2)
(16000, 1.0)
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import av
import av.container
import numpy as np
import numpy.typing as npt

from frugalsense.errors import CorruptInputError, FrugalsenseError, InputTooLargeError
from frugalsense.media.sniff import Sniffed
from frugalsense.media.types import AUDIO_RATE, AudioClip
from frugalsense.settings import Settings

__all__ = ["decode_audio", "decode_audio_track", "open_container", "translate_av_error"]


def _refuse_nested_open(url: str, flags: int, options: dict[str, Any]) -> Any:
    """Never let a demuxer open another file or URL (HLS playlists or concat lists hidden inside an upload)."""
    raise PermissionError(f"refusing to open {url!r} referenced from inside an upload")


@contextmanager
def open_container(data: bytes, sniffed: Sniffed) -> Iterator[av.container.InputContainer]:
    """Open in-memory bytes with the demuxer the magic bytes named, so FFmpeg cannot re-guess the format."""
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            format=sniffed.decoder,
            metadata_errors="replace",
            io_open=_refuse_nested_open,
        )
    except Exception as exc:
        raise translate_av_error(exc, f"the {sniffed.label} file") from exc
    try:
        yield container
    finally:
        container.close()


def decode_audio(data: bytes, sniffed: Sniffed, settings: Settings) -> AudioClip:
    """The first audio track of an audio file; a file without one is an error."""
    clip = decode_audio_track(data, sniffed, settings)
    if clip is None:
        raise CorruptInputError(f"the {sniffed.label} file has no audio track; check that it is an audio file")
    return clip


def decode_audio_track(data: bytes, sniffed: Sniffed, settings: Settings) -> AudioClip | None:
    """The first audio track as mono 16 kHz float32, or None when the container has no audio stream."""
    label = f"the audio of the {sniffed.label} file"
    with open_container(data, sniffed) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        limit_s = settings.max_audio_seconds
        declared = _declared_seconds(container, stream)
        if declared is not None and declared > limit_s:
            raise _too_long(label, declared, settings)
        max_samples = int(limit_s * AUDIO_RATE)
        guess = int(declared * AUDIO_RATE) + AUDIO_RATE if declared is not None else 60 * AUDIO_RATE
        buffer = _SampleBuffer(min(guess, max_samples + AUDIO_RATE))
        try:
            # Without a ceiling FFmpeg downmixes float audio as L*0.71 + R*0.71, so loud stereo would clip.
            resampler = av.AudioResampler(
                format="flt", layout="mono", rate=AUDIO_RATE, options={"rematrix_maxval": "1.0"}
            )
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    buffer.append(out.to_ndarray()[0])
                # Checked while decoding: a declared duration can be missing or lie.
                if buffer.size > max_samples:
                    raise _too_long(label, None, settings)
            for out in resampler.resample(None):
                buffer.append(out.to_ndarray()[0])
        except Exception as exc:
            raise translate_av_error(exc, label) from exc
    if buffer.size > max_samples:
        raise _too_long(label, None, settings)
    if buffer.size == 0:
        raise CorruptInputError(f"no sound could be decoded from {label}; the file may be truncated or damaged")
    samples = buffer.result()
    np.clip(samples, -1.0, 1.0, out=samples)  # resampling filters can overshoot full scale slightly
    return AudioClip(samples=samples)


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The duration the file claims, from the stream or else the container, or None when it does not say."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _too_long(label: str, seconds: float | None, settings: Settings) -> InputTooLargeError:
    """The error for audio over ``settings.max_audio_seconds``."""
    length = f" ({seconds:,.0f} s)" if seconds is not None else ""
    return InputTooLargeError(
        f"{label} is longer{length} than the limit of {settings.max_audio_seconds:,.0f} s "
        "(FRUGALSENSE_MAX_AUDIO_SECONDS); cut it into parts or raise the limit"
    )


def translate_av_error(exc: Exception, label: str) -> FrugalsenseError:
    """Map PyAV/FFmpeg errors to our error tree, keeping FFmpeg's reason in the message."""
    if isinstance(exc, FrugalsenseError):
        return exc
    if isinstance(exc, MemoryError):
        return InputTooLargeError(f"{label} needs more memory than is available; send a shorter file")
    reason = str(exc) or type(exc).__name__
    return CorruptInputError(f"{label} could not be decoded ({reason}); the file may be truncated or damaged")


class _SampleBuffer:
    """A growing float32 array, so hours of audio are not held twice (chunk list plus concatenation)."""

    def __init__(self, capacity: int) -> None:
        self._data: npt.NDArray[np.float32] = np.empty(max(capacity, AUDIO_RATE), dtype=np.float32)
        self.size = 0

    def append(self, chunk: npt.NDArray[Any]) -> None:
        """Add samples, growing by half again when full."""
        end = self.size + len(chunk)
        if end > len(self._data):
            grown = np.empty(max(end, len(self._data) * 3 // 2), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = chunk
        self.size = end

    def result(self) -> npt.NDArray[np.float32]:
        """The samples; copied only when the spare capacity is large enough to be worth freeing."""
        used = self._data[: self.size]
        return used.copy() if len(self._data) - self.size > self.size // 8 else used
