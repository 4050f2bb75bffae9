"""The receipt field scorer: per field, a logistic regression choosing among the candidates and a second one
saying how likely the chosen value is exactly right, read from JSON.

The coefficients ship in ``frugalsense/data/fields/receipts-model.json`` (trained offline by
``frugalsense.calibration.fields_train``; docs/fields.md is its data card). Scoring is a dot product and a
sigmoid in numpy: no training library is imported at run time, and no pickle is ever loaded.

    >>> spec = LogisticField(("bias", "total"), np.zeros(2), np.ones(2), np.array([0.0, 2.0]), -1.0)
    >>> [round(float(p), 3) for p in spec.probabilities([(1.0, 0.0), (1.0, 1.0)])]
    [0.269, 0.731]
    >>> sorted(FieldScorer.load().fields)
    ['date', 'total', 'vendor', 'vendor_address']
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.fields.candidates import FEATURES

__all__ = [
    "CONFIDENCE_FEATURES",
    "MODEL_FILE",
    "FieldModel",
    "FieldScorer",
    "LogisticField",
    "confidence_features",
    "read_model",
]

MODEL_FILE = "receipts-model.json"


@dataclass(frozen=True)
class LogisticField:
    """One field's standardised logistic regression: ``sigmoid(((x - mean) / scale) . coef + intercept)``."""

    features: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]
    intercept: float

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (self.mean.shape == self.scale.shape == self.coef.shape == (n,)):
            raise ConfigurationError(f"a field model needs {n} means, scales and coefficients, one per feature")
        if np.any(self.scale <= 0):
            raise ConfigurationError("a field model's scales must be positive")

    def probabilities(self, rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float64]:
        x = np.asarray(rows, np.float64).reshape(len(rows), len(self.features))
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
        return out

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> LogisticField:
        return cls(
            features=tuple(str(f) for f in spec["features"]),
            mean=np.asarray(spec["mean"], np.float64),
            scale=np.asarray(spec["scale"], np.float64),
            coef=np.asarray(spec["coef"], np.float64),
            intercept=float(spec["intercept"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "coef": [round(float(v), 8) for v in self.coef],
            "intercept": round(self.intercept, 8),
        }


#: what the second stage weighs to turn the best candidate's score into the chance its text is exactly right
CONFIDENCE_FEATURES = ("bias", "logit", "margin", "ocr_min", "ocr_mean", "lines")


def confidence_features(scores: Sequence[float], line_confidences: Sequence[float]) -> tuple[float, ...]:
    """Second-stage features of a field's best candidate: its score (as a logit), its lead over the runner-up,
    and how sure the recogniser was of the lines it came from.

    >>> [round(v, 3) for v in confidence_features([0.9, 0.5], [0.99, 0.8])]
    [1.0, 2.197, 0.4, 0.8, 0.895, 0.693]
    """
    best = min(1.0 - 1e-6, max(1e-6, scores[0]))
    runner_up = scores[1] if len(scores) > 1 else 0.0
    ocr = list(line_confidences) or [0.0]
    return (
        1.0,
        math.log(best / (1.0 - best)),
        best - runner_up,
        min(ocr),
        sum(ocr) / len(ocr),
        math.log(len(ocr)),
    )


@dataclass(frozen=True)
class FieldModel:
    """A field's two stages: the selector scores every candidate; the confidence model says how likely the
    chosen one is exactly right (OCR slips make a well-placed vendor or address wrong). Without a confidence
    model the selector's score is the confidence."""

    selector: LogisticField
    confidence: LogisticField | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"selector": self.selector.to_dict()}
        if self.confidence is not None:
            out["confidence"] = self.confidence.to_dict()
        return out


@dataclass(frozen=True)
class FieldScorer:
    """A model per field, and the provenance the training script wrote beside them."""

    fields: dict[str, FieldModel]
    meta: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldScorer:
        try:
            fields = {
                name: FieldModel(
                    LogisticField.from_dict(spec["selector"]),
                    LogisticField.from_dict(spec["confidence"]) if "confidence" in spec else None,
                )
                for name, spec in data["fields"].items()
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"receipt field model is malformed ({exc}); retrain it with fields_train"
            ) from exc
        return cls(fields, {k: v for k, v in data.items() if k != "fields"})

    @classmethod
    def load(cls, path: Path | None = None) -> FieldScorer:
        """The model at `path`, else the one shipped in the package."""
        return cls.from_dict(read_model(MODEL_FILE, path, "receipt field model"))

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta, "fields": {name: spec.to_dict() for name, spec in self.fields.items()}}

    def _model(self, field: str) -> FieldModel:
        model = self.fields.get(field)
        if model is None:
            raise ConfigurationError(f"the receipt field model has no {field!r}; retrain it with fields_train")
        if model.selector.features != FEATURES[field]:
            raise ConfigurationError(f"the receipt field model's {field!r} features differ from this version's")
        return model

    def probabilities(self, field: str, rows: Sequence[Sequence[float]]) -> list[float]:
        """The selector's score for each candidate (a row of `FEATURES[field]` values)."""
        if not rows:
            return []
        return [float(p) for p in self._model(field).selector.probabilities(rows)]

    def confidence(self, field: str, features: Sequence[float]) -> float:
        """The chance that the chosen candidate is exactly right, from its `confidence_features`."""
        model = self._model(field)
        if model.confidence is None:
            return float(1.0 / (1.0 + math.exp(-features[1])))
        return float(model.confidence.probabilities([features])[0])


def read_model(name: str, path: Path | None, what: str) -> dict[str, Any]:
    """The JSON of a fields model: the file at `path`, else the one named `name` shipped in the package."""
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        text = resources.files("frugalsense.data").joinpath("fields", name).read_text(encoding="utf-8")
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{what} {path or name} is not JSON: {exc}") from exc
    return data
