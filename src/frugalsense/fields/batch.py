"""The fields of many receipts and invoices for a spreadsheet: what ``frugalsense extract`` writes (a CSV row or a
JSON line per page), its progress lines and its bill; with ``kind="form"`` (``--forms``) the question and answer
pairs of many forms (a CSV row per pair, a JSON line per page).

```python
from frugalsense.analyze import Analyzer
with open("receipts.csv", "w", newline="") as out:
    totals = extract_to(["receipt.jpg", "invoice.pdf"], Analyzer(), csv_file=out, progress=print)
totals.summary(0.05)   # '2 files, 3 pages: 4.6 CPU-s, $0.000064 at $0.05 per CPU-hour; Amazon Textract ...'
```
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from frugalsense.console.prices import TEXTRACT_EXPENSE_PER_PAGE, TEXTRACT_FORMS_PER_PAGE
from frugalsense.errors import InputError
from frugalsense.fields.document import (
    DocumentFields,
    DocumentForms,
    DocumentKind,
    FormPageFields,
    PageFields,
    read_document,
)
from frugalsense.fields.types import RECEIPT_FIELDS

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = [
    "CSV_COLUMNS",
    "DOCUMENT_SUFFIXES",
    "FORM_CSV_COLUMNS",
    "TEXTRACT_APIS",
    "ExtractTotals",
    "Extracted",
    "csv_rows",
    "document_paths",
    "extract_to",
    "json_records",
]

#: file endings a folder walk picks up: pictures and PDFs (a file named on the command line is tried anyway)
DOCUMENT_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".avif", ".pdf"}
)

#: one row per page: the fields (empty when left out), then a confidence per field (empty when left out)
CSV_COLUMNS = (
    "file",
    "page",
    "vendor",
    "vendor_address",
    "date",
    "total",
    "currency",
    "tax",
    *(f"{name}_confidence" for name in RECEIPT_FIELDS),
    "line_items",
    "sum_matches",
    "error",
)

#: forms: one row per question and answer pair (a page without pairs: one row with neither, so it is listed)
FORM_CSV_COLUMNS = ("file", "page", "question", "answer", "confidence", "error")

#: what Amazon Textract would charge for the same pages, per kind of document: its API and list price per page
TEXTRACT_APIS: dict[DocumentKind, tuple[str, float]] = {
    "receipt": ("AnalyzeExpense", TEXTRACT_EXPENSE_PER_PAGE),
    "form": ("AnalyzeDocument (forms)", TEXTRACT_FORMS_PER_PAGE),
}


@dataclass(frozen=True)
class Extracted:
    """One file's outcome: its fields (or a form's pairs), or the error that stopped it."""

    path: str
    document: DocumentFields | DocumentForms | None = None
    error: InputError | None = None

    @property
    def cpu_seconds(self) -> float:
        return self.document.receipt.cpu_seconds if self.document is not None else 0.0


def _page_number(page: PageFields | FormPageFields) -> int:
    return page.page if page.page is not None else 1  # a photo is a one-page document


def csv_rows(outcome: Extracted) -> list[dict[str, str]]:
    """The outcome's rows for `CSV_COLUMNS`: one per page (for a form, `FORM_CSV_COLUMNS`: one per pair), or
    one with the error."""
    if outcome.document is None:
        message = f"{outcome.error.code}: {outcome.error}" if outcome.error is not None else "no result"
        return [{"file": outcome.path, "error": message}]
    if isinstance(outcome.document, DocumentForms):
        return _form_rows(outcome.path, outcome.document)
    rows = []
    for page in outcome.document.pages:
        found = page.fields
        row = {"file": outcome.path, "page": str(_page_number(page))}
        for name in RECEIPT_FIELDS:
            value = found.get(name)
            row[name] = value.value if value is not None else ""
            row[f"{name}_confidence"] = f"{value.confidence:.4f}" if value is not None else ""
        total = found.get("total")
        row["currency"] = (total.currency or "") if total is not None else ""
        row["line_items"] = str(len(found.line_items))
        row["sum_matches"] = "" if found.checks is None else str(found.checks.sum_matches).lower()
        rows.append(row)
    return rows


def _form_rows(path: str, document: DocumentForms) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for page in document.pages:
        number = str(_page_number(page))
        pairs = page.fields.pairs  # the reported ones: unsure pairs are never written as answers
        rows.extend(
            {
                "file": path,
                "page": number,
                "question": p.question,
                "answer": p.answer,
                "confidence": f"{p.confidence:.4f}",
            }
            for p in pairs
        )
        if not pairs:
            rows.append({"file": path, "page": number})
    return rows


def json_records(outcome: Extracted) -> list[dict[str, Any]]:
    """The outcome as JSON lines: one per page (its fields, line items and checks; a form's pairs), or one with
    the error."""
    if outcome.document is None:
        error = outcome.error
        detail = {"code": error.code, "message": str(error)} if error is not None else {"code": "", "message": ""}
        return [{"file": outcome.path, "error": detail}]
    if isinstance(outcome.document, DocumentForms):
        pages = outcome.document.pages  # with their size: the evidence boxes are in the page's pixels
        return [{"file": outcome.path, **page.to_dict(), "page": _page_number(page)} for page in pages]
    return [
        {"file": outcome.path, "page": _page_number(page), **page.fields.to_dict()}
        for page in outcome.document.pages
    ]


@dataclass
class ExtractTotals:
    """What a run read and spent, beside what Amazon Textract would charge for the same pages (`TEXTRACT_APIS`:
    AnalyzeExpense for receipts, AnalyzeDocument with forms for forms)."""

    kind: DocumentKind = "receipt"
    files: int = 0
    pages: int = 0
    failed: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def add(self, outcome: Extracted) -> None:
        self.files += 1
        self.cpu_seconds += outcome.cpu_seconds
        if outcome.document is None:
            self.failed.append(outcome.path)
        else:
            self.pages += len(outcome.document.pages)

    def usd(self, price_per_cpu_hour: float) -> float:
        return self.cpu_seconds / 3600.0 * price_per_cpu_hour

    @property
    def textract_usd(self) -> float:
        return self.pages * TEXTRACT_APIS[self.kind][1]

    def summary(self, price_per_cpu_hour: float) -> str:
        """The total cost line."""
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        pages = f"{self.pages} page{'s' if self.pages != 1 else ''}"
        failed = f" ({len(self.failed)} failed)" if self.failed else ""
        api, per_page = TEXTRACT_APIS[self.kind]
        return (
            f"{files}, {pages}{failed}: {self.cpu_seconds:.1f} CPU-s, ${self.usd(price_per_cpu_hour):.6f} at "
            f"${price_per_cpu_hour:g} per CPU-hour; Amazon Textract {api}: ${self.textract_usd:.2f} "
            f"(${per_page:g} per page, list price)"
        )


def progress_line(number: int, count: int, outcome: Extracted) -> str:
    """One file's progress line: what was read, what was left out, what it cost."""
    where = f"[{number}/{count}] {outcome.path}"
    if outcome.document is None:
        return f"{where}: error: {outcome.error}"
    if isinstance(outcome.document, DocumentForms):
        forms = outcome.document.pages
        pairs, unsure = sum(len(p.fields.pairs) for p in forms), sum(len(p.fields.unsure) for p in forms)
        said = f"{len(forms)} page{'s' if len(forms) != 1 else ''}, {pairs} pair{'s' if pairs != 1 else ''}"
        return f"{where}: {said} ({unsure} left out, unsure); {outcome.cpu_seconds:.2f} CPU-s"
    pages = outcome.document.pages
    reported = sum(len(page.fields) for page in pages)
    parts = [
        f"{len(pages)} page{'s' if len(pages) != 1 else ''}",
        f"{reported}/{len(RECEIPT_FIELDS) * len(pages)} fields",
    ]
    total = pages[0].fields.get("total") if pages else None
    if total is not None:
        parts.append(f"total {total.value}{f' {total.currency}' if total.currency else ''}")
    checks = [page.fields.checks for page in pages if page.fields.checks is not None]
    if checks:
        parts.append("lines add up" if all(c.sum_matches for c in checks) else "lines do not add up")
    return f"{where}: {', '.join(parts)}; {outcome.cpu_seconds:.2f} CPU-s"


def document_paths(walked: Iterable[Path], named: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to read: those named as given, and from folders the pictures and PDFs (`DOCUMENT_SUFFIXES`)."""
    asked = {Path(p).resolve() for p in named}
    return [p for p in walked if p in asked or p.suffix.lower() in DOCUMENT_SUFFIXES]


def extract_to(
    paths: Iterable[str | os.PathLike[str]],
    analyzer: Analyzer,
    *,
    csv_file: TextIO | None = None,
    json_file: TextIO | None = None,
    progress: Callable[[str], None] | None = None,
    kind: DocumentKind = "receipt",
) -> ExtractTotals:
    """Read every file's fields (``kind="form"``: a form's pairs) and write them as they come (CSV rows, JSON
    lines), flushed after each file so an interrupted run keeps what it read; a file that cannot be read gets an
    error row and the run goes on."""
    import json

    files = [str(p) for p in paths]
    columns = FORM_CSV_COLUMNS if kind == "form" else CSV_COLUMNS
    writer = csv.DictWriter(csv_file, fieldnames=columns, restval="") if csv_file is not None else None
    if writer is not None:
        writer.writeheader()
    totals = ExtractTotals(kind=kind)
    for number, path in enumerate(files, start=1):
        try:
            document = read_document(path, analyzer, kind=kind, name=Path(path).name)
            outcome = Extracted(path, document=document)
        except InputError as exc:
            outcome = Extracted(path, error=exc)
        totals.add(outcome)
        if writer is not None and csv_file is not None:
            writer.writerows(csv_rows(outcome))
            csv_file.flush()
        if json_file is not None:
            json_file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in json_records(outcome))
            json_file.flush()
        if progress is not None:
            progress(progress_line(number, len(files), outcome))
    return totals
