"""Bodies of the ``fields`` feature and ``POST /v1/documents/fields``: a receipt's or invoice's fields with their
confidence and evidence, the fields left out and why, its line items and the sum check (the JSON
`ReceiptFields.to_dict` and `DocumentFields.to_dict` write), or with ``kind=form`` a form's question and answer
pairs (`DocumentForms.to_dict`; docs/fields.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from frugalsense.api.schemas._base import Body
from frugalsense.api.schemas.analysis import Box, CostReceipt, PagePreview

__all__ = [
    "DocumentFields",
    "DocumentForms",
    "DocumentPage",
    "FieldEvidence",
    "FieldNotFound",
    "FieldValue",
    "FormPage",
    "FormPair",
    "LineItem",
    "ReceiptFieldValues",
    "ReceiptFields",
    "SumCheck",
]


class FieldEvidence(Body):
    """An OCR line a field was read from (or, for a form, the piece of one): its place in the page's text lines,
    its box and its text."""

    line: int = Field(description="index of the line in the page's text lines")
    box: Box
    text: str


class FieldValue(Body):
    """A field's value (normalised), the text it was read from, how sure the model is, and the evidence."""

    value: str = Field(description="normalised: an ISO 8601 date, an amount as a plain decimal such as 1234.50")
    text: str = Field(description="as the document shows it (an amount keeps a printed currency sign)")
    confidence: float = Field(description="the model's probability that the value is right, in [0, 1]")
    evidence: list[FieldEvidence]
    currency: str | None = Field(default=None, description="amounts only: ISO 4217, when the document writes one")


class ReceiptFieldValues(Body):
    """The fields reported: each present only when its confidence reached the threshold."""

    vendor: FieldValue | None = None
    vendor_address: FieldValue | None = None
    date: FieldValue | None = None
    total: FieldValue | None = None
    tax: FieldValue | None = None


class FieldNotFound(Body):
    """A field left out: ``abstained`` (a value was found but the model is unsure of it: its confidence is
    below the threshold) or ``absent`` (nothing on the page could be it)."""

    field: Literal["vendor", "vendor_address", "date", "total", "tax"]
    reason: Literal["abstained", "absent"]
    confidence: float | None = Field(default=None, description="abstained: the best guess's confidence")


class LineItem(Body):
    """A line of the receipt, found by layout rules (no confidence of its own; see the sum check)."""

    description: str
    quantity: str | None = Field(description="as a plain decimal; null when the line prints none")
    unit_price: str | None = Field(description="as a plain decimal; null when the line prints none")
    amount: str = Field(description="the line's amount, a plain decimal (negative for a discount)")
    evidence: list[FieldEvidence]


class SumCheck(Body):
    """The total against the line items (empty when the page lacks either)."""

    sum_matches: bool | None = Field(
        default=None, description="the total equals the lines' sum, or their sum plus the tax, within 0.02"
    )
    lines_sum: str | None = None
    total: str | None = Field(default=None, description="the total checked (reported or abstained)")
    tax_added: str | None = Field(default=None, description="the tax added to the lines' sum to match, if any")
    difference: str | None = Field(default=None, description="the total minus what it was compared with")
    total_confidence_before: float | None = Field(
        default=None, description="present when the match raised the total's confidence: its value before"
    )


class ReceiptFields(Body):
    """A page's fields (the ``fields`` feature of /v1/analyze)."""

    fields: ReceiptFieldValues
    not_found: list[FieldNotFound] = Field(description="every field not reported, and why")
    line_items: list[LineItem]
    checks: SumCheck
    threshold: float = Field(description="the confidence a field needs to be reported (fields-receipts profile)")


class DocumentPage(ReceiptFields):
    """One page of the document and its fields."""

    page: int | None = Field(description="page number of a PDF (null for a photo)")
    width: int
    height: int
    preview: PagePreview | None = Field(default=None, description="with previews: the first pages' pictures")


class DocumentFields(Body):
    """The fields of every page of one receipt or invoice, and what reading them cost."""

    name: str
    kind: str
    mime: str
    sha256: str
    pages: list[DocumentPage]
    receipt: CostReceipt
    previews_omitted: int | None = Field(
        default=None, description="with previews: how many pages past the cap got no picture"
    )


class FormPair(Body):
    """A question of a form and its answers, reported because the model is sure enough of each pair."""

    question: str = Field(description="as the form prints it, read by OCR (a printed colon kept)")
    answers: list[str] = Field(description="in reading order; several when the question heads a table's column")
    confidence: float = Field(
        description="the model's probability that the pair is right, in [0, 1]; the lowest of its answers'"
    )
    question_evidence: list[FieldEvidence]
    answer_evidence: list[FieldEvidence] = Field(description="the pieces of every answer, in the answers' order")


class FormPage(Body):
    """One page of a form: its question and answer pairs."""

    page: int | None = Field(description="page number of a PDF (null for a photo)")
    width: int
    height: int
    pairs: list[FormPair]
    threshold: float = Field(description="the confidence a pair needs to be reported (fields-forms profile)")
    abstained: int = Field(
        description="pairs the model proposed but is unsure of (below the threshold): not reported"
    )
    preview: PagePreview | None = Field(default=None, description="with previews: the first pages' pictures")


class DocumentForms(Body):
    """The question and answer pairs of every page of one form (``kind=form``), and what reading them cost."""

    name: str
    kind: str
    mime: str
    sha256: str
    pages: list[FormPage]
    receipt: CostReceipt
    previews_omitted: int | None = Field(
        default=None, description="with previews: how many pages past the cap got no picture"
    )
