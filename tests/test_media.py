"""frugalsense.media: every supported format decodes, every bad input raises a typed InputError."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from frugalsense.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    InvalidRequestError,
    UnsupportedFormatError,
)
from frugalsense.media import AUDIO_RATE, Decoded, load, load_image_bytes
from frugalsense.media.sniff import sniff
from frugalsense.settings import Settings

# ---------------------------------------------------------------------------------------------------------------
# Inputs built in memory, so the tests need no fixture files


def image_bytes(fmt: str, image: Image.Image | None = None, **save: object) -> bytes:
    """Encode a picture (a 40x30 gradient unless given) with Pillow."""
    if image is None:
        gradient = np.zeros((30, 40, 3), np.uint8)
        gradient[:, :, 0] = np.linspace(0, 255, 40, dtype=np.uint8)[np.newaxis, :]
        gradient[:, :, 1] = 128
        image = Image.fromarray(gradient)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def noise_jpeg(size: tuple[int, int] = (200, 150)) -> bytes:
    """A JPEG of random pixels: big enough that cutting it leaves a clearly truncated scan."""
    rng = np.random.default_rng(7)
    return image_bytes("JPEG", Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)))


def pdf_bytes(pages: int) -> bytes:
    """A PDF with ``pages`` pages of growing height (100x50, 100x60, ...) at 72 dpi."""
    images = [Image.new("RGB", (100, 50 + 10 * i), (255, 255, 255)) for i in range(pages)]
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny, valid-looking 1-bit PNG that claims ``width`` x ``height``: a decompression bomb's header."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _audio_frame(samples: npt.NDArray[np.float32], fmt: str, layout: str, rate: int, pts: int) -> av.AudioFrame:
    """A PyAV frame from mono float samples in whatever sample format the encoder wants."""
    channels = 2 if layout == "stereo" else 1
    planar = np.tile(samples, (channels, 1))
    scale = {"s16": 32767, "s32": 2**31 - 1}.get(fmt.rstrip("p"))
    data: npt.NDArray[np.generic] = planar
    if scale is not None:
        data = (planar * scale).astype(np.int16 if fmt.startswith("s16") else np.int32)
    if not fmt.endswith("p"):
        data = data.T.reshape(1, -1)  # packed: channels interleaved in one plane
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def _encode_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float, layout: str) -> None:
    """Encode a 440 Hz tone at half scale into ``stream``."""
    rate = stream.codec_context.sample_rate
    fmt = stream.codec_context.format.name
    step = stream.codec_context.frame_size or 1024
    total = int(rate * seconds)
    for start in range(0, total, step):
        t = np.arange(start, min(start + step, total)) / rate
        samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for packet in stream.encode(_audio_frame(samples, fmt, layout, rate, start)):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def audio_bytes(container: str, codec: str, rate: int = 44_100, seconds: float = 3.0) -> bytes:
    """A stereo tone encoded with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        _encode_tone(out, stream, seconds, "stereo")
    return buf.getvalue()


def video_bytes(container: str, vcodec: str, acodec: str | None, seconds: int = 5, fps: int = 10) -> bytes:
    """A 64x48 video 40 levels brighter each second (0 at 0 s, 40 at 1 s, ...), plus a tone if ``acodec``."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream(acodec, rate=48_000, layout="mono") if acodec else None
        for index in range(seconds * fps):
            # Steps at half seconds, so a frame sampled at a whole second is mid-step even if a muxer shifts it.
            level = 40 * ((2 * index + fps) // (2 * fps))
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _encode_tone(out, audio, seconds, "mono")
    return buf.getvalue()


@pytest.fixture()
def small(tmp_path: Path) -> Settings:
    """Settings with limits small enough to hit cheaply."""
    return Settings(
        data_dir=tmp_path / "data",
        max_upload_bytes=200_000,
        max_pdf_pages=2,
        pdf_dpi=72,
        max_audio_seconds=2.0,
        video_frame_interval_s=1.0,
    )


def red_share(pixels: npt.NDArray[np.uint8]) -> float:
    """How red a patch is, from -1 (blue) to 1 (red)."""
    mean = pixels.reshape(-1, 3).astype(float).mean(axis=0)
    return float((mean[0] - mean[2]) / 255)


# ---------------------------------------------------------------------------------------------------------------
# Pictures


@pytest.mark.parametrize(
    ("fmt", "mime", "save"),
    [
        ("JPEG", "image/jpeg", {}),
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {}),
        ("BMP", "image/bmp", {}),
        ("TIFF", "image/tiff", {}),
        ("GIF", "image/gif", {}),
        ("AVIF", "image/avif", {}),
    ],
)
def test_picture_formats(fmt: str, mime: str, save: dict[str, object], settings: Settings) -> None:
    data = image_bytes(fmt, **save)
    decoded = load(data, settings, name="picture.bin")
    assert (decoded.kind, decoded.mime, decoded.name) == ("image", mime, "picture.bin")
    assert decoded.audio is None and len(decoded.frames) == 1
    frame = decoded.frames[0]
    assert frame.pixels.shape == (30, 40, 3) and frame.pixels.dtype == np.uint8
    assert frame.page is None and frame.time_s is None
    # The red gradient runs left to right in every format, lossy or not.
    assert frame.pixels[:, -4:, 0].mean() > frame.pixels[:, :4, 0].mean() + 150


def test_heic(settings: Settings) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    try:
        # Written through pillow-heif directly: registering its Pillow plugin here would hide whether the
        # loader registers it by itself.
        pillow_heif.from_pillow(Image.new("RGB", (40, 30), (255, 0, 0))).save(buf, quality=90)
    except (KeyError, OSError, RuntimeError) as exc:  # a build without an encoder can still read
        pytest.skip(f"pillow-heif cannot write HEIC here: {exc}")
    decoded = load(buf.getvalue(), settings)
    assert (decoded.kind, decoded.mime) == ("image", "image/heic")
    assert decoded.frames[0].pixels.shape == (30, 40, 3)
    assert red_share(decoded.frames[0].pixels) > 0.8


def test_exif_orientation_6_rotates(settings: Settings) -> None:
    # Left half red, right half blue, stored 40 wide and 20 high; orientation 6 means "turn 90° clockwise".
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    frame = load_image_bytes(image_bytes("JPEG", Image.fromarray(pixels), exif=exif, quality=95), settings)
    assert frame.pixels.shape == (40, 20, 3)
    assert red_share(frame.pixels[:15]) > 0.8  # the left (red) side is now on top
    assert red_share(frame.pixels[-15:]) < -0.8


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (Image.new("RGBA", (6, 4), (255, 0, 0, 0)), "PNG", (255, 255, 255)),  # transparent -> white
        (Image.new("RGBA", (6, 4), (255, 0, 0, 255)), "PNG", (255, 0, 0)),
        (Image.new("LA", (6, 4), (0, 0)), "PNG", (255, 255, 255)),
        (Image.new("L", (6, 4), 77), "PNG", (77, 77, 77)),
        (Image.new("1", (6, 4), 0), "PNG", (0, 0, 0)),
        (Image.new("I;16", (6, 4), 0xFFFF), "PNG", (255, 255, 255)),
        (Image.new("RGB", (6, 4), (0, 255, 0)).quantize(4), "PNG", (0, 255, 0)),  # palette
        (Image.new("CMYK", (6, 4), (0, 0, 0, 0)), "TIFF", (255, 255, 255)),
        (Image.new("CMYK", (6, 4), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
    ],
    ids=["rgba-clear", "rgba-opaque", "la", "l", "1bit", "i16", "p", "cmyk-tiff", "cmyk-jpeg"],
)
def test_modes_become_rgb(
    image: Image.Image, fmt: str, expected: tuple[int, int, int], settings: Settings
) -> None:
    frame = load_image_bytes(image_bytes(fmt, image), settings)
    assert frame.pixels.shape == (4, 6, 3) and frame.pixels.dtype == np.uint8
    assert np.abs(frame.pixels.astype(int) - expected).max() <= 3


def test_palette_with_transparency_is_composited_on_white(settings: Settings) -> None:
    image = Image.new("P", (6, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    frame = load_image_bytes(image_bytes("PNG", image, transparency=0), settings)
    assert frame.pixels.min() == 255


def test_animated_gif_gives_first_frame(settings: Settings) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    decoded = load(image_bytes("GIF", frames[0], save_all=True, append_images=frames[1:]), settings)
    assert decoded.kind == "image" and len(decoded.frames) == 1
    assert red_share(decoded.frames[0].pixels) > 0.9


def test_multipage_tiff_is_a_document(settings: Settings) -> None:
    pages = [Image.new("RGB", (30, 20 + i), (i * 100, 0, 0)) for i in range(3)]
    data = image_bytes("TIFF", pages[0], save_all=True, append_images=pages[1:])
    decoded = load(data, settings)
    assert decoded.kind == "document" and decoded.mime == "image/tiff"
    assert [(f.page, f.height) for f in decoded.frames] == [(1, 20), (2, 21), (3, 22)]
    # A caller that wants one picture gets the first page.
    assert load_image_bytes(data, settings).height == 20


def test_pixels_are_read_only(settings: Settings) -> None:
    frame = load_image_bytes(image_bytes("PNG"), settings)
    with pytest.raises(ValueError):
        frame.pixels[0, 0, 0] = 1


def test_load_image_bytes_refuses_other_kinds(settings: Settings) -> None:
    with pytest.raises(UnsupportedFormatError, match="expected a picture"):
        load_image_bytes(pdf_bytes(1), settings)


def test_metadata_from_path(tmp_path: Path, settings: Settings) -> None:
    import hashlib

    data = image_bytes("PNG")
    path = tmp_path / "photo.jpg"  # the wrong extension must not matter
    path.write_bytes(data)
    decoded = load(path, settings)
    assert (decoded.name, decoded.mime, decoded.byte_size) == ("photo.jpg", "image/png", len(data))
    assert decoded.sha256 == hashlib.sha256(data).hexdigest()
    assert load(str(path), settings, name="given.png").name == "given.png"
    assert load(data, settings).name == "upload"


# ---------------------------------------------------------------------------------------------------------------
# Documents


def test_pdf_pages(small: Settings) -> None:
    decoded = load(pdf_bytes(2), small)
    assert (decoded.kind, decoded.mime) == ("document", "application/pdf")
    assert [(f.page, f.pixels.shape) for f in decoded.frames] == [(1, (50, 100, 3)), (2, (60, 100, 3))]
    assert decoded.frames[0].pixels.min() == 255  # white pages stay white


def test_pdf_dpi_scales_pages(settings: Settings) -> None:
    decoded = load(pdf_bytes(1), settings.model_copy(update={"pdf_dpi": 144}))
    assert decoded.frames[0].pixels.shape == (100, 200, 3)


# ---------------------------------------------------------------------------------------------------------------
# Audio and video


@pytest.mark.parametrize(
    ("container", "codec", "rate", "mime"),
    [
        ("wav", "pcm_s16le", 44_100, "audio/wav"),
        ("mp3", "libmp3lame", 44_100, "audio/mpeg"),
        ("ogg", "libopus", 48_000, "audio/ogg"),
        ("ipod", "aac", 44_100, "audio/mp4"),  # .m4a
        ("adts", "aac", 44_100, "audio/aac"),  # raw AAC keeps its ~48 ms encoder priming: no edit list
        ("flac", "flac", 22_050, "audio/flac"),
    ],
)
def test_audio_formats(container: str, codec: str, rate: int, mime: str, settings: Settings) -> None:
    decoded = load(audio_bytes(container, codec, rate), settings)
    assert (decoded.kind, decoded.mime, decoded.frames) == ("audio", mime, [])
    assert decoded.audio is not None
    clip = decoded.audio
    assert clip.sample_rate == AUDIO_RATE and clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.duration_s == pytest.approx(3.0, rel=0.02)
    # Stereo at half scale is averaged, not summed: the peak stays near 0.5.
    assert 0.4 < float(np.abs(clip.samples).max()) < 0.6


def test_audio_keeps_the_tone(settings: Settings) -> None:
    decoded = load(audio_bytes("wav", "pcm_s16le"), settings)
    assert decoded.audio is not None
    spectrum = np.abs(np.fft.rfft(decoded.audio.samples))
    peak_hz = np.argmax(spectrum) * AUDIO_RATE / len(decoded.audio.samples)
    assert peak_hz == pytest.approx(440, abs=2)


@pytest.mark.parametrize(
    ("container", "vcodec", "acodec", "mime"),
    [
        ("mp4", "libx264", "aac", "video/mp4"),
        ("webm", "libvpx", "libopus", "video/webm"),
        ("matroska", "mpeg4", "flac", "video/x-matroska"),
        ("mov", "libx264", "aac", "video/quicktime"),
        ("avi", "mpeg4", "libmp3lame", "video/x-msvideo"),
    ],
)
def test_video_formats(container: str, vcodec: str, acodec: str, mime: str, small: Settings) -> None:
    decoded = load(
        video_bytes(container, vcodec, acodec, seconds=5), small.model_copy(update={"max_audio_seconds": 60})
    )
    assert (decoded.kind, decoded.mime) == ("video", mime)
    # PyAV's AVI muxing shifts frames one step later, so its last frame lands on 5.0 s and is sampled too.
    assert len(decoded.frames) == (6 if container == "avi" else 5)
    assert [f.time_s for f in decoded.frames[:5]] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=0.05)
    # Each sampled frame shows its own second: brightness 0, 40, 80, ...
    levels = [float(f.pixels.mean()) for f in decoded.frames[:5]]
    assert levels == pytest.approx([0, 40, 80, 120, 160], abs=6)
    assert decoded.frames[0].pixels.shape == (48, 64, 3)
    assert decoded.audio is not None and decoded.audio.duration_s == pytest.approx(5.0, rel=0.02)


def test_video_frame_cap_and_silent_video(small: Settings) -> None:
    capped = small.model_copy(update={"max_video_frames": 2, "video_frame_interval_s": 2.0})
    decoded = load(video_bytes("mp4", "mpeg4", None, seconds=5), capped)
    assert [f.time_s for f in decoded.frames] == pytest.approx([0.0, 2.0], abs=0.05)
    assert decoded.audio is None


@pytest.mark.parametrize(
    ("container", "vcodec"),
    [("mp4", "libx264"), ("webm", "libvpx"), ("matroska", "mpeg4"), ("avi", "mpeg4")],
)
def test_a_sampled_frame_taken_by_index_is_the_one_iteration_gives(
    container: str, vcodec: str, small: Settings
) -> None:
    """Frames are decoded on demand: by seeking to the keyframe before one when indexed, in one pass when
    iterated. Both must give the same pictures at the same times."""
    frames = load(video_bytes(container, vcodec, None, seconds=5), small).frames
    walked = [(f.time_s, round(float(f.pixels.mean()))) for f in frames]
    backwards = [(frames[i].time_s, round(float(frames[i].pixels.mean()))) for i in reversed(range(len(frames)))]
    assert backwards[::-1] == walked
    assert [level for _, level in walked[:5]] == pytest.approx([0, 40, 80, 120, 160], abs=6)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: every row raises its typed error, by bytes and by path


def _cut(make: Callable[[], bytes], keep: float) -> Callable[[], bytes]:
    return lambda: make()[: int(len(make()) * keep)]


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("photo.jpg", image_bytes("JPEG"))
    return buf.getvalue()


def _multipage_tiff() -> bytes:
    page = Image.new("L", (4, 4))
    return image_bytes("TIFF", page, save_all=True, append_images=[page, page])


TOO_BIG_PIXELS = "FRUGALSENSE_MAX_IMAGE_PIXELS"

# (file name when written to disk, builder, expected error, what the message must mention)
BAD_INPUTS = [
    pytest.param("empty.jpg", lambda: b"", EmptyInputError, "empty", id="zero-bytes"),
    pytest.param("cut.jpg", _cut(noise_jpeg, 0.5), CorruptInputError, "truncated", id="truncated-jpeg"),
    pytest.param(
        "cut.png",
        _cut(lambda: image_bytes("PNG", Image.new("RGB", (60, 60))), 0.6),
        CorruptInputError,
        "damaged",
        id="truncated-png",
    ),
    pytest.param(
        "notes.jpg",
        lambda: b"Dear diary,\nthis is not a photo.\n" * 5,
        UnsupportedFormatError,
        "plain text",
        id="text-named-jpg",
    ),
    pytest.param(
        "blob.bin",
        lambda: np.random.default_rng(1).bytes(4096),
        UnsupportedFormatError,
        "supported formats",
        id="random-bytes",
    ),
    pytest.param(
        "bomb.png", lambda: png_header_only(20_000, 20_000), InputTooLargeError, TOO_BIG_PIXELS, id="png-bomb"
    ),
    pytest.param(
        "big.png", lambda: png_header_only(9_000, 9_000), InputTooLargeError, TOO_BIG_PIXELS, id="png-81mpx"
    ),
    pytest.param(
        "big.bmp",
        lambda: image_bytes("BMP", Image.new("RGB", (300, 300))),
        InputTooLargeError,
        "FRUGALSENSE_MAX_UPLOAD_BYTES",
        id="over-upload-limit",
    ),
    pytest.param("cut.pdf", _cut(lambda: pdf_bytes(2), 0.5), CorruptInputError, "PDF", id="pdf-tail-cut"),
    pytest.param(
        "long.pdf", lambda: pdf_bytes(3), InputTooLargeError, "FRUGALSENSE_MAX_PDF_PAGES", id="pdf-too-many-pages"
    ),
    pytest.param(
        "long.tif", _multipage_tiff, InputTooLargeError, "FRUGALSENSE_MAX_PDF_PAGES", id="tiff-too-many-pages"
    ),
    pytest.param(
        "cut.mp3", lambda: audio_bytes("mp3", "libmp3lame")[:12], CorruptInputError, "MP3", id="mp3-header-only"
    ),
    pytest.param(
        "cut.wav", lambda: audio_bytes("wav", "pcm_s16le")[:20], CorruptInputError, "WAV", id="wav-header-only"
    ),
    pytest.param(
        "long.flac",
        lambda: audio_bytes("flac", "flac", 8_000),
        InputTooLargeError,
        "FRUGALSENSE_MAX_AUDIO_SECONDS",
        id="audio-too-long",
    ),
    pytest.param(
        "cut.mp4",
        _cut(lambda: video_bytes("mp4", "mpeg4", None), 0.3),
        CorruptInputError,
        "MP4",
        id="mp4-tail-cut",
    ),
    pytest.param("photos.jpg", _zip, UnsupportedFormatError, "ZIP", id="zip"),
]


@pytest.mark.parametrize("via", ["bytes", "path"])
@pytest.mark.parametrize(("filename", "make", "error", "says"), BAD_INPUTS)
def test_bad_input(
    filename: str,
    make: Callable[[], bytes],
    error: type[InputError],
    says: str,
    via: str,
    small: Settings,
    tmp_path: Path,
) -> None:
    data = make()
    settings = small.model_copy(update={"max_image_pixels": 60_000_000})
    source: bytes | Path = data
    if via == "path":
        source = tmp_path / filename
        source.write_bytes(data)
    with pytest.raises(error) as caught:
        load(source, settings)
    message = str(caught.value)
    assert says.lower() in message.lower()
    assert ";" in message, "every message says what went wrong, then what to do"
    assert isinstance(caught.value, InputError)


def test_missing_path_and_folder(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(InvalidRequestError, match="no such file"):
        load(tmp_path / "nope.jpg", settings)
    with pytest.raises(InvalidRequestError, match="folder"):
        load(tmp_path, settings)


def test_pixel_limit_uses_settings(settings: Settings) -> None:
    tiny_limit = settings.model_copy(update={"max_image_pixels": 100})
    with pytest.raises(InputTooLargeError, match="FRUGALSENSE_MAX_IMAGE_PIXELS"):
        load_image_bytes(image_bytes("PNG"), tiny_limit)
    with pytest.raises(InputTooLargeError, match="FRUGALSENSE_MAX_IMAGE_PIXELS"):
        load(pdf_bytes(1), tiny_limit)


def test_pil_global_limit_untouched(settings: Settings) -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputTooLargeError):
        load(png_header_only(20_000, 20_000), settings)
    assert before == Image.MAX_IMAGE_PIXELS


ADTS_HEADER = b"\xff\xf1\x50\x80\x02\x9f\xfc"  # AAC-LC, 44.1 kHz, stereo, a 20-byte frame


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avif", "image/avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "video/mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\xff\xfb\x90\x64" + bytes(60), "audio/mpeg"),  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
        (ADTS_HEADER + bytes(13) + ADTS_HEADER, "audio/aac"),
        (b"junk\n%PDF-1.4", "application/pdf"),
    ],
)
def test_sniff(head: bytes, mime: str) -> None:
    found = sniff(head)
    assert found is not None and found.mime == mime


def test_sniff_rejects_near_misses() -> None:
    assert sniff(ADTS_HEADER + bytes(100)) is None  # no second frame where the first one ends
    assert sniff(b"BM is a common start of text") is None
    assert sniff(b"\xff\xff\xff\xff") is None  # reserved MPEG fields
    assert sniff(b"RIFF\x00\x00\x00\x00XXXX") is None


# ---------------------------------------------------------------------------------------------------------------
# Real files


def test_real_one_bit_tiff(eval_dir: Path, settings: Settings) -> None:
    decoded = load(eval_dir / "ocr-pages" / "phototest.tif", settings)
    assert (decoded.kind, decoded.mime) == ("image", "image/tiff")
    frame = decoded.frames[0]
    assert (frame.width, frame.height) == (640, 480) and frame.pixels.shape == (480, 640, 3)
    assert set(np.unique(frame.pixels).tolist()) <= {0, 255}  # 1-bit stays black and white


def test_real_jpeg(eval_dir: Path, settings: Settings) -> None:
    path = sorted((eval_dir / "faces-deepface" / "images").glob("*.jpg"))[0]
    decoded: Decoded = load(path, settings)
    assert decoded.kind == "image" and decoded.mime == "image/jpeg" and decoded.name == path.name
    with Image.open(path) as reference:
        size = reference.size
    frame = decoded.frames[0]
    assert {(frame.width, frame.height), (frame.height, frame.width)} & {size}
