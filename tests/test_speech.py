"""Speech to text on clips synthesised here with espeak-ng, and silence that costs almost nothing."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.media.types import AudioClip
from frugalsense.quality import wer
from frugalsense.settings import Settings

espeak = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(espeak is None, reason="espeak-ng is not installed (scripts/setup.sh --test)")


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


@needs_espeak
def test_synthesised_clip_is_transcribed(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = tmp_path / "note.wav"
    sentence = "Please send the invoice for the blue chairs before Monday."
    subprocess.run([str(espeak), "-v", "en-us", "-s", "140", "-w", str(clip), sentence], check=True)
    result = analyzer.analyze(clip)
    assert result.kind == "audio"
    assert result.transcript is not None
    # Measured: one word of ten misheard ("chairs" as "cairns"): WER 0.1 on espeak's robotic voice.
    assert wer(result.transcript.text, sentence) <= 0.2, result.transcript.text
    assert "invoice" in result.transcript.text.lower()
    assert [s.model for s in result.receipt.stages if s.stage == "speech-to-text"] == ["whisper-tiny-en"]


def test_silence_is_cheap_and_empty(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = tmp_path / "silence.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 20, np.int16).tobytes())
    analyzer.zoo.get("whisper-tiny-en").load()
    result = analyzer.analyze(clip)
    assert result.transcript is not None
    assert result.transcript.text == ""
    assert result.transcript.speech_s == 0
    assert result.receipt.cpu_seconds < 1.0  # voice-activity detection skips Whisper entirely


def test_bundled_voice_note(analyzer: Analyzer, tmp_path: Path) -> None:
    from frugalsense.samples import write_samples

    voice = write_samples(tmp_path)[3]
    result = analyzer.analyze(voice)
    assert result.transcript is not None
    heard = result.transcript.text.lower()
    for word in ("hardware", "friday", "call me back"):
        assert word in heard, heard


@needs_espeak
def test_a_long_recording_is_read_in_pieces_cut_at_pauses(analyzer: Analyzer, tmp_path: Path) -> None:
    """Recordings longer than a piece are transcribed piece by piece (bounded memory); cutting at a pause keeps
    every word, and the segments keep their times in the whole recording."""
    from frugalsense.media import load
    from frugalsense.models import speech

    sentences = [
        "The delivery of paint arrives on Monday morning.",
        "Please call the plumber about the leaking kitchen tap.",
        "Order twelve boxes of screws for the workshop.",
    ]
    clips = []
    for n, sentence in enumerate(sentences):
        path = tmp_path / f"{n}.wav"
        subprocess.run([str(espeak), "-v", "en-us", "-s", "140", "-w", str(path), sentence], check=True)
        clips.append(load(path, analyzer.settings).audio)
    rate = clips[0].sample_rate
    pause = np.zeros(rate, np.float32)
    samples = np.concatenate([part for clip in clips for part in (clip.samples, pause)])
    recording = AudioClip(samples.astype(np.float32))
    whole = analyzer.zoo.get(analyzer.pipeline.speech).predict([recording])[0]
    piece_s = max(10.0, clips[0].duration_s + 2.0)  # a piece holds about one sentence
    assert len(speech.chunk_bounds(samples, rate, piece_s)) >= 3
    in_pieces = Analyzer(analyzer.settings.model_copy(update={"speech_chunk_seconds": piece_s}))
    pieces = in_pieces.zoo.get(in_pieces.pipeline.speech).predict([recording])[0]
    # Whisper hears espeak's robotic voice a little differently with less context, but the words on either side
    # of every cut are there: each sentence's last word and the next one's first.
    heard = pieces.text.lower()
    assert all(word in heard for word in ("morning", "please", "plumber", "kitchen", "order", "workshop")), heard
    assert abs(len(heard.split()) - len(whole.text.split())) <= 3, (heard, whole.text)
    assert pieces.segments[-1].end_s > recording.duration_s - clips[-1].duration_s - 1.5
