"""CTranslate2 Whisper weights run by faster-whisper, with its Silero voice-activity filter.

CTranslate2 computes in threads of its own: only the process's CPU clock sees its work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ModelUnavailableError

__all__ = ["Segment", "WhisperTranscriber"]

#: one stretch of speech: start and end in seconds from the start of the samples, and its text
Segment = tuple[float, float, str]


class WhisperTranscriber:
    """A faster-whisper model on the CPU, int8 weights, `threads` compute threads and one worker."""

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelUnavailableError("faster-whisper is not installed: pip install faster-whisper") from exc
        self._model: Any = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1
        )

    def transcribe(
        self, samples: npt.NDArray[np.float32], *, language: str, min_silence_ms: int
    ) -> tuple[Iterator[Segment], float | None]:
        """Greedy decoding of 16 kHz mono samples, silence dropped first, each window read on its own.

        Returns the segments as a lazy iterator (each step decodes the next stretch of speech) and the seconds
        of speech the voice-activity filter kept (None when the engine does not say).
        """
        segments, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=1,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": min_silence_ms},
            condition_on_previous_text=False,
        )
        after_vad = getattr(info, "duration_after_vad", None)
        kept = None if after_vad is None else float(after_vad)
        return ((float(s.start), float(s.end), str(s.text)) for s in segments), kept
