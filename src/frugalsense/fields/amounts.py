"""Money as people write it: ``RM 9.00``, ``9,00 EUR``, ``1.234,50``, ``$1,234.50``, with its currency.

Which mark is the decimal separator is decided per number, by these rules, in order:

1. both ``.`` and ``,`` appear: the one written last separates the decimals (``1.234,50`` and ``1,234.50`` are
   both 1234.50); the other groups thousands and must then group exactly three digits;
2. one kind of mark appearing more than once groups thousands and must group threes (``1,234,567``; ``1,23,4``
   is no number);
3. one mark appearing once, followed by one or two digits, separates decimals (``9,00``, ``12.5``);
4. one mark appearing once, followed by exactly three digits, is **ambiguous** (``1,234`` is 1234 in English
   and 1.234 in German). It groups thousands, because prices with three decimals are rare (three currencies in
   ISO 4217 use them), unless the digits before it are ``0`` (``0,500`` is half a unit). The amount says it
   was ambiguous, so a caller that knows the locale can decide otherwise.

The currency comes from a symbol or an ISO 4217 code written next to the number (``$`` is taken as US dollars
unless a prefix says otherwise: ``S$``, ``A$``, ``HK$``...). ``RM`` is the Malaysian ringgit (MYR).

    >>> parse_amount("RM 9.00")
    Amount(value=Decimal('9.00'), currency='MYR', text='RM 9.00', start=0, end=7, ambiguous=False)
    >>> [str(parse_amount(s).value) for s in ("9,00 EUR", "1.234,50", "$1,234.50", "CHF 1'234.50")]
    ['9.00', '1234.50', '1234.50', '1234.50']
    >>> parse_amount("9,00 EUR").currency, parse_amount("£3").currency, parse_amount("S$ 4.10").currency
    ('EUR', 'GBP', 'SGD')
    >>> parse_amount("1,234").value, parse_amount("1,234").ambiguous
    (Decimal('1234'), True)
    >>> parse_amount("TOTAL") is None
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "CURRENCY_CODES",
    "CURRENCY_SYMBOLS",
    "Amount",
    "currency_marks",
    "find_amounts",
    "parse_amount",
    "parse_number",
]

#: symbols and local abbreviations, longest first when matched; "$" alone means US dollars
CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "S$": "SGD",
    "A$": "AUD",
    "C$": "CAD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "R$": "BRL",
    "RM": "MYR",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₱": "PHP",
    "฿": "THB",
    "₫": "VND",
    "₺": "TRY",
    "₽": "RUB",
    "Rp": "IDR",
    "Fr.": "CHF",
    "zł": "PLN",
    "kr": "SEK",
}

#: ISO 4217 codes recognised when written beside a number (a short list: the common ones)
CURRENCY_CODES = frozenset(
    {
        "USD", "EUR", "GBP", "JPY", "CNY", "MYR", "SGD", "AUD", "CAD", "NZD", "HKD", "INR", "IDR", "THB", "PHP",
        "VND", "KRW", "TWD", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RUB", "TRY", "BRL", "MXN", "ZAR",
        "AED", "SAR", "ILS",
    }
)  # fmt: skip


def _mark_pattern(mark: str) -> str:
    """A currency mark; one that starts or ends with a letter must not touch another letter ("FORM 9")."""
    pattern = re.escape(mark)
    if mark[0].isalpha():
        pattern = r"(?<![A-Za-z])" + pattern
    if mark[-1].isalpha() or mark[-1] == ".":
        pattern += r"(?![A-Za-z])"
    return pattern


_MARKS = "|".join(_mark_pattern(m) for m in sorted([*CURRENCY_SYMBOLS, *CURRENCY_CODES], key=len, reverse=True))
# A number: digits with grouping marks ('.', ',', apostrophes, thin or no-break spaces) and decimals. A plain
# space never groups: on receipts "1 100.00" is a quantity and a price. Signs and currency marks go around it.
_NUMBER = r"\d(?:[\d.,'’\u00a0\u202f])*\d|\d"
_AMOUNT = re.compile(
    rf"(?P<pre>(?:{_MARKS})\s?)?"
    rf"(?:(?<![\w.,])(?P<sign>[-−])\s?)?"
    rf"(?P<num>{_NUMBER})"
    rf"(?P<post>\s?(?:{_MARKS})(?!\s?\d))?",  # "1 RM51.30": the mark belongs to the next number
)
_GROUP_MARKS = "'’\u00a0\u202f"


@dataclass(frozen=True)
class Amount:
    """A sum of money found in text: its value, its currency (None when unwritten) and where it was."""

    value: Decimal
    currency: str | None
    text: str  # as written, currency mark included
    start: int  # offsets in the text searched
    end: int
    ambiguous: bool = False  # one mark before three digits (rule 4): read as a thousands separator

    @property
    def decimals(self) -> int:
        """Digits after the decimal separator as written: 2 for ``9.00``, 0 for ``9``."""
        exponent = self.value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0

    def plain(self) -> str:
        """The number as written without currency or grouping: ``1,234.50 EUR`` -> ``1234.50``."""
        return format(self.value, "f")


def parse_number(digits: str) -> tuple[Decimal, bool] | None:
    """The value of a written number (no currency), and whether its one separator was ambiguous (rule 4).

    >>> parse_number("1.234,50"), parse_number("1,234,567"), parse_number("9,00")
    ((Decimal('1234.50'), False), (Decimal('1234567'), False), (Decimal('9.00'), False))
    >>> parse_number("0,500"), parse_number("1,23,4") is None, parse_number("1.234.5") is None
    ((Decimal('0.500'), False), True, True)
    """
    text = digits.strip()
    for mark in _GROUP_MARKS:
        text = text.replace(mark, "")
    if not text or not text[0].isdigit() or not text[-1].isdigit():
        return None
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal_mark = "." if text.rfind(".") > text.rfind(",") else ","
        group_mark = "," if decimal_mark == "." else "."
        if text.count(decimal_mark) != 1 or text.rfind(group_mark) > text.rfind(decimal_mark):
            return None
        whole, fraction = text.split(decimal_mark)
        if not _grouped(whole, group_mark):
            return None
        return _decimal(whole.replace(group_mark, ""), fraction), False
    mark = "." if dots else "," if commas else ""
    if not mark:
        return _decimal(text, ""), False
    parts = text.split(mark)
    if len(parts) > 2:
        if not _grouped(text, mark):
            return None
        return _decimal(text.replace(mark, ""), ""), False
    whole, fraction = parts
    if len(fraction) == 3 and whole != "0":
        if len(whole) > 3:
            return None  # "1234,567": neither a grouping nor a plausible price
        return _decimal(whole + fraction, ""), True
    return _decimal(whole, fraction), False


def find_amounts(text: str) -> list[Amount]:
    """Every amount in `text`, left to right; numbers that break the rules above are skipped.

    >>> [(a.plain(), a.currency) for a in find_amounts("2 x RM 4.50   9.00 TOTAL RM9.00")]
    [('2', None), ('4.50', 'MYR'), ('9.00', None), ('9.00', 'MYR')]
    >>> [a.plain() for a in find_amounts("Subtotal 1.234,50 EUR  Tax -12,00")]
    ['1234.50', '-12.00']
    """
    found = []
    for match in _AMOUNT.finditer(text):
        parsed = parse_number(match.group("num"))
        if parsed is None:
            continue
        value, ambiguous = parsed
        if match.group("sign"):
            value = -value
        mark = (match.group("pre") or match.group("post") or "").strip()
        currency = _currency(mark)
        start, end = match.span()
        found.append(Amount(value, currency, text[start:end].strip(), start, end, ambiguous))
    return found


_MARK_ALONE = re.compile(rf"(?:{_MARKS})")


def currency_marks(text: str) -> list[str]:
    """The currencies `text` names with a symbol or code, with or without a number beside them.

    >>> currency_marks("Amount (RM)  Total $  FORM 9")
    ['MYR', 'USD']
    """
    found = (_currency(m.group().strip()) for m in _MARK_ALONE.finditer(text))
    return [c for c in found if c is not None]


def parse_amount(text: str) -> Amount | None:
    """The one amount `text` holds (the last, when it holds several), or None when it holds none."""
    found = find_amounts(text)
    return found[-1] if found else None


def _currency(mark: str) -> str | None:
    if not mark:
        return None
    if mark.upper() in CURRENCY_CODES:
        return mark.upper()
    return CURRENCY_SYMBOLS.get(mark)


def _grouped(whole: str, mark: str) -> bool:
    """Digits grouped by `mark` in threes after a first group of one to three."""
    groups = whole.split(mark)
    return 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]) and all(g.isdigit() for g in groups)


def _decimal(whole: str, fraction: str) -> Decimal:
    try:
        return Decimal(f"{whole}.{fraction}" if fraction else whole)
    except InvalidOperation:  # unreachable for digit strings; kept so a bad input never raises
        return Decimal(0)
