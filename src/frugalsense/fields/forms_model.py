"""The form pair model: small gradient-boosted trees, read from JSON and evaluated with numpy.

The join model says how likely two neighbouring segments are pieces of one entry; two role models how likely a
segment is a question and an answer; the pair model, given a candidate pair's features and both segments' role
scores, how likely the answer answers the question. The trees ship in
``frugalsense/data/fields/forms-model.json`` (trained offline by ``frugalsense.calibration.fields_forms_train``;
docs/fields.md is the data card); no training library is imported at run time and no pickle is ever loaded.

    >>> stump = Trees(("x",), 1.0, 0.0, (Tree((0, -1, -1), (0.5, 0.0, 0.0), (1, -1, -1), (2, -1, -1),
    ...                                        (0.0, -2.0, 2.0)),))
    >>> [round(float(p), 3) for p in stump.probabilities([[0.0], [1.0]])]
    [0.119, 0.881]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError
from frugalsense.fields.forms_features import PAIR_FEATURES, ROLE_FEATURES
from frugalsense.fields.forms_join import JOIN_FEATURES
from frugalsense.fields.forms_layout import Segment
from frugalsense.fields.scorer import LogisticField, read_model

__all__ = ["CONFIDENCE_FEATURES", "MODEL_FILE", "PAIR_INPUTS", "FormModel", "Tree", "Trees", "confidence_features"]

MODEL_FILE = "forms-model.json"
#: what the pair model reads: a candidate's features, then the question's and the answer's role scores
PAIR_INPUTS = (*PAIR_FEATURES, "q_is_question", "q_is_answer", "a_is_question", "a_is_answer")
#: what the confidence stage weighs to turn a chosen pair's score into the chance its texts are right
CONFIDENCE_FEATURES = (
    "bias", "logit", "margin", "q_ocr", "a_ocr", "q_question", "a_answer", "q_chars", "a_chars", "a_parts",
    "a_digits",
)  # fmt: skip


def confidence_features(
    score: float, runner_up: float, question: Segment, answer: Segment, roles: Sequence[float]
) -> tuple[float, ...]:
    """Features of a chosen pair for the confidence stage: its score (as a logit), its lead over the best other
    question for the same answer, how sure the recogniser was of both texts, the role scores (the question's
    chance of being a question, the answer's of being an answer), the texts' lengths and the answer's lines.

    >>> from frugalsense.fields.forms_layout import Segment
    >>> q, a = Segment(0, "Date:", 0, 0, 40, 12, (), 0.99), Segment(1, "9/3/92", 50, 0, 90, 12, (), 0.9)
    >>> [round(v, 3) for v in confidence_features(0.9, 0.1, q, a, (0.95, 0.9))]
    [1.0, 2.197, 0.8, 0.99, 0.9, 0.95, 0.9, 1.792, 1.946, 0.0, 0.667]
    """
    best = min(1.0 - 1e-6, max(1e-6, score))
    text = answer.text.strip()
    return (
        1.0,
        math.log(best / (1.0 - best)),
        score - runner_up,
        question.confidence,
        answer.confidence,
        float(roles[0]),
        float(roles[1]),
        math.log1p(len(question.text.strip())),
        math.log1p(len(text)),
        float(max(0, len(answer.parts) - 1)),
        sum(c.isdigit() for c in text) / max(1, len(text)),
    )


@dataclass(frozen=True)
class Tree:
    """One regression tree as parallel arrays: a node splits on ``x[feature] <= threshold`` (left) or is a leaf
    (``left == -1``) holding `value`."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.feature)
        if not n or not (len(self.threshold) == len(self.left) == len(self.right) == len(self.value) == n):
            raise ConfigurationError(
                "a tree needs as many thresholds, children and values as nodes; retrain it with fields_forms_train"
            )
        if any(not -1 <= c < n for c in (*self.left, *self.right)):
            raise ConfigurationError(
                "a tree's children must be nodes of the tree; retrain it with fields_forms_train"
            )

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        feature = np.asarray(self.feature)
        threshold = np.asarray(self.threshold)
        left = np.asarray(self.left)
        right = np.asarray(self.right)
        node = np.zeros(len(x), np.intp)
        rows = np.arange(len(x))
        for _ in range(len(self.feature)):  # a path is never longer than the tree
            inner = left[node] >= 0
            if not inner.any():
                break
            go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        values: npt.NDArray[np.float64] = np.asarray(self.value, np.float64)[node]
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": list(self.feature),
            "threshold": list(self.threshold),  # exact: a rounded split point can move a value across it
            "left": list(self.left),
            "right": list(self.right),
            "value": [round(v, 9) for v in self.value],
        }


@dataclass(frozen=True)
class Trees:
    """A boosted sum of trees turned into a probability: ``sigmoid(baseline + learning_rate * sum(trees))``."""

    features: tuple[str, ...]
    learning_rate: float
    baseline: float
    trees: tuple[Tree, ...]

    def __post_init__(self) -> None:
        if any(f >= len(self.features) for tree in self.trees for f in tree.feature):
            raise ConfigurationError(
                "a tree splits on a feature the model does not name; retrain it with fields_forms_train"
            )

    def probabilities(self, rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float64]:
        # scikit-learn's trees split float32 inputs: round to float32 first so values land on the same side
        x = np.asarray(rows, np.float32).astype(np.float64).reshape(len(rows), len(self.features))
        z = np.full(len(x), self.baseline)
        for tree in self.trees:
            z += self.learning_rate * tree.predict(x)
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "learning_rate": self.learning_rate,
            "baseline": round(self.baseline, 7),
            "trees": [t.to_dict() for t in self.trees],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trees:
        return cls(
            tuple(str(f) for f in data["features"]),
            float(data["learning_rate"]),
            float(data["baseline"]),
            tuple(
                Tree(
                    tuple(int(v) for v in t["feature"]),
                    tuple(float(v) for v in t["threshold"]),
                    tuple(int(v) for v in t["left"]),
                    tuple(int(v) for v in t["right"]),
                    tuple(float(v) for v in t["value"]),
                )
                for t in data["trees"]
            ),
        )


@dataclass(frozen=True)
class FormModel:
    """The join, role and pair models, the pair score at which a pair is proposed at all (`decision`: the
    operating point with abstention off), the confidence stage (a logistic regression over a chosen pair's
    `confidence_features`; without one the pair score is the confidence), and the provenance the training
    script wrote beside them. Two segments are joined when the join model gives them at least one half."""

    join: Trees
    question: Trees
    answer: Trees
    pairs: Trees
    decision: float
    meta: dict[str, Any]
    confidence: LogisticField | None = None

    def __post_init__(self) -> None:
        if self.join.features != JOIN_FEATURES:
            raise ConfigurationError("the form model's join features differ from this version's; retrain it")
        if self.question.features != ROLE_FEATURES or self.answer.features != ROLE_FEATURES:
            raise ConfigurationError("the form model's role features differ from this version's; retrain it")
        if self.pairs.features != PAIR_INPUTS:
            raise ConfigurationError("the form model's pair features differ from this version's; retrain it")
        if self.confidence is not None and self.confidence.features != CONFIDENCE_FEATURES:
            raise ConfigurationError("the form model's confidence features differ from this version's; retrain it")
        if not 0.0 <= self.decision <= 1.0:
            raise ConfigurationError(f"the form model's decision score must be in [0, 1], got {self.decision}")

    def roles(self, rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float64]:
        """Per segment (a row of `ROLE_FEATURES`), the chance it is a question and the chance it is an answer."""
        if not rows:
            return np.zeros((0, 2))
        return np.column_stack([self.question.probabilities(rows), self.answer.probabilities(rows)])

    def pair_scores(self, rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float64]:
        """Per candidate (a row of `PAIR_INPUTS`), the chance that the pair is one of the form's."""
        if not rows:
            return np.zeros(0)
        return self.pairs.probabilities(rows)

    def confidences(self, rows: Sequence[Sequence[float]], scores: Sequence[float]) -> list[float]:
        """Per chosen pair (a row of `CONFIDENCE_FEATURES` and its pair score), the chance it is right."""
        if not rows:
            return []
        if self.confidence is None:
            return [float(s) for s in scores]
        return [float(p) for p in self.confidence.probabilities(rows)]

    def to_dict(self) -> dict[str, Any]:
        out = {
            **self.meta,
            "decision": self.decision,
            "join": self.join.to_dict(),
            "question": self.question.to_dict(),
            "answer": self.answer.to_dict(),
            "pairs": self.pairs.to_dict(),
        }
        if self.confidence is not None:
            out["confidence"] = self.confidence.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormModel:
        try:
            return cls(
                Trees.from_dict(data["join"]),
                Trees.from_dict(data["question"]),
                Trees.from_dict(data["answer"]),
                Trees.from_dict(data["pairs"]),
                float(data["decision"]),
                {k: v for k, v in data.items() if k not in _PARTS},
                LogisticField.from_dict(data["confidence"]) if "confidence" in data else None,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"form pair model is malformed ({exc}); retrain it with fields_forms_train"
            ) from exc

    def with_confidence(self, confidence: LogisticField | None) -> FormModel:
        return FormModel(self.join, self.question, self.answer, self.pairs, self.decision, self.meta, confidence)

    @classmethod
    def load(cls, path: Path | None = None) -> FormModel:
        """The model at `path`, else the one shipped in the package."""
        return cls.from_dict(read_model(MODEL_FILE, path, "form pair model"))


_PARTS = ("join", "question", "answer", "pairs", "decision", "confidence")
