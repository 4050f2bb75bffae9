"""Key-value pairs from a scanned form: each question with its answer, a confidence and the boxes they came from,
left out when the model is unsure.

The page's OCR lines are cut into segments (fields.forms_layout: "Date: 9/3/92" becomes "Date:" and "9/3/92")
and pieces of one entry are joined again (fields.forms_join: an answer written over two lines); layout rules
propose (question, answer) pairs where forms put answers, to the right on the same row, below, or down a
table's column (fields.forms_features); small boosted trees trained offline on FUNSD forms (fields.forms_model,
docs/fields.md) score each join, each segment's role and each pair. Pairs are taken best first, each answer
given to one question and no segment both asking and answering; a pair is proposed when its score reaches the
model's `decision` and emitted when it also reaches the ``fields-forms`` profile's threshold (calibrated with
Learn-then-Test for a precision target). Pairs below it are kept as `unsure`.

    >>> from frugalsense.results import TextLine
    >>> def line(text, x, y, w=120):
    ...     return TextLine(text, ((x, y), (x + w, y), (x + w, y + 14), (x, y + 14)), 0.97)
    >>> page = [line("PURCHASE ORDER", 200, 20), line("Date: 9/3/92", 40, 80), line("To: J. S. Wigand", 40, 110),
    ...         line("Brand:", 40, 140, 50), line("Winston Lights", 200, 140)]
    >>> found = extract_form_fields(page, threshold=0.0)
    >>> [(p.question, p.answer) for p in found.pairs]
    [('Date:', '9/3/92'), ('To:', 'J. S. Wigand'), ('Brand:', 'Winston Lights')]
    >>> [e.line for e in found.pairs[2].answer_evidence]
    [4]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalsense.fields.forms_features import PairCandidate, pair_candidates, role_features
from frugalsense.fields.forms_join import join_candidates
from frugalsense.fields.forms_layout import FormPage
from frugalsense.fields.forms_model import FormModel, Trees, confidence_features
from frugalsense.fields.types import Evidence
from frugalsense.profiles import Profile, load_profile
from frugalsense.results import TextLine

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.ledger import Meter
    from frugalsense.results import AnalysisResult

__all__ = [
    "PROFILE_TASK",
    "USER_MODEL_FILE",
    "Choice",
    "FormFields",
    "FormPair",
    "choose_pairs",
    "default_model",
    "extract_form_fields",
    "form_threshold",
    "join_segments",
    "link_pairs",
    "read_form",
]

#: the profile holding the emission threshold (its one threshold, between the rungs "emit" and "abstain")
PROFILE_TASK = "fields-forms"

#: a model the user trained (``fields_forms_train --model-out``), read from `Settings.profile_dir` when present
USER_MODEL_FILE = "fields-forms-model.json"

_models: dict[str, tuple[float, FormModel]] = {}  # model file (or "") -> (its modification time, the model)


def default_model(profile_dir: Path | None = None) -> FormModel:
    """The model of `profile_dir` when it holds one, else the shipped model; each read once (again if the file
    changes)."""
    path = Path(profile_dir) / USER_MODEL_FILE if profile_dir is not None else None
    if path is not None and not path.is_file():
        path = None
    stamp = path.stat().st_mtime if path is not None else 0.0
    cached = _models.get(str(path or ""))
    if cached is None or cached[0] != stamp:
        cached = _models[str(path or "")] = (stamp, FormModel.load(path))
    return cached[1]


@dataclass(frozen=True)
class FormPair:
    """A question, its answer, how likely the pair is right, and the pieces of OCR lines each was read from."""

    question: str
    answer: str
    confidence: float
    question_evidence: tuple[Evidence, ...]
    answer_evidence: tuple[Evidence, ...]
    emitted: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "question_evidence": [e.to_dict() for e in self.question_evidence],
            "answer_evidence": [e.to_dict() for e in self.answer_evidence],
        }


@dataclass
class FormFields:
    """A form page's key-value pairs in reading order: those that cleared `threshold`, and the others (`unsure`,
    kept for review, never reported as answers)."""

    pairs: list[FormPair] = field(default_factory=list)
    unsure: list[FormPair] = field(default_factory=list)
    threshold: float = 0.0

    def __len__(self) -> int:
        return len(self.pairs)

    def as_dict(self) -> dict[str, list[str]]:
        """Each question's answers, in reading order (a table's column header has several)."""
        out: dict[str, list[str]] = {}
        for pair in self.pairs:
            out.setdefault(pair.question, []).append(pair.answer)
        return out

    def to_dict(self, *, with_unsure: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"pairs": [p.to_dict() for p in self.pairs], "threshold": self.threshold}
        if with_unsure:
            out["unsure"] = [p.to_dict() for p in self.unsure]
        return out


def form_threshold(profile: Profile | None = None, profile_dir: Path | None = None) -> float:
    """The emission threshold of the ``fields-forms`` profile (the user's `profile_dir` wins)."""
    chosen = profile or load_profile(PROFILE_TASK, profile_dir)
    return float(chosen.thresholds[0]) if chosen.thresholds else 0.0


def join_segments(page: FormPage, join: Trees) -> FormPage:
    """The page with the pieces of each entry joined (an answer over two lines, a name read as two boxes): the
    proposed joins that the join model (`FormModel.join`) gives at least one half."""
    candidates = join_candidates(page)
    if not candidates:
        return page
    scores = join.probabilities([c.features for c in candidates])
    return page.merged((c.first, c.second) for c, p in zip(candidates, scores, strict=True) if p >= 0.5)


@dataclass(frozen=True)
class Choice:
    """A pair the model chose: its pair score, the candidate, and the features of its confidence
    (forms_model.CONFIDENCE_FEATURES)."""

    score: float
    candidate: PairCandidate
    features: tuple[float, ...]


def choose_pairs(page: FormPage, model: FormModel) -> list[Choice]:
    """The page's pairs, best first: candidates taken while their score reaches the model's decision, each
    answer given to one question and no segment both a question and an answer."""
    candidates = pair_candidates(page)
    if not candidates:
        return []
    roles = model.roles(role_features(page))
    rows = [
        (*c.features, *roles[c.question.index], *roles[c.answer.index])  # the order of forms_model.PAIR_INPUTS
        for c in candidates
    ]
    scored = sorted(
        zip((float(p) for p in model.pair_scores(rows)), candidates, strict=True), key=lambda sc: -sc[0]
    )
    questions: set[int] = set()
    answers: set[int] = set()
    chosen: list[Choice] = []
    for score, candidate in scored:
        if score < model.decision:
            break
        q, a = candidate.question, candidate.answer
        if a.index in answers or a.index in questions or q.index in answers:
            continue
        questions.add(q.index)
        answers.add(a.index)
        runner_up = next((s for s, c in scored if c.answer.index == a.index and c.question.index != q.index), 0.0)
        role = (roles[q.index][0], roles[a.index][1])
        chosen.append(Choice(score, candidate, confidence_features(score, runner_up, q, a, role)))
    return chosen


def link_pairs(page: FormPage, model: FormModel, threshold: float) -> FormFields:
    """The page's pairs (`choose_pairs`) in reading order, each with its confidence; emitted when that reaches
    `threshold`, kept as `unsure` otherwise."""
    chosen = choose_pairs(page, model)
    confidences = model.confidences([c.features for c in chosen], [c.score for c in chosen])
    result = FormFields(threshold=threshold)
    ordered = sorted(
        zip(confidences, chosen, strict=True),
        key=lambda pc: (pc[1].candidate.question.index, pc[1].candidate.answer.index),
    )
    for confidence, choice in ordered:
        q, a = choice.candidate.question, choice.candidate.answer
        emitted = confidence >= threshold
        pair = FormPair(q.text, a.text, min(1.0, max(0.0, confidence)), q.parts, a.parts, emitted)
        (result.pairs if emitted else result.unsure).append(pair)
    return result


def extract_form_fields(
    lines: Sequence[TextLine],
    *,
    threshold: float | None = None,
    model: FormModel | None = None,
    profile_dir: Path | None = None,
) -> FormFields:
    """The key-value pairs of one form page from its OCR lines (`PageResult.text`).

    `threshold` overrides the profile's: 0 emits every pair the model proposes (abstention off).
    """
    chosen = model or default_model(profile_dir)
    cut = form_threshold(profile_dir=profile_dir) if threshold is None else float(threshold)
    return link_pairs(join_segments(FormPage.from_lines(lines), chosen.join), chosen, cut)


def read_form(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    threshold: float | None = None,
    meter: Meter | None = None,
) -> tuple[FormFields, AnalysisResult]:
    """Read a form (a picture or a one-page PDF) with the text ladder and extract its key-value pairs.

    The OCR runs through `analyzer.analyze` with the ``text`` feature, so its cost is on the result's receipt;
    the pairs of the first page are returned with the analysis. The settings' `profile_dir` may hold the user's
    own model and profile.

        fields, analysis = read_form("form.png", Analyzer())
        fields.as_dict()   # {"Date:": ["9/3/92"], ...}
    """
    analysis = analyzer.analyze(source, ["text"], meter=meter)
    lines = (analysis.pages[0].text or []) if analysis.pages else []
    fields = extract_form_fields(lines, threshold=threshold, profile_dir=analyzer.settings.profile_dir)
    return fields, analysis
