"""Audio/video containers: sampled RGB frames every ``settings.video_frame_interval_s`` plus the audio track.

>>> from frugalsense.media import load
>>> from frugalsense.settings import Settings
>>> clip = load("talk.mp4", Settings(video_frame_interval_s=5))  # doctest: +SKIP
>>> clip.kind, [f.time_s for f in clip.frames][:3], clip.audio.duration_s  # doctest: +SKIP
('video', [0.0, 5.0, 10.0], 612.4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import av
import av.container
import numpy as np
import numpy.typing as npt

from frugalsense.errors import CorruptInputError
from frugalsense.media.audio import decode_audio_track, open_container, translate_av_error
from frugalsense.media.image import check_pixels
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
    frames: list[Frame] = field(default_factory=list)
    audio: AudioClip | None = None


def decode_av(data: bytes, sniffed: Sniffed, settings: Settings) -> AVResult:
    """Decode a container: "video" when it has a real video stream (cover art does not count), else "audio"."""
    with open_container(data, sniffed) as container:
        video = next((s for s in container.streams.video if not _is_cover_art(s)), None)
        has_audio = bool(container.streams.audio)
        frames = _sample_frames(container, video, sniffed, settings) if video is not None else []
    if not frames and not has_audio:
        raise CorruptInputError(
            f"the {sniffed.label} file holds no audio or video stream; the file may be truncated or damaged"
        )
    # The audio gets its own pass: frame sampling stops early, the audio track must be read to the end.
    audio = decode_audio_track(data, sniffed, settings) if has_audio else None
    if frames:
        return AVResult("video", sniffed.mime, frames, audio)
    if audio is None:
        raise CorruptInputError(f"the {sniffed.label} file has no audio track; check that it is an audio file")
    return AVResult("audio", sniffed.audio_mime or sniffed.mime, [], audio)


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    """MP3, M4A and FLAC files carry album art as a one-picture "video" stream."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _sample_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    sniffed: Sniffed,
    settings: Settings,
) -> list[Frame]:
    """Decode in order and keep the first frame at or after each multiple of the sampling interval."""
    label = f"the video of the {sniffed.label} file"
    width, height = stream.codec_context.width, stream.codec_context.height
    if width and height:
        check_pixels(width, height, settings, f"a frame of {label}")  # before any frame is decoded
    interval = settings.video_frame_interval_s
    # Times count from the start of the container, so they line up with the audio track.
    start_s = container.start_time / av.time_base if container.start_time is not None else None
    frames: list[Frame] = []
    next_s = 0.0
    try:
        stream.thread_type = "AUTO"  # frame threads: most of the cost of a long video is decoding it
        for index, frame in enumerate(container.decode(stream)):
            time_s = frame.time
            if time_s is None:
                rate = float(stream.average_rate) if stream.average_rate else 25.0
                time_s = index / rate
            if start_s is None:
                start_s = time_s
            position = max(time_s - start_s, 0.0)
            if position + _TIME_SLACK_S < next_s:
                continue
            check_pixels(frame.width, frame.height, settings, f"a frame of {label}")
            frames.append(Frame(pixels=_upright_rgb(frame), time_s=round(position, 3)))
            if len(frames) >= settings.max_video_frames:
                break
            next_s = (math.floor((position + _TIME_SLACK_S) / interval) + 1) * interval
    except Exception as exc:
        raise translate_av_error(exc, label) from exc
    if not frames:
        raise CorruptInputError(f"no frame could be decoded from {label}; the file may be truncated or damaged")
    return frames


def _upright_rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """RGB pixels turned as the file's display matrix asks (phones store portrait video sideways)."""
    pixels = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if quarter_turns:
        pixels = np.rot90(pixels, k=quarter_turns)  # both count counterclockwise
    upright = np.ascontiguousarray(pixels, dtype=np.uint8)
    upright.flags.writeable = False  # the same contract as decoded pictures: frames are shared, not edited
    return upright
