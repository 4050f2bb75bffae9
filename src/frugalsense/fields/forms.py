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
from frugalsense.fields.forms_model import FormModel, Trees
from frugalsense.fields.types import Evidence
from frugalsense.profiles import Profile, load_profile
from frugalsense.results import TextLine

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.ledger import Meter
    from frugalsense.results import AnalysisResult

__all__ = [
    "PROFILE_TASK",
    "FormFields",
    "FormPair",
    "extract_form_fields",
    "form_threshold",
    "join_segments",
    "link_pairs",
    "read_form",
    "scored_candidates",
]

#: the profile holding the emission threshold (its one threshold, between the rungs "emit" and "abstain")
PROFILE_TASK = "fields-forms"

_model: FormModel | None = None


def _default_model() -> FormModel:
    global _model
    if _model is None:
        _model = FormModel.load()
    return _model


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


def scored_candidates(page: FormPage, model: FormModel) -> list[tuple[float, PairCandidate]]:
    """Every candidate pair of the page with the pair model's score, in the candidates' order."""
    candidates = pair_candidates(page)
    if not candidates:
        return []
    roles = model.roles(role_features(page))
    rows = [
        (*c.features, *roles[c.question.index], *roles[c.answer.index])  # the order of forms_model.PAIR_INPUTS
        for c in candidates
    ]
    return list(zip((float(p) for p in model.pair_scores(rows)), candidates, strict=True))


def link_pairs(page: FormPage, model: FormModel, threshold: float) -> FormFields:
    """The page's pairs: candidates taken best first while their score reaches the model's decision, each answer
    given to one question and no segment both a question and an answer; emitted when the score also reaches
    `threshold`."""
    ranked = sorted(scored_candidates(page, model), key=lambda sc: -sc[0])
    questions: set[int] = set()
    answers: set[int] = set()
    chosen: list[tuple[float, PairCandidate]] = []
    for score, candidate in ranked:
        if score < model.decision:
            break
        q, a = candidate.question.index, candidate.answer.index
        if a in answers or a in questions or q in answers:
            continue
        questions.add(q)
        answers.add(a)
        chosen.append((score, candidate))
    result = FormFields(threshold=threshold)
    for score, c in sorted(chosen, key=lambda sc: (sc[1].question.index, sc[1].answer.index)):
        emitted = score >= threshold
        pair = FormPair(
            c.question.text, c.answer.text, min(1.0, max(0.0, score)), c.question.parts, c.answer.parts, emitted
        )
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
    chosen = model or _default_model()
    cut = form_threshold(profile_dir=profile_dir) if threshold is None else float(threshold)
    return link_pairs(join_segments(FormPage.from_lines(lines), chosen.join), chosen, cut)


def read_form(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer | None = None,
    *,
    threshold: float | None = None,
    meter: Meter | None = None,
) -> tuple[FormFields, AnalysisResult]:
    """Read a form (a picture or a one-page PDF) with the text ladder and extract its key-value pairs.

    The OCR runs through `Analyzer.analyze` with the ``text`` feature, so its cost is on the result's receipt;
    the pairs of the first page are returned with the analysis.
    """
    from frugalsense.analyze import Analyzer

    chosen = analyzer or Analyzer()
    analysis = chosen.analyze(source, ["text"], meter=meter)
    lines = (analysis.pages[0].text or []) if analysis.pages else []
    fields = extract_form_fields(lines, threshold=threshold, profile_dir=chosen.settings.profile_dir)
    return fields, analysis
