"""Receipt fields from a page's OCR lines: vendor, its address, date, total and tax, each with a confidence and
the lines it came from, left out ("not found") when the model is unsure.

Layout rules propose candidates (fields.candidates); a small logistic model per field (fields.scorer, trained
offline on SROIE receipts, see docs/fields.md) gives each one the probability that it is right; the best one is
the field's answer, emitted when that probability reaches the threshold of the ``fields-receipts`` profile
(calibrated with Learn-then-Test so that emitted fields are right with the profile's target precision).

    >>> from frugalsense.results import TextLine
    >>> def line(text, y, x=40):
    ...     return TextLine(text, ((x, y), (x + 300, y), (x + 300, y + 20), (x, y + 20)), 0.98)
    >>> page = [line("KEDAI MAJU SDN BHD", 10), line("(123456-X)", 35), line("NO.5, JALAN SAGU 18,", 60),
    ...         line("81100 JOHOR BAHRU, JOHOR.", 85), line("Date: 25/12/2018 8:13PM", 130),
    ...         line("SUBTOTAL", 170), line("8.49", 170, 380), line("TOTAL RM", 200), line("9.00", 200, 380),
    ...         line("CASH", 230), line("10.00", 230, 380), line("CHANGE", 260), line("1.00", 260, 380)]
    >>> found = extract_receipt_fields(page, threshold=0.0)
    >>> found.value("vendor"), found.value("date"), found.value("total"), found.get("total").currency
    ('KEDAI MAJU SDN BHD', '2018-12-25', '9.00', 'MYR')
    >>> found.value("vendor_address")
    'NO.5, JALAN SAGU 18, 81100 JOHOR BAHRU, JOHOR.'
    >>> [e.line for e in found.get("total").evidence]
    [8]
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from frugalsense.fields.amounts import find_amounts
from frugalsense.fields.candidates import Candidate, candidates, compact
from frugalsense.fields.layout import Line, ReceiptLayout
from frugalsense.fields.lines import check_sum, line_items
from frugalsense.fields.scorer import FieldScorer, confidence_features
from frugalsense.fields.types import Evidence, ExtractedField, ReceiptFields
from frugalsense.profiles import Profile, load_profile
from frugalsense.results import TextLine

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.ledger import Meter
    from frugalsense.results import AnalysisResult

__all__ = [
    "PROFILE_TASK",
    "SCORED_FIELDS",
    "USER_MODEL_FILE",
    "best_candidate",
    "default_scorer",
    "extract_receipt_fields",
    "read_receipt",
    "receipt_threshold",
    "score_candidates",
]

#: the profile holding the emission threshold (its one threshold, between the rungs "emit" and "abstain")
PROFILE_TASK = "fields-receipts"
#: fields chosen by the trained scorer; tax is found by rules (SROIE labels no tax to train on)
SCORED_FIELDS = ("vendor", "vendor_address", "date", "total")

#: a model trained on the user's receipts (``frugalsense calibrate fields``), kept beside its profile in
#: `Settings.profile_dir`; it wins over the shipped one, as the profile does
USER_MODEL_FILE = "fields-receipts-model.json"

_scorers: dict[str, tuple[float, FieldScorer]] = {}  # model file (or "") -> (its modification time, the model)


def default_scorer(profile_dir: Path | None = None) -> FieldScorer:
    """The model of `profile_dir` when it holds one, else the shipped model; each read once (again if the file
    changes)."""
    path = Path(profile_dir) / USER_MODEL_FILE if profile_dir is not None else None
    if path is None or not path.is_file():
        path = None
    key = str(path or "")
    stamp = path.stat().st_mtime if path is not None else 0.0
    cached = _scorers.get(key)
    if cached is None or cached[0] != stamp:
        cached = _scorers[key] = (stamp, FieldScorer.load(path))
    return cached[1]


def receipt_threshold(profile: Profile | None = None, profile_dir: Path | None = None) -> float:
    """The emission threshold of the ``fields-receipts`` profile (the user's `profile_dir` wins)."""
    chosen = profile or load_profile(PROFILE_TASK, profile_dir)
    return float(chosen.thresholds[0]) if chosen.thresholds else 0.0


def score_candidates(layout: ReceiptLayout, field: str, scorer: FieldScorer) -> list[tuple[float, Candidate]]:
    """Every candidate for `field` with the selector's score, best first."""
    found = candidates(layout, field)
    probabilities = scorer.probabilities(field, [c.features for c in found])
    return sorted(zip(probabilities, found, strict=True), key=lambda pc: -pc[0])


def best_candidate(
    layout: ReceiptLayout, field: str, scorer: FieldScorer
) -> tuple[Candidate, float, tuple[float, ...]] | None:
    """The field's chosen candidate, its confidence, and the second-stage features that gave it."""
    ranked = score_candidates(layout, field, scorer)
    if not ranked:
        return None
    features = confidence_features([p for p, _ in ranked[:2]], [line.confidence for line in ranked[0][1].lines])
    return ranked[0][1], scorer.confidence(field, features), features


def extract_receipt_fields(
    lines: Sequence[TextLine],
    *,
    threshold: float | None = None,
    scorer: FieldScorer | None = None,
    profile_dir: Path | None = None,
) -> ReceiptFields:
    """The fields of one receipt page from its OCR lines (`PageResult.text`).

    `threshold` overrides the profile's: 0 emits every field found (abstention off).
    """
    model = scorer or default_scorer(profile_dir)
    cut = receipt_threshold(profile_dir=profile_dir) if threshold is None else float(threshold)
    layout = ReceiptLayout.from_lines(lines)
    result = ReceiptFields(threshold=cut)
    for name in SCORED_FIELDS:
        chosen = best_candidate(layout, name, model)
        if chosen is not None:
            _place(result, _field(chosen[0], chosen[1], cut), cut)
    total = result.fields.get("total") or result.unsure.get("total")
    tax = _tax(layout, total)
    if tax is not None:
        _place(result, tax, cut)
    result.line_items = line_items(layout)
    if total is not None and result.line_items:
        _check_total(result, total, cut)
    return result


def _check_total(result: ReceiptFields, total: ExtractedField, cut: float) -> None:
    """The sum check (fields.lines.check_sum) and what it does to the total's confidence.

    When two or more lines, none of them the total's own line, add up to the total, the check halves the
    doubt left in it: ``c -> c + (1 - c) / 2`` (0.6 becomes 0.8). Two independent readings of the receipt agree
    on the number, so a wrong total would need both wrong the same way. The raise is a rule, not part of the
    calibration (the profile's guarantee covers the model's confidence; docs/fields.md measures the effect).
    """
    tax = result.fields.get("tax") or result.unsure.get("tax")
    check = check_sum(result.line_items, Decimal(total.value), Decimal(tax.value) if tax is not None else None)
    own_lines = {e.line for item in result.line_items for e in item.evidence}
    if check.sum_matches and len(result.line_items) >= 2 and not own_lines & {e.line for e in total.evidence}:
        raised = replace(total, confidence=total.confidence + (1.0 - total.confidence) / 2.0)
        result.fields.pop("total", None)
        result.unsure.pop("total", None)
        _place(result, replace(raised, emitted=raised.confidence >= cut), cut)
        check = replace(check, total_confidence_before=total.confidence)
    result.checks = check


def read_receipt(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    threshold: float | None = None,
    meter: Meter | None = None,
) -> tuple[ReceiptFields, AnalysisResult]:
    """Read a receipt (a picture or a one-page PDF) with the text ladder and extract its fields.

    The OCR runs through `Analyzer.analyze` with the ``text`` feature, so its cost is on the result's receipt;
    the fields of the first page are returned with the analysis. `threshold` overrides the profile's (0: emit
    every field found). For every page of a document, with the extraction on the receipt too, use
    `fields.document.read_document` (the ``fields`` feature).
    """
    analysis = analyzer.analyze(source, ["text"], meter=meter)
    lines = (analysis.pages[0].text or []) if analysis.pages else []
    fields = extract_receipt_fields(lines, threshold=threshold, profile_dir=analyzer.settings.profile_dir)
    return fields, analysis


def _evidence(lines: Sequence[Line]) -> tuple[Evidence, ...]:
    return tuple(Evidence(line.index, line.box, line.text) for line in lines)


def _field(candidate: Candidate, probability: float, cut: float) -> ExtractedField:
    return ExtractedField(
        name=candidate.field,
        value=candidate.value,
        text=candidate.text,
        confidence=min(1.0, max(0.0, probability)),
        evidence=_evidence(candidate.lines),
        currency=candidate.currency,
        emitted=probability >= cut,
    )


def _place(result: ReceiptFields, found: ExtractedField, cut: float) -> None:
    if found.confidence >= cut:
        result.fields[found.name] = found
    else:
        result.unsure[found.name] = ExtractedField(
            found.name, found.value, found.text, found.confidence, found.evidence, found.currency, emitted=False
        )


_TAX_WORDS = ("GST", "SST", "TAX", "VAT", "CUKAI")
_TAX_DOUBT = ("INCL", "EXCL", "SUMMARY", "INVOICE", "ID", "NO.")  # rows that name a tax without being its amount
_RATE = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")


def _tax(layout: ReceiptLayout, total: ExtractedField | None) -> ExtractedField | None:
    """The tax amount by rule: an amount on a row that names a tax, at most 30% of the total.

    Its confidence is a rule's, not a model's: 0.9 when a printed rate checks out against the total (tax = rate x
    net within a cent or two), 0.6 when the row names a tax but nothing checks it. SROIE labels no tax, so
    these numbers are not calibrated (docs/fields.md).
    """
    total_value = Decimal(total.value) if total is not None else None
    best: tuple[float, float, ExtractedField] | None = None  # confidence, then the lowest row on the page
    for row in layout.rows:
        text = compact(row.text)
        if not any(w in text for w in _TAX_WORDS) or any(w in text for w in ("REG", "ID:", "NO:")):
            continue
        rates = [Decimal(r.replace(",", ".")) for r in _RATE.findall(row.text)]
        for line in row.lines:
            for amount in find_amounts(line.text):
                value = amount.value
                if amount.decimals != 2 or value <= 0 or line.text[amount.end : amount.end + 1] == "%":
                    continue
                if total_value is not None and value > total_value * Decimal("0.3"):
                    continue  # no sales tax is near 30%: this is a total or a net amount
                confidence = 0.6
                if total_value is not None and any(
                    _rate_checks(value, total_value, r) for r in rates or [Decimal(6)]
                ):
                    confidence = 0.9
                if any(w in text for w in _TAX_DOUBT):
                    confidence = round(confidence - 0.2, 2)
                found = ExtractedField(
                    "tax", amount.plain(), amount.text, confidence, _evidence([line]),
                    amount.currency or (total.currency if total else None),
                )  # fmt: skip
                if best is None or (confidence, line.y0) > best[:2]:
                    best = (confidence, line.y0, found)
    return best[2] if best else None


def _rate_checks(tax: Decimal, total: Decimal, rate: Decimal) -> bool:
    """Tax at `rate` per cent of a net amount, the total being net + tax or net alone."""
    if rate <= 0:
        return False
    on_gross = total * rate / (Decimal(100) + rate)
    on_net = total * rate / Decimal(100)
    return min(abs(tax - on_gross), abs(tax - on_net)) <= Decimal("0.02")
