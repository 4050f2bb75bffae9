"""Offline: train the receipt field scorer on SROIE receipts and calibrate its emission threshold.

    python -m frugalsense.calibration.fields_train --ocr-cache DIR                 # target 0.97: certifies nothing
    python -m frugalsense.calibration.fields_train --ocr-cache DIR --target 0.8    # the shipped profile

Split: the receipts sorted by file name; those at even positions (0, 2, 4, ...) train and calibrate, the odd
ones are never looked at here (bench/fields.py reports on them). OCR runs once per receipt through the library's
text ladder (`Analyzer.analyze(..., ["text"])`) and is cached as JSON in `--ocr-cache`.

Training, per field, two logistic regressions (scikit-learn, L2, standardised features) written as plain
coefficients to ``data/fields/receipts-model.json`` (the server scores with numpy, never imports scikit-learn):

- the selector, over every candidate (fields.candidates), labelled against the key file: a date or total is right
  when its value equals the key's (ISO date, decimal amount), a vendor or address when its text equals the key's
  under SROIE's normalisation (`sroie_normalise`), or, when no candidate does (OCR misread a character), the one
  closest to it if at least 0.85 similar, so the selector still learns where the field sits;
- the confidence model, over the selector's cross-fitted choices (each receipt's choice made by a selector that
  did not see it), labelled by the task-3 rule alone: the chance that the chosen text is exactly right.

Threshold (`calibrate_threshold`): scores of the training receipts cross-fitted once more (both stages fitted on
the other folds), then Learn-then-Test with a Bonferroni family over `THRESHOLD_GRID`, saved as the
``fields-receipts`` profile. docs/fields.md is the data card and states what is certified.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frugalsense.calibration.ltt import NEVER, hoeffding_bentkus_pvalue
from frugalsense.errors import ConfigurationError
from frugalsense.fields.amounts import parse_amount
from frugalsense.fields.candidates import FEATURES, Candidate, candidates
from frugalsense.fields.dates import parse_date
from frugalsense.fields.layout import ReceiptLayout
from frugalsense.fields.receipts import PROFILE_TASK, SCORED_FIELDS
from frugalsense.fields.scorer import (
    CONFIDENCE_FEATURES,
    MODEL_FILE,
    FieldModel,
    FieldScorer,
    LogisticField,
    confidence_features,
)
from frugalsense.profiles import Profile
from frugalsense.results import TextLine

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = [
    "SROIE_KEYS",
    "THRESHOLD_GRID",
    "Prepared",
    "Receipt",
    "Scored",
    "ThresholdCalibration",
    "calibrate_threshold",
    "cross_fitted",
    "field_is_right",
    "fit",
    "load_receipts",
    "ocr_cached",
    "prepare",
    "score",
    "split",
    "sroie_normalise",
]

#: our field names to the keys of SROIE's key files
SROIE_KEYS = {"vendor": "company", "vendor_address": "address", "date": "date", "total": "total"}
_SIMILAR = 0.85
PACKAGE = Path(__file__).resolve().parents[1]


def sroie_normalise(text: str) -> str:
    """SROIE task 3's comparison: case and white space do not count (the labels upper-case printed lower-case
    names and space commas inconsistently; OCR drops spaces).

    >>> sroie_normalise("Book Ta .K (Taman  Daya) SDN BHD") == sroie_normalise("BOOK TA.K(TAMAN DAYA)SDN BHD")
    True
    """
    return re.sub(r"\s+", "", text).upper()


@dataclass(frozen=True)
class Receipt:
    """One receipt: its OCR lines (from the text ladder), what reading it cost, and its key fields."""

    stem: str
    lines: list[TextLine]
    cpu_s: float
    truth: dict[str, str]

    def layout(self) -> ReceiptLayout:
        return ReceiptLayout.from_lines(self.lines)


def _lines(page: dict[str, Any]) -> list[TextLine]:
    return [
        TextLine(
            ln["text"], tuple((float(x), float(y)) for x, y in ln["quad"]), float(ln["confidence"]), ln["engine"]
        )
        for ln in page.get("text") or []
    ]


def ocr_cached(image: Path, cache: Path) -> tuple[list[TextLine], float]:
    """The text ladder's lines for `image` and their CPU-seconds, read once and kept in `cache` as JSON."""
    target = cache / f"{image.stem}.json"
    if not target.is_file():
        result = _analyzer().analyze(image, ["text"])
        cache.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({**result.to_dict(), "stem": image.stem}), encoding="utf-8")
    data = json.loads(target.read_text(encoding="utf-8"))
    return _lines(data["pages"][0]), float(data["receipt"]["cpu_seconds"])


@functools.cache
def _analyzer() -> Analyzer:
    from frugalsense.analyze import Analyzer

    return Analyzer()


def load_receipts(sroie: Path, cache: Path) -> list[Receipt]:
    """Every SROIE receipt in `sroie` (``img/``, ``key/``), sorted by file name, with its cached OCR."""
    out = []
    for image in sorted((sroie / "img").glob("*.jpg")):
        truth = json.loads((sroie / "key" / f"{image.stem}.json").read_text(encoding="utf-8"))
        lines, cpu = ocr_cached(image, cache)
        out.append(Receipt(image.stem, lines, cpu, {k: str(v) for k, v in truth.items()}))
    return out


def split(receipts: Sequence[Receipt]) -> tuple[list[Receipt], list[Receipt]]:
    """(even positions: train and calibrate, odd positions: report), in file-name order."""
    ordered = sorted(receipts, key=lambda r: r.stem)
    return ordered[0::2], ordered[1::2]


def field_is_right(field: str, value: str, text: str, truth: str, *, by_value: bool = False) -> bool:
    """Whether an extracted field matches SROIE's key: its text as printed under `sroie_normalise` (the task-3
    rule: the key writes a total as printed, "RM 3.30" or "9.00"), or with `by_value` by meaning (the same ISO
    date, the same amount).

    >>> field_is_right("total", "9.00", "9.00", "9.00"), field_is_right("total", "8.20", "S8.20", "$8.20")
    (True, False)
    >>> field_is_right("total", "8.20", "S8.20", "$8.20", by_value=True)
    True
    >>> field_is_right("date", "2018-03-05", "05Mar2018", "05 MAR 2018")
    True
    """
    if by_value and field == "date":
        parsed = parse_date(truth)
        return parsed is not None and parsed.iso == value
    if by_value and field == "total":
        amount = parse_amount(truth)
        return amount is not None and str(amount.value.normalize()) == str(_decimal(value).normalize())
    return sroie_normalise(text) == sroie_normalise(truth)


def _decimal(value: str) -> Any:
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(value)
    except InvalidOperation:
        return Decimal(-1)


def _labels(field: str, found: Sequence[Candidate], truth: str) -> list[int]:
    """Training labels for one receipt's candidates of `field` (see the module's docstring)."""
    if field in ("date", "total"):
        return [int(field_is_right(field, c.value, c.text, truth, by_value=True)) for c in found]
    exact = [int(field_is_right(field, c.value, c.text, truth)) for c in found]
    if any(exact) or not found:
        return exact
    want = sroie_normalise(truth)
    similarity = [SequenceMatcher(None, sroie_normalise(c.text), want).ratio() for c in found]
    best = int(np.argmax(similarity))
    return [int(i == best and similarity[i] >= _SIMILAR) for i in range(len(found))]


@dataclass(frozen=True)
class Prepared:
    """A receipt's candidates for every scored field, with their features and training labels, computed once."""

    receipt: Receipt
    found: dict[str, list[Candidate]]
    labels: dict[str, list[int]]


def prepare(receipts: Sequence[Receipt]) -> list[Prepared]:
    out = []
    for receipt in receipts:
        layout = receipt.layout()
        found = {field: candidates(layout, field) for field in SCORED_FIELDS}
        labels = {f: _labels(f, found[f], receipt.truth[SROIE_KEYS[f]]) for f in SCORED_FIELDS}
        out.append(Prepared(receipt, found, labels))
    return out


def _logistic_fit(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], c: float) -> LogisticField:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigurationError(
            "training the fields models needs scikit-learn: pip install 'frugalsense[train]'"
        ) from exc

    if len(set(y.tolist())) < 2:
        raise ValueError(f"no right and wrong examples to learn {names[:3]}... from")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit((x - mean) / scale, y)
    return LogisticField(names, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def _selectors(prepared: Sequence[Prepared], c: float) -> dict[str, LogisticField]:
    out = {}
    for field in SCORED_FIELDS:
        rows = [cand.features for p in prepared for cand in p.found[field]]
        labels = [label for p in prepared for label in p.labels[field]]
        x = np.asarray(rows, np.float64).reshape(len(rows), len(FEATURES[field]))
        out[field] = _logistic_fit(x, np.asarray(labels), FEATURES[field], c)
    return out


@dataclass(frozen=True)
class Scored:
    """A receipt's chosen value for a field, its confidence, and whether it is right (task-3 rule; by value)."""

    stem: str
    field: str
    confidence: float
    features: tuple[float, ...]  # the second stage's
    right: bool
    right_by_value: bool
    value: str
    text: str


def score(prepared: Sequence[Prepared], scorer: FieldScorer) -> list[Scored]:
    """Each receipt's answer for every scored field (a receipt with no candidate gives none for that field)."""
    out = []
    for p in prepared:
        for field in SCORED_FIELDS:
            found = p.found[field]
            if not found:
                continue
            probabilities = scorer.probabilities(field, [c.features for c in found])
            order = np.argsort(-np.asarray(probabilities), kind="stable")
            best = found[int(order[0])]
            top = [probabilities[int(i)] for i in order[:2]]
            features = confidence_features(top, [line.confidence for line in best.lines])
            truth = p.receipt.truth[SROIE_KEYS[field]]
            out.append(
                Scored(
                    p.receipt.stem,
                    field,
                    scorer.confidence(field, features),
                    features,
                    field_is_right(field, best.value, best.text, truth),
                    field_is_right(field, best.value, best.text, truth, by_value=True),
                    best.value,
                    best.text,
                )
            )
    return out


def _folds(n: int, folds: int, seed: int) -> list[set[int]]:
    order = np.random.default_rng(seed).permutation(n)
    return [{int(i) for i in order[k::folds]} for k in range(folds)]


def fit(
    prepared: Sequence[Prepared],
    *,
    c: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> FieldScorer:
    """Selectors fitted on every receipt; confidence models fitted on the selectors' cross-fitted choices (each
    receipt's choice made by selectors that did not see it), labelled by the task-3 rule."""
    chosen: list[Scored] = []
    for held in _folds(len(prepared), folds, seed):
        selectors = _selectors([p for i, p in enumerate(prepared) if i not in held], c)
        plain = FieldScorer({f: FieldModel(s) for f, s in selectors.items()}, {})
        chosen.extend(score([p for i, p in enumerate(prepared) if i in held], plain))
    models = {}
    for field, selector in _selectors(prepared, c).items():
        rows = [s for s in chosen if s.field == field]
        x = np.asarray([s.features for s in rows], np.float64)
        y = np.asarray([int(s.right) for s in rows])
        confidence = _logistic_fit(x, y, CONFIDENCE_FEATURES, c) if len(set(y.tolist())) == 2 else None
        models[field] = FieldModel(selector, confidence)
    return FieldScorer(models, dict(meta or {}))


def cross_fitted(prepared: Sequence[Prepared], folds: int = 5, seed: int = 0) -> list[Scored]:
    """Every receipt scored by a whole model (both stages) fitted on the other folds: scores as on new receipts."""
    out: list[Scored] = []
    for held in _folds(len(prepared), folds, seed + 1):
        model = fit([p for i, p in enumerate(prepared) if i not in held], folds=folds, seed=seed)
        out.extend(score([p for i, p in enumerate(prepared) if i in held], model))
    return out


#: thresholds tested, fixed before any data is seen (Bonferroni needs a fixed family)
THRESHOLD_GRID = (*(round(0.30 + 0.05 * i, 2) for i in range(14)), 0.99)


@dataclass(frozen=True)
class ThresholdCalibration:
    """The lowest certified threshold (None: nothing certified, emit nothing) and the test behind it."""

    threshold: float | None
    target: float
    risk: float
    tested: list[dict[str, float]]  # per threshold: emitted, errors, precision, p-value

    def to_profile(self, provenance: dict[str, Any]) -> Profile:
        chosen = next((t for t in self.tested if t["threshold"] == self.threshold), None)
        return Profile(
            task=PROFILE_TASK,
            rungs=["emit", "abstain"],
            thresholds=[NEVER if self.threshold is None else self.threshold],
            target=self.target,
            risk=self.risk,
            params={"precision_target": self.target, "fields": list(SCORED_FIELDS)},
            calibration={
                "created": datetime.now(UTC).date().isoformat(),
                "method": "ltt-bonferroni-hb (precision of emitted fields, conditional on emission)",
                "certified": self.threshold is not None,
                "fallback": self.threshold is None,
                "chosen": chosen,
                "grid": list(THRESHOLD_GRID),
                "tested": self.tested,
                **provenance,
            },
        )


def calibrate_threshold(scored: Sequence[Scored], *, target: float, risk: float) -> ThresholdCalibration:
    """The lowest threshold whose emitted fields are right with precision >= `target`, with probability >=
    ``1 - risk`` over the calibration draw (Learn-then-Test with a Bonferroni family).

    For each threshold of `THRESHOLD_GRID` the null "precision of the fields emitted at this threshold < target"
    is tested on the fields it emits: given how many it emits, their errors are independent draws from the
    emitted fields' error rate, so the Hoeffding–Bentkus p-value (`ltt.hoeffding_bentkus_pvalue`, errors in
    {0, 1} against ``1 - target``) is valid; a threshold is certified when its p-value is at most
    ``risk / len(THRESHOLD_GRID)``, which holds the chance of certifying any bad threshold under `risk`. A
    fixed-sequence walk from the top would stop at once: the highest thresholds emit too few fields to test.

    >>> many_right = [Scored("r", "date", 0.9, (), True, True, "", "")] * 200
    >>> calibrate_threshold(many_right, target=0.97, risk=0.1).threshold
    0.3
    """
    tested = []
    certified = []
    for threshold in THRESHOLD_GRID:
        errors = np.asarray([0.0 if s.right else 1.0 for s in scored if s.confidence >= threshold])
        p = hoeffding_bentkus_pvalue(errors, 1.0 - target) if len(errors) else 1.0
        tested.append(
            {
                "threshold": threshold,
                "emitted": len(errors),
                "errors": int(errors.sum()),
                "precision": round(1.0 - float(errors.mean()), 4) if len(errors) else 1.0,
                "p_value": float(f"{p:.4g}"),
            }
        )
        if p <= risk / len(THRESHOLD_GRID):
            certified.append(threshold)
    return ThresholdCalibration(min(certified) if certified else None, target, risk, tested)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sroie", type=Path, default=Path("../shared/eval/ocr-sroie"), help="SROIE folder")
    parser.add_argument("--ocr-cache", type=Path, required=True, help="folder of cached OCR results (JSON)")
    parser.add_argument("--target", type=float, default=0.97, help="precision of emitted fields")
    parser.add_argument("--risk", type=float, default=0.1, help="allowed probability the target is missed")
    parser.add_argument("--model-out", type=Path, default=PACKAGE / "data" / "fields" / MODEL_FILE)
    parser.add_argument("--profile-out", type=Path, default=PACKAGE / "data" / "profiles" / f"{PROFILE_TASK}.json")
    args = parser.parse_args(argv)

    receipts = load_receipts(args.sroie, args.ocr_cache)
    train_receipts, _ = split(receipts)
    train = prepare(train_receipts)
    data = {
        "data": "ICDAR 2019 SROIE via ../shared/eval/ocr-sroie (CC BY 4.0, Huang et al. 2019)",
        "receipts": [r.stem for r in train_receipts],
        "split": "receipts sorted by file name; even positions (0, 2, 4, ...) train and calibrate",
    }
    scorer = fit(train, meta={"format": "frugalsense-fields-logistic", "version": 1, "trained_on": data})
    args.model_out.parent.mkdir(parents=True, exist_ok=True)
    args.model_out.write_text(json.dumps(scorer.to_dict(), indent=1) + "\n", encoding="utf-8")

    scored = cross_fitted(train)
    result = calibrate_threshold(scored, target=args.target, risk=args.risk)
    cut = NEVER if result.threshold is None else result.threshold
    emitted = [s for s in scored if s.confidence >= cut]
    precision = sum(s.right for s in emitted) / max(1, len(emitted))
    profile = result.to_profile(
        {
            **data,
            "scores": "cross-fitted: each training receipt scored by a model (both stages) fitted on the other 4 "
            "of 5 folds (seed 0)",
            "guarantee": f"fields emitted are right (SROIE task-3 rule) with precision >= {args.target}, with "
            f"probability >= {1 - args.risk} over the calibration draw",
            "fields_scored": len(scored),
            "emitted_share": round(len(emitted) / max(1, len(scored)), 4),
            "emitted_precision": round(precision, 4),
            # what the same test certifies at other targets on these receipts (None: nothing, emit nothing)
            "threshold_at_target": {
                str(t): calibrate_threshold(scored, target=t, risk=args.risk).threshold
                for t in (0.97, 0.95, 0.9, 0.85, 0.8, 0.75)
            },
            "command": f"python -m frugalsense.calibration.fields_train --ocr-cache DIR --target {args.target} "
            f"--risk {args.risk}",
        }
    )
    profile.save(args.profile_out)
    print(
        f"threshold {cut} (certified: {result.threshold is not None}); emitted {len(emitted)}/{len(scored)} "
        f"fields at precision {precision:.3f} on the cross-fitted training receipts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
