"""Audio/video containers: RGB frames sampled every ``settings.video_frame_interval_s``, plus the audio track.

The frames to sample are chosen from the packets' timestamps before any is decoded, so their count and the pixels
they add up to are checked first; each frame is then decoded when it is used (see `LazyFrames`).

    from frugalsense.media import load
    from frugalsense.settings import Settings
    clip = load("talk.mp4", Settings(video_frame_interval_s=5))
    clip.kind, [f.time_s for f in clip.frames][:3], clip.audio.duration_s
    # ('video', [0.0, 5.0, 10.0], 612.4)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import av
import av.container
import numpy as np
import numpy.typing as npt

from frugalsense.budget import release_with, reserve_picture
from frugalsense.errors import CorruptInputError
from frugalsense.media.audio import decode_audio_track, open_container, translate_av_error
from frugalsense.media.frames import LazyFrames
from frugalsense.media.image import check_pixels, check_request_pixels
from frugalsense.media.sniff import Sniffed
from frugalsense.media.types import AudioClip, Frame, MediaKind
from frugalsense.settings import Settings

__all__ = ["AVResult", "decode_av"]

# Frame times are rounded floats; a frame this close before a sampling point counts as on it.
_TIME_SLACK_S = 1e-3


@dataclass(frozen=True)
class AVResult:
    """What an audio/video container held: its kind, MIME type, sampled frames and audio track."""

    kind: MediaKind
    mime: str
    frames: Sequence[Frame] = field(default_factory=list)
    audio: AudioClip | None = None


def decode_av(data: bytes, sniffed: Sniffed, settings: Settings, *, first_only: bool = False) -> AVResult:
    """Decode a container: "video" when it has a real video stream (cover art does not count), else "audio".

    Frames come back undecoded (`LazyFrames`); the audio track is decoded now, its declared length checked
    first. `first_only` plans the first frame alone and leaves the audio out.
    """
    with open_container(data, sniffed) as container:
        video = next((s for s in container.streams.video if not _is_cover_art(s)), None)
        has_audio = bool(container.streams.audio)
        frames = _plan_frames(container, video, data, sniffed, settings, first_only) if video else None
    if frames is None and not has_audio:
        raise CorruptInputError(
            f"the {sniffed.label} file holds no audio or video stream; the file may be truncated or damaged"
        )
    # The audio gets its own pass: it must be read to the end, frames are read only as far as they are used.
    audio = decode_audio_track(data, sniffed, settings) if has_audio and not first_only else None
    if frames is not None:
        return AVResult("video", sniffed.mime, frames, audio)
    return AVResult("audio", sniffed.audio_mime or sniffed.mime, [], audio)


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    """MP3, M4A and FLAC files carry album art as a one-picture "video" stream."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


@dataclass(frozen=True)
class _Sample:
    """One frame to sample: its place in presentation order, its timestamp if the file gives them all, its time."""

    order: int
    pts: int | None
    time_s: float


def _plan_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    data: bytes,
    sniffed: Sniffed,
    settings: Settings,
    first_only: bool,
) -> LazyFrames:
    """Choose the frames to sample from the packets alone and check their pixels against both limits."""
    label = f"the video of the {sniffed.label} file"
    width, height = stream.codec_context.width, stream.codec_context.height
    if width and height:
        check_pixels(width, height, settings, f"a frame of {label}")
    limit = 1 if first_only else settings.max_video_frames
    samples, start_s = _choose_samples(container, stream, settings, limit, label)
    if not samples:
        raise CorruptInputError(f"no frame could be decoded from {label}; the file may be truncated or damaged")
    width, height = scaled_size(width, height, settings.video_max_side)
    what = f"the {len(samples)} sampled frame{'s' if len(samples) > 1 else ''} of {label}"
    check_request_pixels(width * height * len(samples), settings, what)
    reader = _VideoFrames(data, sniffed, settings, stream.index, samples, start_s)
    return LazyFrames(reader, [(width, height)] * len(samples))


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size a sampled frame is kept at: its longer side at most `max_side`, the aspect ratio kept.

    >>> scaled_size(3840, 2160, 1280), scaled_size(640, 480, 1280)
    ((1280, 720), (640, 480))
    """
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def _choose_samples(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    settings: Settings,
    limit: int,
    label: str,
) -> tuple[list[_Sample], float]:
    """The first frame at or after each multiple of the sampling interval, from the packet timestamps."""
    count, timestamps, exact = _packet_timestamps(container, stream, label)
    if timestamps is None or stream.time_base is None:
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        # No timestamps to go by: the nominal frame rate.
        times: npt.NDArray[np.float64] = np.arange(count, dtype=np.float64) / rate
        exact = False
    else:
        timestamps.sort()  # decoding order to presentation order
        times = timestamps.astype(np.float64) * float(stream.time_base)
    # Times count from the start of the container, so they line up with the audio track.
    start_s = container.start_time / av.time_base if container.start_time is not None else None
    if start_s is None:
        start_s = float(times[0]) if len(times) else 0.0
    positions = np.maximum(times - start_s, 0.0)
    samples: list[_Sample] = []
    next_s, interval = 0.0, settings.video_frame_interval_s
    while len(samples) < limit:
        order = int(np.searchsorted(positions, next_s - _TIME_SLACK_S, side="left"))
        if order >= len(positions):
            break
        position = float(positions[order])
        pts = int(timestamps[order]) if exact and timestamps is not None else None
        samples.append(_Sample(order, pts, position))
        next_s = (math.floor((position + _TIME_SLACK_S) / interval) + 1) * interval
    return samples, start_s


def _packet_timestamps(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, label: str
) -> tuple[int, npt.NDArray[np.int64] | None, bool]:
    """How many frames there are and their presentation timestamps (exact: True), else their decoding timestamps
    (False), from the packets alone; None when the packets do not all carry one or the other."""
    pts: list[int | None] = []
    dts: list[int | None] = []
    try:
        for packet in container.demux(stream):
            if packet.size:  # the empty packet at the end only flushes the decoder
                pts.append(packet.pts)
                dts.append(packet.dts)
    except Exception as exc:
        raise translate_av_error(exc, label) from exc
    if None not in pts:
        return len(pts), np.asarray(pts, np.int64), True
    if None not in dts:
        return len(dts), np.asarray(dts, np.int64), False
    return len(pts), None, False


class _VideoFrames:
    """Decodes a video's sampled frames on demand (see `LazyFrames`): in one pass when iterated, by seeking to
    the keyframe before a frame when one is indexed."""

    def __init__(
        self,
        data: bytes,
        sniffed: Sniffed,
        settings: Settings,
        stream_index: int,
        samples: list[_Sample],
        start_s: float,
    ) -> None:
        self._data, self._sniffed, self._settings = data, sniffed, settings
        self._stream_index = stream_index
        self._samples = samples
        self._start_s = start_s
        self._label = f"the video of the {sniffed.label} file"

    def read(self, index: int) -> Frame:
        sample = self._samples[index]
        if index > 0 and sample.pts is not None:
            found = self._read_after_seek(sample)
            if found is not None:
                return found
        return next(self.read_all(range(index, index + 1)))

    def read_all(self, indices: range) -> Iterator[Frame]:
        wanted = iter([self._samples[i] for i in indices])
        target = next(wanted, None)
        with open_container(self._data, self._sniffed) as container:
            stream = self._stream(container)
            try:
                for order, decoded in enumerate(container.decode(stream)):
                    while target is not None and _reached(target, decoded, order):
                        frame = self._frame(decoded, target)
                        yield frame
                        del frame  # released before the next frame is decoded
                        target = next(wanted, None)
                    if target is None:
                        return
            except Exception as exc:
                raise translate_av_error(exc, self._label) from exc
        if target is not None:
            raise CorruptInputError(
                f"the frame at {target.time_s:.2f} s of {self._label} could not be decoded; "
                "the file may be truncated or damaged"
            )

    def _read_after_seek(self, sample: _Sample) -> Frame | None:
        """The sampled frame, decoded from the keyframe before it; None when seeking does not land before it."""
        assert sample.pts is not None
        with open_container(self._data, self._sniffed) as container:
            stream = self._stream(container)
            try:
                container.seek(sample.pts, stream=stream, backward=True, any_frame=False)
                for decoded in container.decode(stream):
                    if decoded.pts is None or decoded.pts > sample.pts:
                        return None  # landed past the frame (or cannot tell): decode from the start instead
                    if decoded.pts == sample.pts:
                        return self._frame(decoded, sample)
            except Exception as exc:
                raise translate_av_error(exc, self._label) from exc
        return None

    def _stream(self, container: av.container.InputContainer) -> av.video.stream.VideoStream:
        stream = next(s for s in container.streams.video if s.index == self._stream_index)
        # Decoded in the calling thread: its CPU clock (the receipt's "decode" stage) then sees the work and the
        # request's CPU budget can stop it, and frame threads would each hold a frame in flight.
        stream.codec_context.thread_count = 1
        return stream

    def _frame(self, decoded: av.VideoFrame, sample: _Sample) -> Frame:
        """Check a decoded frame's real size (a stream may change size midway) and convert it."""
        check_pixels(decoded.width, decoded.height, self._settings, f"a frame of {self._label}")
        width, height = scaled_size(decoded.width, decoded.height, self._settings.video_max_side)
        what = f"the {len(self._samples)} sampled frames of {self._label} at {width}x{height}"
        check_request_pixels(width * height * len(self._samples), self._settings, what)
        position = sample.time_s if decoded.time is None else max(decoded.time - self._start_s, 0.0)
        # The decoder already holds the full frame; what is reserved is the sampled copy the request works on.
        release = reserve_picture(width, height, f"a frame of {self._label}")
        try:
            pixels = _upright_rgb(decoded, width, height)
        except BaseException:
            release()
            raise
        release_with(pixels, release)
        return Frame(pixels=pixels, time_s=round(position, 3))


def _reached(sample: _Sample, frame: av.VideoFrame, order: int) -> bool:
    """Whether a decoded frame (the `order`-th in presentation order) is the sample or the first one after it."""
    if sample.pts is not None and frame.pts is not None:
        return bool(frame.pts >= sample.pts)
    return order >= sample.order


def _upright_rgb(frame: av.VideoFrame, width: int, height: int) -> npt.NDArray[np.uint8]:
    """RGB pixels at `width` x `height`, turned as the file's display matrix asks (phones store portrait video
    sideways)."""
    pixels = frame.to_ndarray(format="rgb24", width=width, height=height)
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if quarter_turns:
        pixels = np.rot90(pixels, k=quarter_turns)  # both count counterclockwise
    upright = np.ascontiguousarray(pixels, dtype=np.uint8)
    upright.flags.writeable = False  # the same contract as decoded pictures: frames are shared, not edited
    return upright
