"""A document's fields, page by page: what ``POST /v1/documents/fields``, `Client.fields` and ``frugalsense
extract`` answer, for a receipt or invoice (the default) or a form (``kind="form"``: its question and answer
pairs).

The OCR runs through `Analyzer.analyze` (a receipt: the ``fields`` feature, text once, then the fields of every
page; a form: the ``text`` feature, then `fields.forms` on every page), all of it on one receipt; this module
shapes the answer and refuses what has no pages to read.

```python
from frugalsense.analyze import Analyzer
found = read_document("receipt.jpg", Analyzer())
found.pages[0].fields.value("total"), found.receipt.cpu_seconds   # ('9.00', 1.52)
found.to_dict()                                                    # the body of POST /v1/documents/fields
form = read_document("form.png", Analyzer(), kind="form")
[(q.question, q.answers) for q in form.pages[0].questions]         # [('Date:', ('9/3/92',)), ...]
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, overload

from frugalsense.errors import InvalidRequestError, UnsupportedFormatError
from frugalsense.fields.types import FIELD_KINDS, Evidence, ReceiptFields
from frugalsense.ledger import CostReceipt, Meter

if TYPE_CHECKING:
    from collections.abc import Callable

    from frugalsense.analyze import Analyzer
    from frugalsense.fields.forms import FormFields, FormPair
    from frugalsense.media.types import Frame
    from frugalsense.results import AnalysisResult, PageResult

    #: called with each page while it is decoded (`Analyzer.analyze`'s ``on_page``)
    OnPage = Callable[[int, Frame, PageResult], None]

__all__ = [
    "DOCUMENT_KINDS",
    "DocumentFields",
    "DocumentForms",
    "DocumentKind",
    "FormPageFields",
    "FormQuestion",
    "PageFields",
    "check_document",
    "document_kind",
    "read_document",
]

#: what a document is read as: a receipt or invoice (its fields), or a form (its question and answer pairs)
DocumentKind = Literal["receipt", "form"]
DOCUMENT_KINDS: tuple[DocumentKind, ...] = ("receipt", "form")

#: what to upload instead of a recording
_NOT_A_DOCUMENT = (
    "fields are read from pictures and PDFs (a photo or scan of a receipt, an invoice or a form), not from "
    "{what}; upload the document itself"
)


@dataclass(frozen=True)
class PageFields:
    """One page's fields, with where the page is (its number in a PDF; None for a photo) and its size."""

    page: int | None
    width: int
    height: int
    fields: ReceiptFields

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"page": self.page, "width": self.width, "height": self.height}
        return {**out, **self.fields.to_dict()}


@dataclass(frozen=True)
class FormQuestion:
    """A question of a form and the answers reported for it (a table's column header has several), with the
    lowest of their confidences and the pieces of OCR lines each was read from (the answers' in their order)."""

    question: str
    answers: tuple[str, ...]
    confidence: float
    question_evidence: tuple[Evidence, ...]
    answer_evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answers": list(self.answers),
            "confidence": round(self.confidence, 4),
            "question_evidence": [e.to_dict() for e in self.question_evidence],
            "answer_evidence": [e.to_dict() for e in self.answer_evidence],
        }


@dataclass(frozen=True)
class FormPageFields:
    """One form page's key-value pairs (`fields.forms.FormFields`: the reported pairs and the unsure ones)."""

    page: int | None
    width: int
    height: int
    fields: FormFields

    @property
    def questions(self) -> list[FormQuestion]:
        """The reported pairs by question, in reading order: a printed question (its text and where it is) once,
        with all its answers. Unsure pairs are never among them."""
        grouped: dict[tuple[str, tuple[Evidence, ...]], list[FormPair]] = {}
        for pair in self.fields.pairs:
            grouped.setdefault((pair.question, pair.question_evidence), []).append(pair)
        return [
            FormQuestion(
                question,
                tuple(p.answer for p in pairs),
                min(p.confidence for p in pairs),
                evidence,
                tuple(e for p in pairs for e in p.answer_evidence),
            )
            for (question, evidence), pairs in grouped.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "width": self.width,
            "height": self.height,
            "pairs": [q.to_dict() for q in self.questions],
            "threshold": self.fields.threshold,
            "abstained": len(self.fields.unsure),
        }


PageT = TypeVar("PageT", PageFields, FormPageFields)


@dataclass(frozen=True)
class _Document(Generic[PageT]):
    """A document's pages and what reading them cost."""

    #: the usage ledger's feature the pages are billed to (console.prices)
    feature: ClassVar[str]

    name: str
    kind: str
    mime: str
    sha256: str
    pages: list[PageT]
    receipt: CostReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "mime": self.mime,
            "sha256": self.sha256,
            "pages": [page.to_dict() for page in self.pages],
            "receipt": self.receipt.to_dict(),
        }


class DocumentFields(_Document[PageFields]):
    """A receipt's or invoice's fields, page by page, and what reading it cost."""

    feature = "fields"

    @classmethod
    def from_analysis(cls, result: AnalysisResult) -> DocumentFields:
        """The fields of an analysis that ran the ``fields`` feature (pages without them are left out)."""
        pages = [
            PageFields(p.page, p.width, p.height, p.fields) for p in result.pages if p.fields is not None
        ]  # fmt: skip
        return cls(result.name, result.kind, result.mime, result.sha256, pages, result.receipt)


class DocumentForms(_Document[FormPageFields]):
    """A form's question and answer pairs, page by page, and what reading it cost (Amazon Textract's
    AnalyzeDocument with forms is the cloud's counterpart: ``forms`` in the usage ledger)."""

    feature = "forms"


def document_kind(value: object) -> DocumentKind:
    """What a request asks to read the document as: `DOCUMENT_KINDS` (nothing given: a receipt).

    >>> document_kind(None), document_kind("Form")
    ('receipt', 'form')
    """
    text = value.strip().lower() if isinstance(value, str) else value
    if text is None or text == "" or text == "receipt":
        return "receipt"
    if text == "form":
        return "form"
    raise InvalidRequestError(
        f"unknown kind {value!r}; choose one of: receipt (the default: a receipt's or invoice's fields), "
        "form (a form's question and answer pairs)"
    )


def check_document(data: bytes) -> None:
    """Refuse a recording before any work: its frames are no receipt (`UnsupportedFormatError`)."""
    from frugalsense.media.sniff import sniff

    found = sniff(data)
    if found is not None and found.family == "av":
        raise UnsupportedFormatError(_NOT_A_DOCUMENT.format(what=f"{found.label} audio or video"))


@overload
def read_document(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    kind: Literal["receipt"] = ...,
    name: str | None = ...,
    tenant: str | None = ...,
    meter: Meter | None = ...,
    on_page: OnPage | None = ...,
) -> DocumentFields: ...


@overload
def read_document(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    kind: Literal["form"],
    name: str | None = ...,
    tenant: str | None = ...,
    meter: Meter | None = ...,
    on_page: OnPage | None = ...,
) -> DocumentForms: ...


def read_document(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    kind: DocumentKind = "receipt",
    name: str | None = None,
    tenant: str | None = None,
    meter: Meter | None = None,
    on_page: OnPage | None = None,
) -> DocumentFields | DocumentForms:
    """Every page's fields of a receipt or invoice (a picture or a PDF), or with ``kind="form"`` every page's
    question and answer pairs of a form; each with a confidence and evidence, left out when the model is unsure.
    The OCR and the extraction are on the receipt. ``on_page`` sees each page while it is decoded
    (`Analyzer.analyze`)."""
    check_document(source if isinstance(source, bytes) else _head(source))
    if kind == "form":
        return _read_form(source, analyzer, name=name, tenant=tenant, meter=meter, on_page=on_page)
    result = analyzer.analyze(source, ["fields"], name=name, tenant=tenant, meter=meter, on_page=on_page)
    _check_pages(result)
    return DocumentFields.from_analysis(result)


def _read_form(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    name: str | None,
    tenant: str | None,
    meter: Meter | None,
    on_page: OnPage | None,
) -> DocumentForms:
    """The text ladder on every page, then each page's pairs (`fields.forms.extract_form_fields`), billed as the
    ``forms`` stage of the same receipt."""
    from frugalsense.fields.forms import extract_form_fields

    metering = meter if meter is not None else analyzer.meter()
    result = analyzer.analyze(source, ["text"], name=name, tenant=tenant, meter=metering, on_page=on_page)
    _check_pages(result)
    pages = []
    for page in result.pages:
        with metering.stage("forms", note="a form's key-value pairs: segments, joins, roles, pairs"):
            found = extract_form_fields(page.text or [], profile_dir=analyzer.settings.profile_dir)
        pages.append(FormPageFields(page.page, page.width, page.height, found))
    return DocumentForms(result.name, result.kind, result.mime, result.sha256, pages, metering.receipt)


def _check_pages(result: AnalysisResult) -> None:
    if result.kind not in FIELD_KINDS:
        raise UnsupportedFormatError(_NOT_A_DOCUMENT.format(what=f"{result.kind} ({result.mime})"))


def _head(path: str | os.PathLike[str]) -> bytes:
    """The first bytes of a file, enough for its format; none when it cannot be read (decoding will say why)."""
    try:
        with open(path, "rb") as file:
            return file.read(4096)
    except OSError:
        return b""
