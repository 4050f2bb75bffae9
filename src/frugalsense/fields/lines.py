"""Line items from a receipt's OCR rows (description, quantity, unit price, amount), and the total checked
against their sum.

The rules, in order:

1. **The item block** starts below the last column heading ("ITEM QTY U/P AMOUNT": two heading words, no
   price) or, when there is none, below the last row of receipt details before the first price (a date or
   time, a ``Label:``, INVOICE, CASHIER, CASH BILL...), and ends above the first row after a price that closes
   the list: a total, subtotal, item count or payment row. Without both ends there is no block: the vendor's
   rows above are no items, and a page that never totals is no receipt.
2. **An item row** is a row of the block whose rightmost amount has cents ("12.90", "19.78T", "72.35 S"): that
   amount is the line's amount. A negative one ("Member Discount -1.20") is an item too, so discounts count
   in the sum.
3. **Quantity and unit price** are read where the row writes them: ``2 x 4.50``, ``2pc@9.89``, ``1.00 NOS x
   0.70``, ``2 * RM33.02``, ``7.90*3`` (price first); else from the columns: a small whole number (or one with
   a unit, ``1.00 PCS``) before the amount is the quantity when a price on the row times it gives the amount,
   and that price is the unit price; a quantity of one makes the amount the unit price. Nothing is guessed
   when the row says nothing: both stay empty.
4. **The description** is the row's own words, without product codes (a leading run of four digits or more;
   a token of five digits or more that outnumber its letters) and tax marks (``SR``, ``*S``, ``Z``). A row with
   no words of its own takes the rows without a price next to it, at most two: above it when the block starts
   with such a row (the description printed first; the item's own words are then added after them, unless
   they are a lone token such as a unit or a code), below it otherwise (above when nothing below is free).

`check_sum`: the total is right by the lines when it equals their sum, or their sum plus the tax (prices before
tax), within 0.02 (a Malaysian total is rounded to 5 sen, which moves it by at most 2 sen).

    >>> from frugalsense.results import TextLine
    >>> def line(text, y, x=10):
    ...     return TextLine(text, ((x, y), (x + 150, y), (x + 150, y + 18), (x, y + 18)), 0.95)
    >>> page = [line("KEDAI MAJU", 0), line("Date: 25/12/2018", 30), line("ITEM QTY PRICE AMOUNT", 60),
    ...         line("Kopi O", 90), line("2 x 1.50", 90, 170), line("3.00", 90, 330),
    ...         line("Roti bakar", 120), line("1", 120, 170), line("2.50", 120, 330),
    ...         line("TOTAL", 150), line("5.50", 150, 330)]
    >>> from frugalsense.fields.layout import ReceiptLayout
    >>> items = line_items(ReceiptLayout.from_lines(page))
    >>> [(i.description, str(i.quantity), str(i.unit_price), str(i.amount)) for i in items]
    [('Kopi O', '2', '1.50', '3.00'), ('Roti bakar', '1', '2.50', '2.50')]
    >>> check_sum(items, Decimal("5.50")).sum_matches
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from frugalsense.fields.amounts import Amount, find_amounts
from frugalsense.fields.candidates import compact
from frugalsense.fields.dates import find_dates
from frugalsense.fields.layout import Line, ReceiptLayout, Row
from frugalsense.fields.types import Evidence, LineItem, SumCheck

__all__ = ["SUM_TOLERANCE", "check_sum", "item_block", "line_items"]

#: how far a total may sit from the lines' sum and still match: a total rounded to 5 sen moves by at most 2
SUM_TOLERANCE = Decimal("0.02")

# Words of a column heading; a row with two of them and no price heads the item list.
_HEADING = (
    "ITEM", "ITEMS", "DESC", "DESCRIPTION", "QTY", "QUANTITY", "PRICE", "AMOUNT", "AMT", "U/P", "UNIT", "CODE",
    "DISC", "TOTAL", "SUBTOTAL", "RM", "PRODUCT", "S/PRICE", "UPRICE", "TAX",
)  # fmt: skip
# Rows that close the list (compact text): totals, item counts, payment.
_CLOSING = (
    "TOTAL", "SUBTOTAL", "SUB-TOTAL", "SUBTTL", "JUMLAH", "ITEM(S)", "ITEMCOUNT", "QTY(S)", "TOTALQTY", "NOOFITEM",
    "CASH", "TENDER", "PAYMENT", "CHANGE", "ROUNDING", "AMOUNTDUE", "BALANCEDUE", "NETT",
)  # fmt: skip
# Rows of receipt details above the items (compact text).
_DETAILS = (
    "INVOICE", "RECEIPT", "CASHIER", "SALESPERSON", "MEMBER", "TABLE", "BILL", "DOCNO", "SLIP", "TRANS", "ORDER",
    "POSNO", "COUNTER", "TERMINAL", "PAX", "SERVER", "OPERATOR", "STATION", "GSTID", "GSTREG", "GSTNO",
)  # fmt: skip
_LABEL = re.compile(r"[A-Za-z.#]{2,}\s?:")
_TIME = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b")
_UNIT_WORDS = r"(?:PCS?|NOS|SETS?|UNITS?|EA|KG|BOX|PKT|BTL)"
_PRICE = r"(?:RM\s?)?(\d{1,6}[.,]\d{2})(?!\d)"
# "2 x 4.50", "2pc@9.89", "1.00 NOS x 0.70", "2 * RM33.02", "1X29.90"
_QTY_TIMES_PRICE = re.compile(
    rf"(?<![\d.,])(\d{{1,4}}(?:\.\d{{1,3}})?)\s?{_UNIT_WORDS}?\s?[xX*@×]\s?{_PRICE}", re.IGNORECASE
)
_PRICE_TIMES_QTY = re.compile(rf"{_PRICE}\s?[xX*×]\s?(\d{{1,4}})(?![\d.,])")  # "7.90*3"
_LEADING_QTY = re.compile(
    rf"^\s*(?:(\d{{1,3}})(?:\s?{_UNIT_WORDS})?|(\d{{1,3}}\.\d{{1,3}})\s?{_UNIT_WORDS})(?![\d.,\w])", re.IGNORECASE
)
_TAX_MARK = re.compile(r"^\*?(?:SR|ZR|ZRL|S|Z|T|E|X|\*)$")
_WORD = re.compile(r"[^\W\d_]{3,}")
_CODE_RUN = re.compile(r"(?<!\w)\d{4,}[-*/]*")
_NOT_WORDS = frozenset({"RM", "PCS", "NOS", "SET", "UNI", "UNIT", "QTY"})


def line_items(layout: ReceiptLayout) -> list[LineItem]:
    """The page's line items, top to bottom (empty when it has no item block)."""
    block = item_block(layout)
    if not block:
        return []
    priced = {row.number: _priced(row) for row in block}
    item_rows = [row for row in block if priced[row.number] is not None]
    if not item_rows:
        return []
    # Where lone descriptions sit: above their prices when the block opens with a row without a price.
    first = next(row for row in block if priced[row.number] is not None or _has_words(row.text))
    above = priced[first.number] is None
    claimed: set[int] = set()
    out = []
    for row in item_rows:
        found = priced[row.number]
        assert found is not None
        amount_line, amount = found
        quantity, unit_price = _quantity_and_price(row, amount_line, amount)
        own = _words(row, amount_line)
        neighbours = [] if own and not above else _neighbours(block, priced, row, above, claimed)
        if not neighbours and not own and not above:
            neighbours = _neighbours(block, priced, row, True, claimed)  # nothing free below: the rows above
        if neighbours and len(own.split()) == 1:
            own = ""  # "1 WALK 1.60", "BEN02 1 12.90": a lone token beside the numbers is a unit or a code
        claimed.update(r.number for r in neighbours)
        description = " ".join(part for part in (*(_clean(r.text) for r in neighbours), own) if part).strip()
        lines = [line for r in sorted([*neighbours, row], key=lambda r: r.number) for line in r.lines]
        out.append(
            LineItem(
                description=description,
                amount=amount.value,
                quantity=quantity,
                unit_price=unit_price,
                evidence=tuple(Evidence(ln.index, ln.box, ln.text) for ln in lines),
            )
        )
    return out


def item_block(layout: ReceiptLayout) -> list[Row]:
    """The rows that hold the items (rule 1), or none."""
    rows = layout.rows
    start = None  # below the last heading or details row seen before the first price
    priced_seen = False
    for number, row in enumerate(rows):
        closing = any(word in compact(row.text) for word in _CLOSING)
        ends = closing and (priced_seen or _priced(row) is not None)
        if ends or (priced_seen and _is_heading(row)):
            # a total before any item ("SUBTOTAL 8.49" first): the page lists no items
            return list(rows[start:number]) if start is not None and priced_seen else []
        if _is_heading(row):
            start = number + 1
            continue
        if not priced_seen and (closing or _is_detail(row)):
            start = number + 1  # "CASH BILL", "Date: ...": details printed above the items
            continue
        priced_seen = priced_seen or (start is not None and _priced(row) is not None)
    return []


def check_sum(items: Sequence[LineItem], total: Decimal, tax: Decimal | None = None) -> SumCheck:
    """Whether `total` is the items' sum, or their sum plus `tax`, within `SUM_TOLERANCE`.

    >>> item = LineItem("Tea", Decimal("52.00"), None, None, ())
    >>> check = check_sum([item], Decimal("55.10"), Decimal("3.12"))
    >>> check.sum_matches, check.tax_added, check.difference
    (True, Decimal('3.12'), Decimal('-0.02'))
    """
    lines_sum = sum((item.amount for item in items), Decimal(0))
    plain = total - lines_sum
    if abs(plain) <= SUM_TOLERANCE or tax is None:
        return SumCheck(abs(plain) <= SUM_TOLERANCE, lines_sum, total, None, plain)
    with_tax = total - lines_sum - tax
    if abs(with_tax) <= SUM_TOLERANCE:
        return SumCheck(True, lines_sum, total, tax, with_tax)
    return SumCheck(False, lines_sum, total, None, plain)


def _is_heading(row: Row) -> bool:
    words = set(re.split(r"[\s|()]+", row.text.upper()))
    named = sum(1 for word in _HEADING if word in words or any(w.startswith(word) for w in words if len(w) > 3))
    return named >= 2 and not any(a.decimals == 2 for a in find_amounts(row.text))


def _is_detail(row: Row) -> bool:
    text = compact(row.text)
    found = find_dates(row.text) or _TIME.search(row.text) or _LABEL.search(row.text)
    return bool(found or any(word in text for word in _DETAILS))


def _priced(row: Row) -> tuple[Line, Amount] | None:
    """The row's amount (rule 2): its rightmost amount with cents, after any tax marks; None when it has none."""
    for line in reversed(row.lines):
        if all(_TAX_MARK.match(token) for token in line.text.split()):
            continue  # "SR", "*S": a tax code printed after the amount
        found = [a for a in find_amounts(line.text) if line.text[a.end : a.end + 1] != "%"]
        if not found:
            return None
        last = found[-1]
        after = line.text[last.end :].strip()
        if after and not _TAX_MARK.match(after):
            return None  # "6x1.25L": a size in a description, not a price
        return (line, last) if last.decimals == 2 else None
    return None


def _quantity_and_price(row: Row, amount_line: Line, amount: Amount) -> tuple[Decimal | None, Decimal | None]:
    """Rule 3, on the row's text without its amount."""
    before = " ".join(line.text for line in row.lines if line is not amount_line)
    if amount_line.text[: amount.start].strip():
        before = f"{before} {amount_line.text[: amount.start]}"
    match = _QTY_TIMES_PRICE.search(before)
    if match:
        return _decimal(match.group(1)), _decimal(match.group(2))
    match = _PRICE_TIMES_QTY.search(before)
    if match:
        return _decimal(match.group(2)), _decimal(match.group(1))
    quantity = None
    for line in row.lines:
        if line is amount_line:
            break
        lead = _LEADING_QTY.match(line.text)
        if lead and (line is not row.lines[0] or len(line.text.split()) > 1 or len(row.lines) > 2):
            quantity = _decimal(lead.group(1) or lead.group(2))
            break
    if quantity is None or quantity <= 0:
        return None, None
    if quantity == 1:
        return quantity, amount.value
    # A column number is a quantity only when a price on the row times it gives the amount.
    prices = [a.value for a in find_amounts(before) if a.decimals == 2]
    unit = next((p for p in prices if abs(p * quantity - amount.value) <= Decimal("0.01")), None)
    return (quantity, unit) if unit is not None else (None, None)


def _words(row: Row, amount_line: Line) -> str:
    """The row's own description (rule 4): its text without amounts, quantities, codes and tax marks."""
    text = " ".join(line.text for line in row.lines if line is not amount_line)
    text = _QTY_TIMES_PRICE.sub(" ", text)
    text = _PRICE_TIMES_QTY.sub(" ", text)
    text = _LEADING_QTY.sub(" ", text)
    tokens = [t for t in _clean(text).split() if any(c.isalpha() for c in t)]
    return " ".join(tokens) if _has_words(" ".join(tokens)) else ""


def _has_words(text: str) -> bool:
    """Whether `text` has a word of three letters or more (a unit or "RM" aside)."""
    return any(_WORD.search(t) and t.strip("()[]:").upper() not in _NOT_WORDS for t in text.split())


def _clean(text: str) -> str:
    """Text without product codes (a leading run of four digits or more, `_is_code`), tax marks and "(RM)"."""
    text = _CODE_RUN.sub(" ", text)
    tokens = [
        t for t in text.split() if not _is_code(t) and not _TAX_MARK.match(t) and t.strip("()[]:").upper() != "RM"
    ]
    return " ".join(tokens).strip(" |")


def _is_code(token: str) -> bool:
    """A product code: five digits or more, outnumbering the letters ("CH50514", "WA36-6/60")."""
    digits = sum(c.isdigit() for c in token)
    return digits >= 5 and digits > sum(c.isalpha() for c in token)


def _neighbours(
    block: Sequence[Row], priced: dict[int, tuple[Line, Amount] | None], row: Row, above: bool, claimed: set[int]
) -> list[Row]:
    """Up to two rows without a price next to `row` (rule 4), not taken by another item."""
    index = next(i for i, r in enumerate(block) if r.number == row.number)
    step = -1 if above else 1
    found: list[Row] = []
    i = index + step
    while 0 <= i < len(block) and len(found) < 2:
        other = block[i]
        if priced[other.number] is not None or other.number in claimed:
            break
        if _clean(other.text):
            found.append(other)
        i += step
    return sorted(found, key=lambda r: r.number)


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
