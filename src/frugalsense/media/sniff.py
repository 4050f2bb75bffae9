"""Tell what a blob of bytes is from its first bytes (magic numbers), never from its file name.

>>> from frugalsense.media.sniff import sniff
>>> sniff(b"%PDF-1.7\\n...").mime
'application/pdf'
>>> sniff(b"hello") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SUPPORTED_FORMATS", "Sniffed", "describe_unknown", "sniff"]

#: Human-readable list used in every "unsupported format" message.
SUPPORTED_FORMATS = (
    "images (JPEG, PNG, WebP, BMP, TIFF, GIF, HEIC/HEIF, AVIF), PDF documents, "
    "audio (WAV, MP3, M4A/AAC, Ogg/Opus, FLAC) and video (MP4, WebM, MKV, MOV, AVI)"
)

Family = Literal["image", "pdf", "av"]


@dataclass(frozen=True)
class Sniffed:
    """What the magic bytes say: the decoder family, a MIME type and the name to hand that decoder."""

    family: Family
    mime: str
    label: str  # short human name for messages, e.g. "JPEG"
    decoder: str = ""  # PIL format name for images, FFmpeg demuxer name for audio/video
    audio_mime: str = ""  # for containers that may hold video: the MIME type when they turn out audio-only


def _image(mime: str, label: str, pil_format: str) -> Sniffed:
    return Sniffed("image", mime, label, pil_format)


def _av(mime: str, label: str, demuxer: str, audio_mime: str = "") -> Sniffed:
    return Sniffed("av", mime, label, demuxer, audio_mime or mime)


# ISO base media ("ftyp") brands. HEIF still images share the box format with MP4, so the brand decides.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_AUDIO_MP4_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"pnot"}


def sniff(data: bytes) -> Sniffed | None:
    """The format of ``data`` or None when no decoder we ship recognises it."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return _image("image/jpeg", "JPEG", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _image("image/png", "PNG", "PNG")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _image("image/gif", "GIF", "GIF")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return _image("image/tiff", "TIFF", "TIFF")
    if head.startswith(b"BM") and len(head) >= 18 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        # "BM" alone is too common at the start of text; the DIB header size pins it down.
        return _image("image/bmp", "BMP", "BMP")
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff_type = head[8:12]
        if riff_type == b"WEBP":
            return _image("image/webp", "WebP", "WEBP")
        if riff_type == b"WAVE":
            return _av("audio/wav", "WAV", "wav")
        if riff_type == b"AVI ":
            return _av("video/x-msvideo", "AVI", "avi", "audio/x-msvideo")
        return None
    # PDF readers accept up to 1 KiB of junk before the header, and so does pdfium.
    if b"%PDF-" in data[:1024]:
        return Sniffed("pdf", "application/pdf", "PDF")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        # Old QuickTime files start straight with an atom and have no "ftyp" box.
        return _av("video/quicktime", "MOV", "mov", "audio/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in data[:128]:
            return _av("video/webm", "WebM", "matroska", "audio/webm")
        return _av("video/x-matroska", "MKV", "matroska", "audio/x-matroska")
    if head.startswith(b"OggS"):
        return _av("video/ogg", "Ogg", "ogg", "audio/ogg")
    if head.startswith(b"fLaC"):
        return _av("audio/flac", "FLAC", "flac")
    if head.startswith(b"ID3"):
        return _sniff_after_id3(data)
    return _sniff_audio_frame(data)


def _sniff_ftyp(data: bytes) -> Sniffed:
    """Split ISO base media files into HEIF/AVIF stills, M4A audio and MP4/MOV video by their brands."""
    box_size = int.from_bytes(data[0:4], "big")
    major = data[8:12]
    # Compatible brands follow the minor version; cap the scan so a lying box size costs nothing.
    compatible = data[16 : min(max(box_size, 16), 256)]
    brands = {major} | {compatible[i : i + 4] for i in range(0, len(compatible) - 3, 4)}
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and brands & _AVIF_BRANDS):
        return _image("image/avif", "AVIF", "AVIF")
    if major in _HEIF_BRANDS or major in (b"mif1", b"msf1"):
        mime = "image/heic" if brands & _HEIF_BRANDS else "image/heif"
        return _image(mime, "HEIC" if mime == "image/heic" else "HEIF", "HEIF")
    if major in _AUDIO_MP4_BRANDS:
        return _av("audio/mp4", "M4A", "mov")
    if major == b"qt  ":
        return _av("video/quicktime", "MOV", "mov", "audio/mp4")
    return _av("video/mp4", "MP4", "mov", "audio/mp4")


def _sniff_after_id3(data: bytes) -> Sniffed:
    """Look past an ID3v2 tag: MP3 is usual, but AAC and FLAC files carry them too."""
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)  # "syncsafe" integer: 7 useful bits per byte
    end = 10 + size + (10 if len(data) > 5 and data[5] & 0x10 else 0)  # optional footer
    after = data[end : end + 8200]  # room for the longest frame (ADTS: 8191 bytes) plus the next header
    if after.startswith(b"fLaC"):
        return _av("audio/flac", "FLAC", "flac")
    found = _sniff_audio_frame(after)
    # A tag with nothing recognisable after it (or cut off) is still most likely MP3; FFmpeg will judge.
    return found if found is not None else _av("audio/mpeg", "MP3", "mp3")


# MPEG audio bitrates in kbit/s by (is MPEG-1, layer) and the 4-bit bitrate index; index 0 ("free") and 15 are
# not accepted by the sniffer.
_MPEG_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by the 2-bit version field (0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1) and the 2-bit rate index.
_MPEG_RATES = {0: (11_025, 12_000, 8_000), 2: (22_050, 24_000, 16_000), 3: (44_100, 48_000, 32_000)}


def _sniff_audio_frame(data: bytes) -> Sniffed | None:
    """Raw MPEG audio (MP3) or ADTS AAC: a valid frame header followed by a second one where the first ends.

    One 11-bit sync word turns up in random bytes about once in 2,000 tries; requiring the next frame too
    keeps random or damaged blobs out (inputs shorter than one frame are judged on their one header).
    """
    length = _mpeg_frame_length(data[:4])
    if length is not None:
        sniffed = _av("audio/mpeg", "MP3", "mp3")
    else:
        length = _adts_frame_length(data[:7])
        if length is None:
            return None
        sniffed = _av("audio/aac", "AAC", "aac")
    following = data[length : length + 7]
    if len(following) < 7:
        return sniffed
    if _mpeg_frame_length(following[:4]) is None and _adts_frame_length(following) is None:
        return None
    return sniffed


def _mpeg_frame_length(head: bytes) -> int | None:
    """Bytes in the MPEG audio frame this 4-byte header starts, or None if it is not a usable header."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version = (head[1] >> 3) & 0x03
    layer = 4 - ((head[1] >> 1) & 0x03)  # the field counts down: 3 means layer I
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 0x03
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (head[2] >> 1) & 0x01
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    if layer == 3 and not mpeg1:
        return 72 * bitrate // rate + padding
    return 144 * bitrate // rate + padding


def _adts_frame_length(head: bytes) -> int | None:
    """Bytes in the ADTS (AAC) frame this 7-byte header starts, or None if it is not one."""
    if len(head) < 7 or head[0] != 0xFF or head[1] & 0xF6 != 0xF0 or (head[2] >> 2) & 0x0F >= 13:
        return None
    length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
    return length if length >= 7 else None


def describe_unknown(data: bytes) -> str:
    """A short guess at what an unsupported blob is, so the error message can say more than "unknown"."""
    head = data[:8]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a ZIP archive (or an Office document); unpack it and send the files inside"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive; unpack it and send the file inside"
    if head.startswith(b"7z\xbc\xaf"):
        return "a 7-Zip archive; unpack it and send the files inside"
    if head.startswith(b"Rar!"):
        return "a RAR archive; unpack it and send the files inside"
    text = data[:2048].decode("utf-8", errors="replace")
    # Printable share rather than strict UTF-8: a character cut at the sample edge must not spoil the guess.
    if text and sum(ch != "\ufffd" and (ch.isprintable() or ch in "\r\n\t") for ch in text) >= 0.95 * len(text):
        if text.lstrip().lower().startswith(("<svg", "<?xml")):
            return "XML/SVG text; convert vector graphics to PNG first"
        return "plain text, not a picture, document, audio or video file (the file name may be wrong)"
    return "not a format frugalsense recognises"
