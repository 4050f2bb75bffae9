"""Fields from documents: what a receipt says (vendor, its address, date, total, tax, its line items), each field
with a confidence and the OCR lines it came from, left out when the model is unsure (docs/fields.md).

```python
from frugalsense import Analyzer
from frugalsense.fields import read_document
found = read_document("receipt.jpg", Analyzer())     # every page; also Analyzer.analyze(path, ["fields"])
page = found.pages[0].fields
page.value("total"), page.get("total").currency, page.not_found, page.line_items, page.checks
```
"""

from __future__ import annotations

from frugalsense.fields.amounts import Amount, find_amounts, parse_amount
from frugalsense.fields.dates import FoundDate, find_dates, parse_date
from frugalsense.fields.document import DocumentFields, PageFields, read_document
from frugalsense.fields.forms import FormFields, FormPair, extract_form_fields, form_threshold, read_form
from frugalsense.fields.lines import check_sum, line_items
from frugalsense.fields.receipts import extract_receipt_fields, read_receipt, receipt_threshold
from frugalsense.fields.types import (
    RECEIPT_FIELDS,
    Evidence,
    ExtractedField,
    LineItem,
    NotFound,
    ReceiptFields,
    SumCheck,
)

__all__ = [
    "RECEIPT_FIELDS",
    "Amount",
    "DocumentFields",
    "Evidence",
    "ExtractedField",
    "FormFields",
    "FormPair",
    "FoundDate",
    "LineItem",
    "NotFound",
    "PageFields",
    "ReceiptFields",
    "SumCheck",
    "check_sum",
    "extract_form_fields",
    "extract_receipt_fields",
    "find_amounts",
    "find_dates",
    "form_threshold",
    "line_items",
    "parse_amount",
    "parse_date",
    "read_document",
    "read_form",
    "read_receipt",
    "receipt_threshold",
]
