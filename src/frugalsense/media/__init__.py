"""Decode every input safely: pictures, PDF pages, audio and video, all into ``Decoded`` frames and audio.

>>> import io
>>> from PIL import Image
>>> from frugalsense.media import load
>>> from frugalsense.settings import Settings
>>> buf = io.BytesIO()
>>> Image.new("RGB", (8, 6), "blue").save(buf, format="JPEG")
>>> decoded = load(buf.getvalue(), Settings(data_dir="/tmp/fs-demo"))
>>> decoded.kind, decoded.name, decoded.frames[0].width, decoded.frames[0].height
('image', 'upload', 8, 6)
"""

from __future__ import annotations

from frugalsense.media.frames import LazyFrames
from frugalsense.media.loader import load, load_image_bytes
from frugalsense.media.sniff import SUPPORTED_FORMATS
from frugalsense.media.types import AUDIO_RATE, AudioClip, Decoded, Frame, MediaKind

__all__ = [
    "AUDIO_RATE",
    "SUPPORTED_FORMATS",
    "AudioClip",
    "Decoded",
    "Frame",
    "LazyFrames",
    "MediaKind",
    "load",
    "load_image_bytes",
]
