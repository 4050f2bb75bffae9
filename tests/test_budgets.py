"""Budgets per request, enforced before or while the work runs: decoded pixels (pages and frames decoded one at a
time, first-picture callers decoding one), audio seconds, CPU-seconds and cancellation.

Inputs stay small: the budgets are set small in `Settings(...)` so each behaviour shows at a few megapixels.
Peak memory is measured in a child process (its peak RSS, VmHWM, before and after the step), so the numbers
are the decoder's own and not this test session's.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import av
import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from frugalsense.analyze import Analyzer
from frugalsense.errors import BudgetExceededError, CancelledError, InputTooLargeError
from frugalsense.faces import FaceGallery
from frugalsense.ledger import Meter
from frugalsense.media import AudioClip, LazyFrames, load
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore

MB = 2**20

# ---------------------------------------------------------------------------------------------------------------
# Inputs


def blank_pdf(pages: int, side_pt: float, first_page: bytes | None = None) -> bytes:
    """`pages` blank pages of `side_pt` points square (a few bytes each), after the pages of `first_page`."""
    document = pdfium.PdfDocument(first_page) if first_page is not None else pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(side_pt, side_pt).close()
    buf = io.BytesIO()
    document.save(buf)
    document.close()
    return buf.getvalue()


def picture_pdf(path: Path, copies: int = 1) -> bytes:
    """A PDF of `copies` pages, each the picture at `path` at 72 dpi (one pixel per point)."""
    image = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PDF", save_all=True, append_images=[image] * (copies - 1), resolution=72)
    return buf.getvalue()


def tiff_pages(pages: int, side: int) -> bytes:
    """A multi-page TIFF of flat grey `side` x `side` pages, compressed so the file stays small."""
    later = (Image.new("RGB", (side, side), (40 * i % 256,) * 3) for i in range(1, pages))  # made one at a time
    buf = io.BytesIO()
    first = Image.new("RGB", (side, side), (0, 0, 0))
    first.save(buf, format="TIFF", save_all=True, append_images=later, compression="tiff_deflate")
    return buf.getvalue()


def flat_video(frames: int, side: int, *, audio_seconds: float = 0.0) -> bytes:
    """An MP4 (MPEG-4 part 2) of `frames` flat frames, one a second, `side` pixels square; a tone if asked."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=1)
        video.width, video.height, video.pix_fmt = side, side, "yuv420p"
        audio = out.add_stream("aac", rate=16_000, layout="mono") if audio_seconds else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((side, side, 3), 20 * index % 256, np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = index, Fraction(1, 1)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _mux_tone(out, audio, audio_seconds)
    return buf.getvalue()


def _mux_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    step, total = stream.codec_context.frame_size or 1024, int(16_000 * seconds)
    for start in range(0, total, step):
        t = np.arange(start, min(start + step, total)) / 16_000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[np.newaxis, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16_000, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def wav_tone(seconds: float) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16_000, layout="mono")
        samples = (np.sin(np.arange(int(16_000 * seconds)) / 5) * 10_000).astype(np.int16)[np.newaxis, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Peak memory of one decode, in a child process

_PROBE = """
import json, re, sys
from pathlib import Path
from frugalsense.media import load
from frugalsense.settings import Settings

data = Path(sys.argv[1]).read_bytes()
settings = Settings(**json.loads(sys.argv[2]))

def peak():  # VmHWM: this process's own peak (getrusage's ru_maxrss keeps the parent's across exec)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

before = peak()
outcome, pictures = "ok", 0
try:
    decoded = load(data, settings)
    for frame in decoded.frames:  # what the analyzer does: one picture at a time
        pictures += int(frame.pixels[0, 0, 0] >= 0)
        del frame
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
print(json.dumps({"outcome": outcome, "pictures": pictures, "peak_rise": peak() - before}))
"""


def decode_in_child(tmp_path: Path, data: bytes, **settings: Any) -> dict[str, Any]:
    """Load `data` and walk its pictures in a fresh interpreter; the outcome and the rise of its peak RSS."""
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    options = {"data_dir": str(tmp_path / "data"), **settings}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------------------------------------------------------
# Decoded pixels per request

# Ten 2000x2000-point pages at 72 dpi: 4 Mpx each, 12 MB as RGB, 40 Mpx in all from a file of a few KB.
PAGES, SIDE = 10, 2000


def test_a_pdf_over_the_pixel_budget_is_refused_before_any_page_is_rendered(tmp_path: Path) -> None:
    data = blank_pdf(PAGES, SIDE)
    assert len(data) < 10_000
    seen = decode_in_child(tmp_path, data, pdf_dpi=72, max_request_pixels=10_000_000)
    assert seen["outcome"].startswith("InputTooLargeError")
    assert "40,000,000 pixels" in seen["outcome"] and "FRUGALSENSE_MAX_REQUEST_PIXELS" in seen["outcome"]
    # Under two pages (12 MB each): nothing was rendered (every page held at once, as before, rose it by 126 MB).
    assert seen["peak_rise"] < 24 * MB, seen


@pytest.mark.parametrize(
    ("kind", "make", "settings"),
    [
        ("PDF pages", lambda: blank_pdf(PAGES, SIDE), {"pdf_dpi": 72}),
        ("TIFF pages", lambda: tiff_pages(PAGES, SIDE), {}),
        ("video frames", lambda: flat_video(PAGES, SIDE), {"video_frame_interval_s": 1.0}),
    ],
)
def test_pages_and_frames_are_decoded_one_at_a_time(
    kind: str, make: Any, settings: dict[str, Any], tmp_path: Path
) -> None:
    seen = decode_in_child(tmp_path, make(), **settings)
    assert seen["outcome"] == "ok" and seen["pictures"] == PAGES, seen
    # One 12 MB picture at a time plus the decoder's own buffers (measured 24-41 MB), not all ten (126-160 MB).
    assert seen["peak_rise"] < 60 * MB, f"{kind}: {seen}"


def test_the_pixel_budget_counts_what_the_headers_say(settings: Settings) -> None:
    tight = settings.model_copy(update={"max_request_pixels": 100_000, "video_frame_interval_s": 1.0})
    video = flat_video(5, 160)  # 5 sampled frames of 25,600 pixels: 128,000
    with pytest.raises(InputTooLargeError, match=r"5 sampled frames .* 128,000 pixels.*MAX_REQUEST_PIXELS"):
        load(video, tight)
    with pytest.raises(InputTooLargeError, match=r"3-page TIFF .* 120,000 pixels,"):
        load(tiff_pages(3, 200), tight)
    # Under the budget, the count and sizes are known before anything is decoded.
    frames = load(tiff_pages(2, 200), tight).frames
    assert isinstance(frames, LazyFrames) and len(frames) == 2 and frames.pixels == 80_000
    assert [f.page for f in frames] == [1, 2] and frames[1].pixels.mean() == pytest.approx(40, abs=1)


def test_a_video_over_the_budget_is_refused_before_a_frame_is_decoded(tmp_path: Path) -> None:
    seen = decode_in_child(
        tmp_path, flat_video(PAGES, SIDE), video_frame_interval_s=1.0, max_request_pixels=10_000_000
    )
    assert "InputTooLargeError" in seen["outcome"] and "10 sampled frames" in seen["outcome"], seen
    assert seen["peak_rise"] < 24 * MB, seen  # under two pictures of the ten (the old code: 160 MB)


# ---------------------------------------------------------------------------------------------------------------
# First-picture callers decode one picture


def test_first_only_plans_one_page_and_no_audio(settings: Settings) -> None:
    # Later pages too large to decode at all: a caller that wants the first picture must never touch them.
    small = settings.model_copy(
        update={"pdf_dpi": 72, "max_image_pixels": 1_000_000, "max_request_pixels": 2_000_000}
    )
    document = blank_pdf(11, 3000, first_page=blank_pdf(1, 500))
    with pytest.raises(InputTooLargeError):
        load(document, small)
    first = load(document, small, first_only=True)
    assert (first.kind, len(first.frames), first.frames[0].page) == ("document", 1, 1)
    assert first.frames[0].pixels.shape == (500, 500, 3)
    clip = load(flat_video(4, 64, audio_seconds=4), small.model_copy(update={"video_frame_interval_s": 1.0}))
    assert len(clip.frames) == 4 and clip.audio is not None
    only = load(flat_video(4, 64, audio_seconds=4), small, first_only=True)
    assert (only.kind, len(only.frames), only.audio) == ("video", 1, None)


def test_comparing_faces_in_twelve_page_pdfs_renders_only_their_first_pages(
    settings: Settings, eval_dir: Path
) -> None:
    person = eval_dir / "faces-lfw" / "images" / "Abel_Pacheco"
    # Eleven pages of 3000x3000 points after the photo: 9 Mpx each at 72 dpi, over the per-picture limit.
    limits = {"pdf_dpi": 72, "max_image_pixels": 4_000_000, "max_request_pixels": 5_000_000}
    small = settings.model_copy(update=limits)
    pdfs = [blank_pdf(11, 3000, first_page=picture_pdf(person / f"Abel_Pacheco_000{n}.jpg")) for n in (1, 2)]
    gallery = FaceGallery(SQLiteStore.open(small), Analyzer(small))
    result = gallery.compare(pdfs[0], pdfs[1])
    assert result.same and result.similarity > result.threshold
    decodes = [s for s in result.receipt.stages if s.stage == "decode"]
    assert len(decodes) == 2  # one page each


# ---------------------------------------------------------------------------------------------------------------
# Audio seconds


def test_audio_over_the_limit_is_refused_from_its_header(settings: Settings) -> None:
    with pytest.raises(InputTooLargeError, match=r"\(5 s\).*FRUGALSENSE_MAX_AUDIO_SECONDS"):
        load(wav_tone(5), settings.model_copy(update={"max_audio_seconds": 2.0}))


def test_a_video_with_too_long_a_sound_track_is_refused_before_its_frames_are_decoded(tmp_path: Path) -> None:
    seen = decode_in_child(
        tmp_path, flat_video(PAGES, SIDE, audio_seconds=PAGES), video_frame_interval_s=1.0, max_audio_seconds=3
    )
    assert "InputTooLargeError" in seen["outcome"] and "MAX_AUDIO_SECONDS" in seen["outcome"], seen
    assert seen["peak_rise"] < 24 * MB, seen  # under two pictures of the ten (the old code: 164 MB)


# ---------------------------------------------------------------------------------------------------------------
# CPU-seconds and cancellation, through the real models


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    analyzer = Analyzer(Settings(data_dir=tmp_path_factory.mktemp("budgets"), model_cache=model_dir))
    analyzer.warm_up(["text", "speech"])  # loading is billed too; these tests measure the work itself
    return analyzer


def _text_pages(eval_dir: Path, copies: int) -> bytes:
    return picture_pdf(eval_dir / "ocr-pages" / "phototest.tif", copies)


def _stages(meter: Meter, name: str) -> int:
    return sum(s.stage == name for s in meter.receipt.stages)


def test_a_long_document_stops_between_pages_once_over_its_cpu_budget(analyzer: Analyzer, eval_dir: Path) -> None:
    meter = Meter(0.05, cpu_budget_s=0.05)
    with pytest.raises(BudgetExceededError, match="FRUGALSENSE_MAX_REQUEST_CPU_SECONDS"):
        analyzer.analyze(_text_pages(eval_dir, 6), ["text"], meter=meter)
    # Pages are decoded as they are read: reading stopped after the first one, the rest were never rendered.
    assert _stages(meter, "decode") == 2


def test_the_library_default_meter_keeps_the_settings_budget(analyzer: Analyzer, eval_dir: Path) -> None:
    tight = Analyzer(analyzer.settings.model_copy(update={"max_request_cpu_seconds": 0.05}))
    tight.zoo = analyzer.zoo
    with pytest.raises(BudgetExceededError):
        tight.analyze(_text_pages(eval_dir, 4), ["text"])


def test_a_cancelled_document_stops_at_the_next_page(analyzer: Analyzer, eval_dir: Path) -> None:
    stop = threading.Event()
    meter = Meter(0.05, cancelled=stop)
    pages = _text_pages(eval_dir, 6)
    timer = threading.Timer(0.3, stop.set)  # the client goes away while the first page is read
    timer.start()
    try:
        with pytest.raises(CancelledError):
            analyzer.analyze(pages, ["text"], meter=meter)
    finally:
        timer.cancel()
    assert _stages(meter, "decode") < 7  # the whole file, then each page: it stopped before the last


def _speech(analyzer: Analyzer, repeats: int) -> AudioClip:
    """The shipped voice note said `repeats` times with a second of silence between: three segments each, all
    in one 30-second window of Whisper's when twice (about 1.2 CPU-s here)."""
    note = load((resources.files("frugalsense.data") / "voice-note.ogg").read_bytes(), analyzer.settings)
    assert note.audio is not None
    gap = np.zeros(16_000, np.float32)
    return AudioClip(np.concatenate([np.concatenate([note.audio.samples, gap])] * repeats))


def test_transcription_stops_between_segments_once_over_budget(analyzer: Analyzer) -> None:
    whisper = analyzer.zoo.get(analyzer.pipeline.speech)
    clip = _speech(analyzer, 2)
    meter = Meter(0.05, cpu_budget_s=0.01)  # nothing spent yet: the stage starts, the first segment ends it
    with pytest.raises(BudgetExceededError, match="while transcribing"):
        whisper.predict([clip], meter)
    assert [s.stage for s in meter.receipt.stages] == ["speech-to-text"]  # billed up to where it stopped


def test_transcription_stops_when_the_client_goes_away(analyzer: Analyzer) -> None:
    whisper = analyzer.zoo.get(analyzer.pipeline.speech)
    stop = threading.Event()
    meter = Meter(0.05, cancelled=stop)
    clip = _speech(analyzer, 2)
    timer = threading.Timer(0.3, stop.set)  # the client goes away while the first window is transcribed
    timer.start()
    try:
        with pytest.raises(CancelledError):
            whisper.predict([clip], meter)
    finally:
        timer.cancel()


def test_sampled_video_frames_are_kept_at_most_video_max_side(settings: Settings) -> None:
    """Frames are scaled down before they count against the pixel budget: a long, sharp video stays analysable."""
    scaled = settings.model_copy(update={"video_frame_interval_s": 1.0, "video_max_side": 256})
    clip = load(flat_video(3, 1024), scaled)
    assert [f.pixels.shape for f in clip.frames] == [(256, 256, 3)] * 3
    # Three 1024-px frames are 3.1 Mpx, the scaled ones 0.2 Mpx: only the scaled size is counted.
    assert len(load(flat_video(3, 1024), scaled.model_copy(update={"max_request_pixels": 300_000})).frames) == 3


def test_huge_pages_are_read_from_the_copy_the_ocr_engine_would_make(settings: Settings, eval_dir: Path) -> None:
    """A page over 2,000 px is shrunk before the text ladder sees it, exactly as PP-OCR shrinks it inside: the
    lines and their boxes are the engine's own, while the engine never holds the full-size page."""
    from frugalsense.analyze import Analyzer, ocr_copy
    from frugalsense.ladder.text import TextPage, read_text
    from frugalsense.ledger import Meter
    from frugalsense.media.types import Frame

    receipt = Image.open(eval_dir / "ocr-sroie" / "img" / "000.jpg").convert("RGB")
    big = receipt.resize((receipt.width * 5 // 2, receipt.height * 5 // 2), Image.Resampling.BICUBIC)
    frame = Frame(pixels=np.asarray(big, dtype=np.uint8), page=1)
    assert max(ocr_copy(frame)[0].pixels.shape) <= 2000 < max(frame.pixels.shape)
    analyzer = Analyzer(settings)
    ours = analyzer.text(frame, "document", Meter(0.05))
    engine = read_text(analyzer.text_ladder(), TextPage(frame, "document"), Meter(0.05))
    assert len(ours) >= 20
    assert [line.text for line in ours] == [line.text for line in engine]
    for mine, theirs in zip(ours, engine, strict=True):
        assert np.abs(np.array(mine.quad) - np.array(theirs.quad)).max() < 3.0


def test_requests_that_hold_memory_never_wait_for_each_other() -> None:
    """Two requests each holding a picture and then needing the OCR's working memory on top: the one holding
    memory gets the rest at once, so neither waits for the other (a wait here would be a deadlock), while a
    request holding nothing waits for room."""
    import threading

    from frugalsense.budget import MemoryBudget, RequestLimits, request_limits, reserve

    budget = MemoryBudget(100)
    first, second = RequestLimits(memory=budget, memory_wait_s=5), RequestLimits(memory=budget, memory_wait_s=5)
    with request_limits(first):
        picture = reserve(60, "the picture needs")
    waited: list[float] = []

    def later_request() -> None:
        started = time.monotonic()
        with request_limits(second):
            reserve(60, "the picture needs")()
        waited.append(time.monotonic() - started)

    thread = threading.Thread(target=later_request)
    thread.start()
    time.sleep(0.3)
    with request_limits(first):
        reading = reserve(500, "reading its text needs")  # over the budget, but it already holds memory
    assert budget.held == 560 and thread.is_alive()  # the second request still waits for room
    reading()
    picture()
    thread.join(timeout=5)
    assert waited and 0.25 < waited[0] < 5 and budget.held == 0


def test_the_second_opinion_reads_the_same_face_from_its_patch(settings: Settings, eval_dir: Path) -> None:
    """faces/compare keeps only the region around each face for a climb to dlib; dlib's embedding of that region
    is the one it gives on the whole picture."""
    from frugalsense.faces.gallery import face_patch

    analyzer = Analyzer(settings)
    frame = load(eval_dir / "faces-deepface" / "images" / "img1.jpg", settings).frames[0]
    face = max(analyzer.faces(frame, Meter(0.05)), key=lambda f: f.box.w * f.box.h)
    dlib = analyzer.zoo.get("dlib-resnet")
    whole, from_patch = dlib.predict([(frame.bgr(), face), face_patch(frame, face)], Meter(0.05))
    patch = face_patch(frame, face)[0]
    assert patch.size < frame.pixels.size
    assert float(np.dot(whole, from_patch)) > 0.9999
