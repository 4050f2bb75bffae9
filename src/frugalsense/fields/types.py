"""Typed results of field extraction: a field's value, how sure it is, and the lines it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from frugalsense.results import Box

__all__ = [
    "FIELD_KINDS",
    "RECEIPT_FIELDS",
    "Evidence",
    "ExtractedField",
    "LineItem",
    "NotFound",
    "ReceiptFields",
    "SumCheck",
]

#: the fields a receipt can give, in the order they are reported
RECEIPT_FIELDS = ("vendor", "vendor_address", "date", "total", "tax")

#: the kinds of input whose pages have fields (photos and scans, PDFs); a recording's frames have none
FIELD_KINDS = ("image", "document")


@dataclass(frozen=True)
class Evidence:
    """One OCR line a field was read from: its index in the page's lines, its box and its text."""

    line: int
    box: Box
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "box": self.box.to_dict(), "text": self.text}


@dataclass(frozen=True)
class ExtractedField:
    """A field's value and the text it was read from.

    `value` is normalised (an ISO 8601 date, an amount as a plain decimal string such as ``1234.50``); `text` is
    what the receipt shows, as OCR read it. `confidence` is the scoring model's probability that the field is
    right; `emitted` says whether it cleared the profile's threshold (a field below it is "not found").
    """

    name: str
    value: str
    text: str
    confidence: float
    evidence: tuple[Evidence, ...]
    currency: str | None = None  # amounts only: ISO 4217, when the receipt writes one
    emitted: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.currency is not None:
            out["currency"] = self.currency
        return out


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass(frozen=True)
class LineItem:
    """One line of a receipt: what was bought, how many, at what unit price, for what amount (fields.lines).

    Found by layout rules, not scored: a line item has no confidence of its own; the sum check says whether the
    lines add up to the total. `quantity` and `unit_price` are None when the receipt does not print them.
    """

    description: str
    amount: Decimal
    quantity: Decimal | None
    unit_price: Decimal | None
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "quantity": _plain(self.quantity),
            "unit_price": _plain(self.unit_price),
            "amount": format(self.amount, "f"),
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class SumCheck:
    """The total against the line items: their sum, and the tax added to it when the lines are priced before
    tax (`tax_added`, else None); `difference` is the total minus what it was compared with."""

    sum_matches: bool
    lines_sum: Decimal
    total: Decimal
    tax_added: Decimal | None
    difference: Decimal
    #: the total's confidence before the match raised it (None: not raised)
    total_confidence_before: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sum_matches": self.sum_matches,
            "lines_sum": format(self.lines_sum, "f"),
            "total": format(self.total, "f"),
            "tax_added": _plain(self.tax_added),
            "difference": format(self.difference, "f"),
        }
        if self.total_confidence_before is not None:
            out["total_confidence_before"] = round(self.total_confidence_before, 4)
        return out


#: why a field is not reported: "abstained" (a value was found, below the threshold), "absent" (none was found)
Reason = Literal["abstained", "absent"]


@dataclass(frozen=True)
class NotFound:
    """A field left out, and why; an abstained field says how sure the model was of its best guess."""

    field: str
    reason: Reason
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, 4)
        return out


@dataclass
class ReceiptFields:
    """What a receipt says: each field found, the ones left out, its line items and the sum check.

    `fields` holds every field that cleared `threshold`; `unsure` the best guess for the others (kept for
    review, never reported as an answer); `checks` is None unless the page has both line items and a total.
    """

    fields: dict[str, ExtractedField] = field(default_factory=dict)
    unsure: dict[str, ExtractedField] = field(default_factory=dict)
    threshold: float = 0.0
    line_items: list[LineItem] = field(default_factory=list)
    checks: SumCheck | None = None

    def get(self, name: str) -> ExtractedField | None:
        return self.fields.get(name)

    def value(self, name: str) -> str | None:
        found = self.fields.get(name)
        return found.value if found is not None else None

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def not_found(self) -> list[NotFound]:
        """Every field not reported, in `RECEIPT_FIELDS` order, with the reason."""
        out = []
        for name in RECEIPT_FIELDS:
            if name in self.fields:
                continue
            guess = self.unsure.get(name)
            out.append(NotFound(name, "abstained", guess.confidence) if guess else NotFound(name, "absent"))
        return out

    def to_dict(self, *, with_unsure: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fields": {name: self.fields[name].to_dict() for name in RECEIPT_FIELDS if name in self.fields},
            "not_found": [missing.to_dict() for missing in self.not_found],
            "line_items": [item.to_dict() for item in self.line_items],
            "checks": self.checks.to_dict() if self.checks is not None else {},
            "threshold": self.threshold,
        }
        if with_unsure:
            out["unsure"] = {name: f.to_dict() for name, f in self.unsure.items()}
        return out
