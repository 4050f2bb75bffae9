"""A document's fields, page by page: what ``POST /v1/documents/fields``, `Client.fields` and ``frugalsense
extract`` answer.

The OCR and the extraction run through `Analyzer.analyze(source, ["fields"])` (text once, then the fields of
every page, both on the receipt); this module shapes the answer and refuses what has no pages to read.

```python
from frugalsense.analyze import Analyzer
found = read_document("receipt.jpg", Analyzer())
found.pages[0].fields.value("total"), found.receipt.cpu_seconds   # ('9.00', 1.52)
found.to_dict()                                                    # the body of POST /v1/documents/fields
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from frugalsense.errors import UnsupportedFormatError
from frugalsense.fields.types import FIELD_KINDS, ReceiptFields
from frugalsense.ledger import CostReceipt

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.ledger import Meter
    from frugalsense.results import AnalysisResult

__all__ = ["DocumentFields", "PageFields", "check_document", "read_document"]

#: what to upload instead of a recording
_NOT_A_DOCUMENT = (
    "fields are read from pictures and PDFs (a photo or scan of a receipt or invoice), not from {what}; "
    "upload the document itself"
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
class DocumentFields:
    """A document's fields, page by page, and what reading it cost."""

    name: str
    kind: str
    mime: str
    sha256: str
    pages: list[PageFields]
    receipt: CostReceipt

    @classmethod
    def from_analysis(cls, result: AnalysisResult) -> DocumentFields:
        """The fields of an analysis that ran the ``fields`` feature (pages without them are left out)."""
        pages = [
            PageFields(p.page, p.width, p.height, p.fields) for p in result.pages if p.fields is not None
        ]  # fmt: skip
        return cls(result.name, result.kind, result.mime, result.sha256, pages, result.receipt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "mime": self.mime,
            "sha256": self.sha256,
            "pages": [page.to_dict() for page in self.pages],
            "receipt": self.receipt.to_dict(),
        }


def check_document(data: bytes) -> None:
    """Refuse a recording before any work: its frames are no receipt (`UnsupportedFormatError`)."""
    from frugalsense.media.sniff import sniff

    found = sniff(data)
    if found is not None and found.family == "av":
        raise UnsupportedFormatError(_NOT_A_DOCUMENT.format(what=f"{found.label} audio or video"))


def read_document(
    source: str | os.PathLike[str] | bytes,
    analyzer: Analyzer,
    *,
    name: str | None = None,
    tenant: str | None = None,
    meter: Meter | None = None,
) -> DocumentFields:
    """Every page's fields of a receipt or invoice (a picture or a PDF), each with a confidence and evidence,
    left out when the model is unsure; the OCR and the extraction are on the receipt."""
    check_document(source if isinstance(source, bytes) else _head(source))
    result = analyzer.analyze(source, ["fields"], name=name, tenant=tenant, meter=meter)
    if result.kind not in FIELD_KINDS:
        raise UnsupportedFormatError(_NOT_A_DOCUMENT.format(what=f"{result.kind} ({result.mime})"))
    return DocumentFields.from_analysis(result)


def _head(path: str | os.PathLike[str]) -> bytes:
    """The first bytes of a file, enough for its format; none when it cannot be read (decoding will say why)."""
    try:
        with open(path, "rb") as file:
            return file.read(4096)
    except OSError:
        return b""
