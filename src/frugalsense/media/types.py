"""Decoded media, as every model sees it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

#: what a caller may hand in: a path, or the file's bytes
Source = str | os.PathLike[str] | bytes

__all__ = ["AudioClip", "Decoded", "Frame", "MediaKind", "Source"]

MediaKind = Literal["image", "document", "audio", "video"]

#: Every model that takes audio expects this rate.
AUDIO_RATE = 16_000


@dataclass(frozen=True)
class Frame:
    """One picture: a photo, a PDF page or a video frame, as RGB uint8 of shape (height, width, 3)."""

    pixels: npt.NDArray[np.uint8]
    page: int | None = None  # 1-based page number for documents
    time_s: float | None = None  # position in a video

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 3 or self.pixels.dtype != np.uint8:
            raise ValueError(f"Frame needs RGB uint8 (H, W, 3), got {self.pixels.dtype} {self.pixels.shape}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def bgr(self) -> npt.NDArray[np.uint8]:
        """The same pixels in OpenCV's channel order (a contiguous copy)."""
        return np.ascontiguousarray(self.pixels[:, :, ::-1])


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples in [-1, 1] at 16 kHz."""

    samples: npt.NDArray[np.float32]
    sample_rate: int = AUDIO_RATE

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError(f"AudioClip needs mono float32, got {self.samples.dtype} {self.samples.shape}")

    @property
    def duration_s(self) -> float:
        return float(len(self.samples)) / self.sample_rate


@dataclass(frozen=True)
class Decoded:
    """What one input turned into: frames (photo, pages, video frames) and/or an audio track.

    Pages and video frames are decoded when they are used, one at a time (`frugalsense.media.LazyFrames`): iterate
    once rather than indexing page by page, and keep no more of them than the step at hand needs.
    """

    kind: MediaKind
    name: str
    mime: str
    frames: Sequence[Frame] = field(default_factory=list)
    audio: AudioClip | None = None
    sha256: str = ""
    byte_size: int = 0
