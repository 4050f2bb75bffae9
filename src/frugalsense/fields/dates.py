"""Dates as people write them, to ISO 8601: ``25/12/2018``, ``25 DEC 2018``, ``2018-12-25``, ``25-12-18``,
``DEC 25, 2018``.

The rule for numeric dates, stated once:

- a four-digit first group is a year, and the order is year, month, day (``2018-12-25``, ``2016/05/01``);
- otherwise the year comes last and the first two groups are day and month. A group above 12 can only be the
  day, which settles the order (``25/12/2018`` is day-first, ``12/25/2018`` month-first). When both are 12 or
  less the date is **ambiguous** and `order` decides: day-first (``"DMY"``) by default, as written in most of
  the world (and in every SROIE receipt); pass ``"MDY"`` for the United States. The result says it was
  ambiguous, so a caller can ask a person or look for another date on the page;
- a two-digit year is 2000 + yy for 00–68 and 1900 + yy for 69–99 (the POSIX ``%y`` rule).

Month names and their usual abbreviations are read in English, Malay, French and German (``DEC``, ``DIS``,
``DÉC``, ``DEZ``), in any case, as ``25 DEC 2018``, ``25-Dec-18``, ``02/JAN/2017`` or ``DEC 25, 2018``.

    >>> [d.iso for d in find_dates("25/12/2018 25 DEC 2018 2018-12-25 25-12-18 DEC 25, 2018")]
    ['2018-12-25', '2018-12-25', '2018-12-25', '2018-12-25', '2018-12-25']
    >>> parse_date("05/03/2018").iso, parse_date("05/03/2018").ambiguous, parse_date("05/03/2018", "MDY").iso
    ('2018-03-05', True, '2018-05-03')
    >>> parse_date("31/02/2018") is None
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = ["MONTHS", "FoundDate", "Order", "find_dates", "parse_date"]

Order = Literal["DMY", "MDY"]

_MONTH_NAMES: dict[int, tuple[str, ...]] = {
    1: ("JANUARY", "JAN", "JANV", "JANVIER", "JANUAR"),
    2: ("FEBRUARY", "FEB", "FEBR", "FÉV", "FÉVR", "FEV", "FEVR", "FÉVRIER", "FEBRUAR"),
    3: ("MARCH", "MAR", "MAC", "MARS", "MÄR", "MÄRZ", "MAERZ"),
    4: ("APRIL", "APR", "AVR", "AVRIL"),
    5: ("MAY", "MEI", "MAI"),
    6: ("JUNE", "JUN", "JUIN", "JUNI"),
    7: ("JULY", "JUL", "JUIL", "JUILLET", "JULAI", "JULI"),
    8: ("AUGUST", "AUG", "OGOS", "AOÛT", "AOUT"),
    9: ("SEPTEMBER", "SEP", "SEPT", "SEPTEMBRE"),
    10: ("OCTOBER", "OCT", "OKT", "OCTOBRE", "OKTOBER"),
    11: ("NOVEMBER", "NOV", "NOVEMBRE"),
    12: ("DECEMBER", "DEC", "DIS", "DÉC", "DEZ", "DISEMBER", "DÉCEMBRE", "DEZEMBER"),
}
#: every month name or abbreviation read, upper case, to its number
MONTHS: dict[str, int] = {name: number for number, names in _MONTH_NAMES.items() for name in names}

# OCR reads the letter O of a month as a zero ("10 0CT 2017"): both are accepted there.
_MONTH = "|".join(name.replace("O", "[O0]") for name in sorted(MONTHS, key=len, reverse=True))
# A year may touch the time after it when OCR drops the space ("25/12/20188:13:39PM").
_END = r"(?:(?!\d)|(?=\d{1,2}:\d\d))"
# Numeric dates use the same separator twice: the first is named so the second can refer back to it.
_SEP = r"\s?(?P<s1>[/.\-])\s?"
_AGAIN = r"\s?(?P=s1)\s?"
_YEAR_FIRST = re.compile(rf"(?<!\d)(?P<y>\d{{4}}){_SEP}(?P<m>\d{{1,2}}){_AGAIN}(?P<d>\d{{1,2}}){_END}")
# Four- and two-digit years apart: "01/03/1819:14" is 01/03/18 at 19:14 once the year 1819 is ruled out.
_NUMERIC = tuple(
    re.compile(rf"(?<![\d.,])(?P<a>\d{{1,2}}){_SEP}(?P<b>\d{{1,2}}){_AGAIN}(?P<y>{year}){_END}")
    for year in (r"\d{4}", r"\d{2}")
)
_DAY_MONTH = re.compile(
    rf"(?<![\dA-Z])(?P<d>\d{{1,2}})(?:ST|ND|RD|TH)?[\s/.\-]{{0,2}}(?P<mon>{_MONTH})\.?[\s/.\-,']{{0,3}}"
    rf"(?P<y>\d{{4}}|\d{{2}}){_END}",
    re.IGNORECASE,
)
_MONTH_DAY = re.compile(
    rf"(?<![A-Z])(?P<mon>{_MONTH})\.?[\s\-]{{0,2}}(?P<d>\d{{1,2}})(?:ST|ND|RD|TH)?,?[\s\-]{{0,2}}(?P<y>\d{{4}}){_END}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FoundDate:
    """A calendar date found in text, where it was, and whether day and month could have been swapped."""

    value: date
    text: str  # as written
    start: int
    end: int
    ambiguous: bool = False  # a numeric date whose day and month are both <= 12 (and differ)

    @property
    def iso(self) -> str:
        return self.value.isoformat()


def find_dates(text: str, order: Order = "DMY") -> list[FoundDate]:
    """Every valid date in `text`, left to right (impossible ones such as 31/02 are skipped).

    >>> [(d.text, d.iso) for d in find_dates("Date: 02/JAN/2017 14:05  Due OCT 3, 2016")]
    [('02/JAN/2017', '2017-01-02'), ('OCT 3, 2016', '2016-10-03')]
    >>> [d.iso for d in find_dates("12/25/2018 and 1.5.18")], find_dates("1.5.18")[0].ambiguous
    (['2018-12-25', '2018-05-01'], True)
    >>> [d.text for d in find_dates("25/12/20188:13:39PM 05Mar201818:24 01/03/1819:14")]  # OCR glued the time on
    ['25/12/2018', '05Mar2018', '01/03/18']
    >>> [d.iso for d in find_dates("Date:2016/05/0114:11:20 DATE :10 0CT 2017")]
    ['2016-05-01', '2017-10-10']
    """
    if order not in ("DMY", "MDY"):
        raise ValueError(f"order must be 'DMY' or 'MDY', got {order!r}")
    candidates: list[FoundDate] = []

    def add(match: re.Match[str], value: date | None, ambiguous: bool = False) -> None:
        if value is not None:
            start, end = match.span()
            candidates.append(FoundDate(value, text[start:end], start, end, ambiguous))

    for m in _YEAR_FIRST.finditer(text):
        add(m, _valid(int(m["y"]), int(m["m"]), int(m["d"])))
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        for m in pattern.finditer(text):
            add(m, _valid(_year(m["y"]), MONTHS[m["mon"].upper().replace("0", "O")], int(m["d"])))
    for m in (m for pattern in _NUMERIC for m in pattern.finditer(text)):
        first, second = int(m["a"]), int(m["b"])
        day_first = _day_first(first, second, order)
        if day_first is not None:
            day, month = (first, second) if day_first else (second, first)
            add(m, _valid(_year(m["y"]), month, day), first <= 12 and second <= 12 and first != second)
    # Overlapping readings (``25-12-18 DEC 25, 2018`` also holds ``18 DEC 25``): the leftmost, then longest wins,
    # as a reader scanning the line would take them.
    found: list[FoundDate] = []
    for candidate in sorted(candidates, key=lambda d: (d.start, -d.end)):
        if not found or candidate.start >= found[-1].end:
            found.append(candidate)
    return found


def parse_date(text: str, order: Order = "DMY") -> FoundDate | None:
    """The first date `text` holds, or None."""
    found = find_dates(text, order)
    return found[0] if found else None


def _day_first(first: int, second: int, order: Order) -> bool | None:
    """Whether the first of two day-or-month groups is the day; None when neither order is a date."""
    if first > 12 and second > 12:
        return None
    if first > 12:
        return True
    if second > 12:
        return False
    return order == "DMY"


def _year(digits: str) -> int:
    year = int(digits)
    if len(digits) == 2:
        return 2000 + year if year <= 68 else 1900 + year
    return year


def _valid(year: int, month: int, day: int) -> date | None:
    if not 1900 <= year <= 2099:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None
