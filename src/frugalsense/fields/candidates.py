"""Candidates for each receipt field, found by layout rules, with the hand-made features the scorer weighs.

- ``vendor``: one or two rows near the top (the name usually sits just above a registration number);
- ``vendor_address``: one to six consecutive rows near the top;
- ``date``: every date written anywhere (fields.dates), with the words around it;
- ``total``: every amount (fields.amounts) with the keywords of its row and the row above (TOTAL, ROUNDED,
  AMOUNT DUE, GRAND TOTAL, NETT; and the ones that mean something else: SUBTOTAL, GST, CASH, CHANGE...), its size
  and rank among the receipt's amounts, and whether cash minus change gives it.

Keywords are matched on the row's text in upper case with the spaces taken out, because OCR often drops them
("RoundedTotal(RM):"). The word lists are English and Malay (the development receipts are Malaysian).
Every feature is a number; `FEATURES[field]` fixes their order for the model.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from frugalsense.fields.amounts import Amount, currency_marks, find_amounts
from frugalsense.fields.dates import FoundDate, find_dates
from frugalsense.fields.layout import Line, ReceiptLayout, Row

__all__ = ["FEATURES", "Candidate", "candidates", "compact"]

_LEGAL = ("SDNBHD", "SDN.BHD", "BHD", "S/B", "PLT", "LTD", "LIMITED", "INC.", "LLC", "GMBH", "CORP", "(M)", "CO.")
_BUSINESS = (
    "ENTERPRISE", "TRADING", "RESTAURANT", "RESTORAN", "STORE", "MART", "SHOP", "HARDWARE", "PHARMACY", "FARMASI",
    "BOOK", "KEDAI", "MARKET", "CAFE", "BAKER", "GROUP", "HOLDING", "CENTRE", "CENTER", "STATIONERY", "SUPPLY",
    "SERVICE", "FURNISHING", "MACHINERY", "INTERNATIONAL", "GALLERY", "HANDICRAFT", "SEAFOOD", "PETROL",
)  # fmt: skip
_ADDRESS = (
    "JALAN", "JLN", "LORONG", "TAMAN", "TMN", "NO.", "LOT", "BLOK", "BLOCK", "LEVEL", "FLOOR", "TINGKAT", "ROAD",
    "STREET", "AVENUE", "BATU", "KAMPUNG", "BANDAR", "PUSAT", "SEKSYEN", "PERSIARAN", "LEBUH", "MALL", "PLAZA",
    "KOMPLEKS", "COMPLEX", "BUILDING", "WISMA", "SUITE", "UNIT", "KAWASAN", "PERINDUSTRIAN", "INDUSTRIAL", "DESA",
    "SUBANG", "PETALING", "SHAH ALAM", "KLANG", "CHERAS", "PUCHONG", "KEPONG", "AMPANG", "KAJANG", "FLR",
    "GROUND", "SHOPPING", "CENTRE",
)  # fmt: skip
_STATES = (
    "JOHOR", "SELANGOR", "KUALALUMPUR", "PUTRAJAYA", "PENANG", "PULAUPINANG", "PERAK", "PAHANG", "KEDAH",
    "KELANTAN", "TERENGGANU", "MELAKA", "MALACCA", "NEGERISEMBILAN", "SABAH", "SARAWAK", "PERLIS", "LABUAN",
    "SINGAPORE", "MALAYSIA", "WILAYAH",
)  # fmt: skip
_CONTACT = (
    "TEL", "FAX", "GST", "EMAIL", "E-MAIL", "WWW", "HTTP", "INVOICE", "RECEIPT", "REG", "PHONE", "H/P", "MOBILE",
    "WHATSAPP", "HOTLINE",
)  # fmt: skip
_TOTAL = ("TOTAL", "JUMLAH", "AMOUNTDUE", "AMTDUE", "PAYABLE", "BALANCEDUE")
_GRAND = ("GRAND", "NETT", "NETTOTAL", "ROUNDED", "ROUNDD", "ROUNDTOTAL", "DUE", "PAYABLE", "INCL", "TOTALAMOUNT")
_SUB = ("SUBTOTAL", "SUB-TOTAL", "SUBTTL", "SUBTOT")
_TAX = ("GST", "SST", "TAX", "VAT", "CUKAI")
_EXCL = ("EXCL", "BEFORE", "W/OGST", "EXCLUDING")
_PAY = ("CASH", "TENDER", "PAID", "PAYMENT", "VISA", "MASTER", "CARD", "CREDIT", "DEBIT", "TUNAI")
_CHANGE = ("CHANGE", "BAKI", "CHANGEDUE")
_ADJUST = ("ADJ", "ROUNDINGADJ", "ROUNDING")
_DISCOUNT = ("DISC", "DISCOUNT", "SAVING", "VOUCHER")
_COUNT = ("QTY", "ITEM", "PCS", "QUANTITY", "UNIT", "@")
_DATE_WORDS = ("DATE", "TARIKH", "DATED", "TIME")
_NOT_ISSUE_DATE = ("EXP", "DUE", "VALID", "BEFORE", "EXPIRY", "BIRTH", "DOB")
_REG_NO = re.compile(r"\(?\d{4,}-[A-Z]\)?|\bCO\.?\s*REG|\bCOMPANY\s*NO|\bROC\b", re.IGNORECASE)
_POSTCODE = re.compile(r"(?<!\d)\d{5}(?!\d)")
_PHONE = re.compile(r"(?<![\d/])\+?(?:60)?0\d{1,2}\s?-\s?\d{3,4}\s?\d{4}(?!\d)")
_MONTH_FIRST = re.compile(r"\s*(?:0?[1-9]|1[0-2])\s?[/.\-]\s?(?:1[3-9]|2\d|3[01])\s?[/.\-]")
_TIME = re.compile(r"\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:AM|PM)?|\d{1,2}:\d{2}", re.IGNORECASE)

FEATURES: dict[str, tuple[str, ...]] = {
    "vendor": (
        "bias", "rows", "start", "first_row", "legal", "business", "legal_last", "height", "tallest", "centred",
        "upper", "digits", "letters", "reg_here", "reg_next", "address_here", "address_next", "contact_here",
        "lowercase_before", "rows_before", "confidence", "stripped", "dangling", "joins_dangling",
    ),
    "vendor_address": (
        "bias", "rows", "n_address", "n_postcode", "n_state", "n_contact", "n_reg", "n_name", "n_paren", "n_plain",
        "n_plain_comma", "n_tall", "n_digits", "start", "address_first", "address_last", "postcode_last",
        "state_last", "comma_last", "before_legal", "before_reg", "before_address", "before_comma",
        "after_address", "after_postcode", "after_contact", "number_first", "confidence",
    ),
    "date": (
        "bias", "keyword", "keyword_above", "not_issue", "time", "y", "first", "order", "dates", "same",
        "ambiguous", "named_month", "four_digit_year", "confidence", "year_far", "month_first", "money_row",
    ),
    "total": (
        "bias", "total", "grand", "sub", "tax", "excl", "pay", "change", "adjust", "discount", "count",
        "total_above", "kw_alone", "y", "x_right", "rightmost", "height", "max", "rank", "repeats", "cash_change",
        "cents", "no_decimals", "currency", "negative", "ambiguous", "log_value", "confidence", "last_total_row",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """A possible value for `field`, the lines it came from, and its features in `FEATURES[field]` order."""

    field: str
    value: str  # normalised: ISO date, plain decimal amount, or the text
    text: str  # as read
    lines: tuple[Line, ...]
    features: tuple[float, ...]
    currency: str | None = None


def compact(text: str) -> str:
    """Upper case without spaces: how keywords are matched, whatever OCR did to the spacing.

    >>> compact("Rounded  Total (RM):")
    'ROUNDEDTOTAL(RM):'
    """
    return re.sub(r"\s+", "", text).upper()


def _has(text: str, words: Iterable[str]) -> float:
    return 1.0 if any(w in text for w in words) else 0.0


def candidates(layout: ReceiptLayout, field: str) -> list[Candidate]:
    """Every candidate for `field` on the page."""
    if field == "vendor":
        return _vendor(layout)
    if field == "vendor_address":
        return _address(layout)
    if field == "date":
        return _dates(layout)
    if field == "total":
        return _totals(layout)
    raise ValueError(f"no candidates for field {field!r}; known: {sorted(FEATURES)}")


def header_rows(layout: ReceiptLayout, limit: int = 14) -> list[Row]:
    """The rows above the body: up to the first row with an amount with cents (but not an address's house
    numbers, "NO.55,57 & 59, JALAN ..."), at most `limit`."""
    rows: list[Row] = []
    for row in layout.rows[:limit]:
        if rows and any(a.decimals == 2 for a in find_amounts(row.text)) and not _row_flags(row)["address"]:
            break
        rows.append(row)
    return rows


# A registration number printed after the name: "(728515-M)", "273500-U (KSB)", "(I39386X)", "(JM0292487-D)".
_TRAILING_REG = re.compile(r"[\s(\[]*\b[A-Z]{0,3}[0-9IOS]{5,9}\s?-?\s?[A-Z]\b\)?(?:\s*\(\w+\))?\s*$")


_ONE_IN_WORD = re.compile(r"(?<=[a-z]{2})1(?![0-9])|(?<![0-9])1(?=[a-z]{2})")
_ZERO_IN_WORD = re.compile(r"(?<=[A-Za-z])0(?=[A-Za-z])|\b0(?=[A-Za-z]{2})|(?<=[A-Za-z]{2})0\b")
_O_IN_NUMBER = re.compile(r"(?<=\d\d)O+(?![A-Za-z])")
_SDN_BHD = re.compile(r"(?<![A-Za-z])S[DOIU0]N(\.?\s?)B[HI]D\b", re.IGNORECASE)

# Words printed on Malaysian receipt headers (streets, places, states, company words): an unknown word a
# recogniser slip or two away from one of them is read as it (`correct_words`). English and Malay.
_LEXICON = frozenset(
    (
        "JALAN", "JLN", "LORONG", "PERSIARAN", "LEBUH", "LEBUHRAYA", "TAMAN", "TMN", "KAWASAN", "PERINDUSTRIAN",
        "INDUSTRIAL", "BANDAR", "SEKSYEN", "KAMPUNG", "BATU", "PUSAT", "BLOK", "BLOCK", "LEVEL", "FLOOR", "GROUND",
        "TINGKAT", "WISMA", "KOMPLEKS", "COMPLEX", "MEDAN", "DESA", "SERI", "UTAMA", "JAYA", "BARU", "INDAH",
        "PERDANA", "SETIA", "ALAM", "SHAH", "SUBANG", "PETALING", "KUALA", "LUMPUR", "SELANGOR", "JOHOR", "BAHRU",
        "PENANG", "PINANG", "PULAU", "PERAK", "IPOH", "PAHANG", "KEDAH", "KELANTAN", "TERENGGANU", "MELAKA",
        "MALACCA", "NEGERI", "SEMBILAN", "SABAH", "SARAWAK", "KUCHING", "KOTA", "KINABALU", "PERLIS", "LABUAN",
        "PUTRAJAYA", "CYBERJAYA", "MALAYSIA", "DARUL", "EHSAN", "TAKZIM", "KLANG", "CHERAS", "PUCHONG", "KEPONG",
        "AMPANG", "KAJANG", "SETAPAK", "RAWANG", "SERDANG", "SEMENYIH", "BANGI", "NILAI", "SEREMBAN", "DAMANSARA",
        "MAHKOTA", "WANGSA", "BUKIT", "SUNGAI", "SIMPANG", "PLAZA", "MALL", "CENTRE", "CENTER", "SHOPPING", "ROAD",
        "STREET", "AVENUE", "SQUARE", "CITY", "BUSINESS", "SUITE", "UNIT", "WILAYAH", "PERSEKUTUAN", "KEMBANGAN",
        "KELANA", "SENTRAL", "SEGAMBUT", "SENTUL", "KERAMAT", "GOMBAK", "SELAYANG", "SUNWAY", "TUAN", "PUTERI",
        "MUTIARA", "PERMAI", "PANDAN", "PASIR", "GUDANG", "SKUDAI", "SDN", "BHD", "ENTERPRISE", "TRADING",
        "RESTORAN", "RESTAURANT", "HARDWARE", "STORE", "STORES", "STATIONERY", "MARKETING", "SUPERMARKET",
        "PHARMACY", "FARMASI", "BAKERY", "BAKERIES", "CONFECTIONERY", "ELECTRICAL", "HOLDINGS", "INDUSTRIES",
        "SERVICES"
    )
)  # fmt: skip
# Characters the recogniser takes for each other (upper case): the only substitutions `correct_words` undoes.
_CONFUSED = (
    frozenset("IL1|!"), frozenset("MNH"), frozenset("FP"), frozenset("O0DQ"), frozenset("B8E"), frozenset("S5"),
    frozenset("Z2"), frozenset("G6"), frozenset("UV"),
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9|!]*[A-Za-z]")
_GLUED = re.compile(r"(?<=[a-z])(?=[A-Z])")  # "JalanTampoi": two words


@functools.lru_cache(maxsize=4096)
def _lexicon_word(word: str) -> str | None:
    """The one lexicon word `word` is a slip of: the same length (three, or five and more) and apart only by
    confusable characters (at most one per five letters), or, for long words, a letter or two dropped (difflib's
    ratio at least 0.9)."""
    upper = word.upper()
    if len(upper) < 3 or len(upper) == 4 or upper in _LEXICON:
        return None  # four letters are too short to tell a slip from another word ("HALL" is no "MALL")
    allowed = max(1, len(upper) // 5)
    hits = set()
    for entry in _LEXICON:
        if len(entry) == len(upper):
            diff = [(a, b) for a, b in zip(upper, entry, strict=True) if a != b]
            if len(diff) <= allowed and all(any(a in g and b in g for g in _CONFUSED) for a, b in diff):
                hits.add(entry)
        elif len(upper) >= 8 and 0 < len(entry) - len(upper) <= 2 and _ratio(upper, entry) >= 0.9:
            hits.add(entry)
    return hits.pop() if len(hits) == 1 else None


def _ratio(a: str, b: str) -> float:
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b).ratio()


def correct_words(text: str) -> str:
    """Words of `text` that are a recogniser's slip of a known address or company word, spelt right (in the
    case they were printed in); any other word is left alone.

    >>> correct_words("Jaian Lapangan, Seiangor"), correct_words("TANAN BERKELEY, KUALA LUMFUR")
    ('Jalan Lapangan, Selangor', 'TAMAN BERKELEY, KUALA LUMPUR')
    >>> correct_words("JIn Desa, KawasanPerindustrn Tampoi"), correct_words("BERJUNTAI, TAMAN")
    ('Jln Desa, KawasanPerindustrian Tampoi', 'BERJUNTAI, TAMAN')
    """

    def fix(match: re.Match[str]) -> str:
        parts = _GLUED.split(match.group())
        return "".join(_in_case(hit, part) if (hit := _lexicon_word(part)) else part for part in parts)

    return _WORD.sub(fix, text)


def _in_case(word: str, model: str) -> str:
    if model.isupper():
        return word
    return word.capitalize() if model[:1].isupper() else word.lower()


def clean_name(text: str) -> str:
    """Undo the recogniser's commonest slips in names and addresses: a zero inside a word is the letter O, an O
    ending a number is a zero, a one touching lower-case letters is an l, a middle dot is a space, and
    ``SON BHD`` / ``SIN BHD`` is the Malaysian ``SDN BHD``.

    >>> clean_name("KING'S CONFECTI0NERY S/B"), clean_name("L0T 1851"), clean_name("AMANO MALAYSIA SON BHD")
    ("KING'S CONFECTIONERY S/B", 'LOT 1851', 'AMANO MALAYSIA SDN BHD')
    >>> clean_name("433OO SERI KEMBANGAN"), clean_name("JLN·SS21/35"), clean_name("Leve1 6,Ja1an SS21/39")
    ('43300 SERI KEMBANGAN', 'JLN SS21/35', 'Level 6,Jalan SS21/39')
    """
    text = _ZERO_IN_WORD.sub("O", text.replace("·", " "))
    text = _ONE_IN_WORD.sub("l", text)
    text = _O_IN_NUMBER.sub(lambda m: "0" * len(m.group()), text)
    return correct_words(_SDN_BHD.sub(lambda m: f"SDN{m.group(1)}BHD", text))


def without_registration(text: str) -> str:
    """`text` without a company registration number at its end (at least four digits in it).

    >>> without_registration("YONG TAT HARDWARE TRADING (JM0292487-D)")
    'YONG TAT HARDWARE TRADING'
    >>> without_registration("KING'S CONFECTIONERY S/B 273500-U (KSB)"), without_registration("NO 4 JALAN 10")
    ("KING'S CONFECTIONERY S/B", 'NO 4 JALAN 10')
    """
    match = _TRAILING_REG.search(text)
    if match is None or match.start() == 0 or sum(c.isdigit() for c in match.group()) < 4:
        return text
    return text[: match.start()].rstrip(" ,-")


def _row_flags(row: Row) -> dict[str, float]:
    cleaned = clean_name(row.text)  # "Ja1an", "Seiangor": the words as printed
    text = compact(cleaned)
    letters = [c for c in row.text if c.isalpha()]
    return {
        "legal": _has(text, _LEGAL),
        "business": _has(text, _BUSINESS),
        "address": _has(text, (compact(w) for w in _ADDRESS)) or float(bool(_POSTCODE.search(cleaned))),
        "postcode": float(bool(_POSTCODE.search(cleaned))),
        "state": _has(text, _STATES),
        "reg": float(bool(_REG_NO.search(row.text))),
        "contact": max(_has(text, _CONTACT), float(bool(_PHONE.search(row.text)))),
        "paren": float(row.text.lstrip()[:1] in "([" and row.text.rstrip()[-1:] in ")]"),
        "upper": sum(c.isupper() for c in letters) / len(letters) if letters else 0.0,
        "digits": sum(c.isdigit() for c in text) / max(1, len(text)),
        "letters": float(len(letters)),
    }


def _span_text(rows: Sequence[Row]) -> str:
    return clean_name(" ".join(row.text for row in rows).strip())


def _span_lines(rows: Sequence[Row]) -> tuple[Line, ...]:
    return tuple(line for row in rows for line in row.lines)


def _vendor(layout: ReceiptLayout) -> list[Candidate]:
    head = header_rows(layout, 10)
    flags = [_row_flags(r) for r in head]
    heights = [r.height for r in head]
    out = []
    for start in range(len(head)):
        for size in (1, 2):
            rows = head[start : start + size]
            if len(rows) < size or flags[start]["letters"] < 2:
                continue
            f = flags[start : start + size]
            after = flags[start + size] if start + size < len(head) else None
            before = flags[start - 1] if start > 0 else None
            height = max(r.height for r in rows) / layout.line_height
            letters = sum(x["letters"] for x in f)
            values = {
                "bias": 1.0,
                "rows": float(size),
                "start": float(start),
                "first_row": float(start == 0),
                "legal": max(x["legal"] for x in f),
                "business": max(x["business"] for x in f),
                "legal_last": f[-1]["legal"],
                "height": height,
                "tallest": float(max(r.height for r in rows) >= max(heights) * 0.95),
                "centred": max(layout.centred(r) for r in rows),
                "upper": min(x["upper"] for x in f),
                "digits": max(x["digits"] for x in f),
                "letters": math.log1p(letters),
                "reg_here": max(x["reg"] for x in f),
                "reg_next": after["reg"] if after else 0.0,
                "address_here": max(x["address"] for x in f),
                "address_next": after["address"] if after else 0.0,
                "contact_here": max(x["contact"] for x in f),
                "lowercase_before": float(before is not None and before["upper"] < 0.5),
                "rows_before": float(start),
                "confidence": min(r.confidence for r in rows),
                # a name broken over two rows: "HOME MASTER HARDWARE &" / "ELECTRICAL"
                "dangling": float(rows[-1].text.rstrip()[-1:] in "&-,("),
                "joins_dangling": float(size == 2 and rows[0].text.rstrip()[-1:] in "&-,("),
            }
            text = _span_text(rows)
            stripped = without_registration(text)
            out.append(_candidate("vendor", text, text, _span_lines(rows), {**values, "stripped": 0.0}))
            if stripped != text:
                values = {**values, "stripped": 1.0, "reg_here": 0.0, "letters": math.log1p(len(stripped))}
                out.append(_candidate("vendor", stripped, stripped, _span_lines(rows), values))
    return out


def _address(layout: ReceiptLayout) -> list[Candidate]:
    """Spans of one to six header rows. Most features count the span's rows of each kind (address words, a
    postcode, a name, contact details...), so the model's score is a sum over the rows it takes: it learns
    which rows belong and the span whose rows all add to the score wins; the rest describe its edges."""
    head = header_rows(layout, 14)
    flags = [_row_flags(r) for r in head]
    kinds = [_address_row(row, x, layout) for row, x in zip(head, flags, strict=True)]
    out = []
    for start in range(len(head)):
        for size in range(1, 7):
            if start + size > len(head):
                break
            rows = head[start : start + size]
            f = flags[start : start + size]
            before = flags[start - 1] if start > 0 else None
            after = flags[start + size] if start + size < len(head) else None
            text = _span_text(rows)
            values = {name: sum(k[name] for k in kinds[start : start + size]) for name in _ROW_KINDS}
            values |= {
                "bias": 1.0,
                "start": float(start),
                "address_first": f[0]["address"],
                "address_last": f[-1]["address"],
                "postcode_last": f[-1]["postcode"],
                "state_last": f[-1]["state"],
                "comma_last": float(rows[-1].text.rstrip()[-1:] == ","),
                "before_legal": before["legal"] if before else 0.0,
                "before_reg": before["reg"] if before else 0.0,
                "before_address": before["address"] if before else 0.0,
                "before_comma": float(start > 0 and head[start - 1].text.rstrip()[-1:] == ","),
                "after_address": after["address"] if after else 0.0,
                "after_postcode": after["postcode"] if after else 0.0,
                "after_contact": after["contact"] if after else 0.0,
                "number_first": float(bool(re.match(r"\s*(NO\.?\s*)?\d", rows[0].text, re.IGNORECASE))),
                "confidence": min(r.confidence for r in rows),
            }
            out.append(_candidate("vendor_address", text, text, _span_lines(rows), values))
    return out


#: the kinds of header row an address span counts (`_address_row`)
_ROW_KINDS = (
    "rows", "n_address", "n_postcode", "n_state", "n_contact", "n_reg", "n_name", "n_paren", "n_plain",
    "n_plain_comma", "n_tall", "n_digits",
)  # fmt: skip


def _address_row(row: Row, flags: dict[str, float], layout: ReceiptLayout) -> dict[str, float]:
    plain = not flags["address"] and not flags["contact"] and not flags["reg"]
    return {
        "rows": 1.0,
        "n_address": flags["address"],
        "n_postcode": flags["postcode"],
        "n_state": flags["state"],
        "n_contact": flags["contact"],
        "n_reg": flags["reg"],
        "n_name": max(flags["legal"], flags["business"]),
        "n_paren": flags["paren"],
        "n_plain": float(plain),
        "n_plain_comma": float(plain and row.text.rstrip()[-1:] == ","),
        "n_tall": float(row.height > 1.25 * layout.line_height),
        "n_digits": flags["digits"],
    }


def _dates(layout: ReceiptLayout) -> list[Candidate]:
    found: list[tuple[Row, Line, FoundDate]] = []
    for row in layout.rows:
        for line in row.lines:
            found.extend((row, line, d) for d in find_dates(line.text))
    counts = Counter(d.iso for _, _, d in found)
    years = sorted(d.value.year for _, _, d in found)
    usual_year = years[len(years) // 2] if years else 0
    out = []
    for order, (row, line, d) in enumerate(found):
        text = compact(row.text)
        above = layout.rows[row.number - 1] if row.number > 0 else None
        values = {
            "bias": 1.0,
            "keyword": _has(text, _DATE_WORDS),
            "keyword_above": _has(compact(above.text), _DATE_WORDS) if above else 0.0,
            "not_issue": _has(text, _NOT_ISSUE_DATE),
            "time": float(bool(_TIME.search(row.text.replace(d.text, " ")))),
            "y": layout.y_rel(row),
            "first": float(order == 0),
            "order": float(order),
            "dates": float(len(found)),
            "same": float(counts[d.iso]),
            "ambiguous": float(d.ambiguous),
            "named_month": float(any(c.isalpha() for c in d.text)),
            "four_digit_year": float(bool(re.search(r"\d{4}", d.text))),
            "confidence": line.confidence,
            "year_far": float(min(10, abs(d.value.year - usual_year))),  # a time read as a date: "11-22-30"
            # numbers that only read as a date month first, on day-first receipts: a code or a time ("11-22-30")
            "month_first": float(bool(_MONTH_FIRST.match(d.text))),
            "money_row": _has(text, (*_PAY, *_CHANGE, *_TOTAL)),  # a stamp on the "CHANGE" row, not the sale's
        }
        text = _ZERO_IN_WORD.sub("O", d.text)  # "0ct 3, 2016": the month as printed
        out.append(_candidate("date", d.iso, text, (line,), values))
    return out


@dataclass(frozen=True)
class _Found:
    row: Row
    line: Line
    amount: Amount


# "48. 95" ending a line: the recogniser put a space after the decimal point
_SPACED_CENTS = re.compile(r"(?<=\d)([.,]) (?=\d{2}\s*$)")


def _amounts(layout: ReceiptLayout) -> list[_Found]:
    """Amounts worth considering: positive or negative money, not percentages, dates, codes or phone numbers."""
    found = []
    for row in layout.rows:
        for line in row.lines:
            text = _SPACED_CENTS.sub(r"\1", line.text)
            dates = [(d.start, d.end) for d in find_dates(text)]
            for a in find_amounts(text):
                following = text[a.end : a.end + 1]
                digits = sum(c.isdigit() for c in a.text)
                if following == "%" or any(a.start < e and s < a.end for s, e in dates):
                    continue
                if a.decimals not in (0, 2) or (a.decimals == 0 and (digits > 5 or a.currency is None)):
                    continue
                found.append(_Found(row, line, a))
    return found


def _totals(layout: ReceiptLayout) -> list[Candidate]:
    found = _amounts(layout)
    if not found:
        return []
    values = [f.amount.value for f in found]
    biggest = max(values)
    distinct = sorted(set(values), reverse=True)
    counts = Counter(values)
    cash_change = _cash_minus_change(found)
    total_rows = [
        r.number for r in layout.rows if _has(compact(r.text), _TOTAL) and not _has(compact(r.text), _SUB)
    ]
    last_total_row = max(total_rows) if total_rows else -1
    currency = _page_currency(layout, found)
    out = []
    for item in found:
        row, line, a = item.row, item.line, item.amount
        text = compact(row.text)
        above = layout.rows[row.number - 1] if row.number > 0 else None
        above_text = compact(above.text) if above else ""
        rest = compact(line.text.replace(a.text, " "))
        feats = {
            "bias": 1.0,
            "total": _has(text, _TOTAL),
            "grand": _has(text, _GRAND),
            "sub": _has(text, _SUB),
            "tax": _has(text, _TAX),
            "excl": _has(text, _EXCL),
            "pay": _has(text, _PAY),
            "change": _has(text, _CHANGE),
            "adjust": _has(text, _ADJUST) * (1.0 - _has(text, ("TOTAL",))),
            "discount": _has(text, _DISCOUNT),
            "count": _has(text, _COUNT),
            "total_above": _has(above_text, _TOTAL) * (1.0 - _has(above_text, _SUB)),
            "kw_alone": float(not any(ch.isalpha() for ch in rest)),
            "y": layout.y_rel(row),
            "x_right": layout.x_rel(line.x1),
            "rightmost": float(line is row.lines[-1]),
            "height": line.height / layout.line_height,
            "max": float(a.value == biggest),
            "rank": float(distinct.index(a.value)),
            "repeats": float(min(counts[a.value], 5)),
            "cash_change": float(cash_change is not None and a.value == cash_change),
            "cents": float(a.decimals == 2),
            "no_decimals": float(a.decimals == 0),
            "currency": float(a.currency is not None),
            "negative": float(a.value < 0),
            "ambiguous": float(a.ambiguous),
            "log_value": math.log10(1.0 + abs(float(a.value))),
            "confidence": line.confidence,
            "last_total_row": float(row.number == last_total_row),
        }
        out.append(_candidate("total", a.plain(), amount_text(a), (line,), feats, a.currency or currency))
    return out


_SIGNS = frozenset("$€£¥₹₩₱฿₫₺₽")


def amount_text(amount: Amount) -> str:
    """An amount as a spreadsheet cell shows it: the plain number, after its currency sign when the receipt
    prints a sign ("$8.20"); a letter code ("RM 9.00") goes to the currency column instead. This is also how
    SROIE's keys mostly write totals.

    >>> [amount_text(a) for a in find_amounts("RM 9.00 $8.20 1.234,50 EUR")]
    ['9.00', '$8.20', '1234.50']
    """
    sign = next((c for c in amount.text if c in _SIGNS), "")
    return f"{sign}{amount.plain()}"


def _cash_minus_change(found: Sequence[_Found]) -> Decimal | None:
    """What was paid minus the change given, when the receipt prints both: it is the total."""
    # Some tills print what was tendered as a negative amount ("Cash -50.00").
    cash = [abs(f.amount.value) for f in found if _has(compact(f.row.text), _PAY) and f.amount.value != 0]
    change = [f.amount.value for f in found if _has(compact(f.row.text), _CHANGE) and f.amount.value >= 0]
    if not cash or not change:
        return None
    return max(cash) - change[0]


def _page_currency(layout: ReceiptLayout, found: Sequence[_Found]) -> str | None:
    """The currency the receipt writes most often beside its amounts, else anywhere ("Amount (RM)")."""
    marks = Counter(f.amount.currency for f in found if f.amount.currency)
    if not marks:
        marks = Counter(c for row in layout.rows for c in currency_marks(row.text))
    return marks.most_common(1)[0][0] if marks else None


def _candidate(
    field: str,
    value: str,
    text: str,
    lines: tuple[Line, ...],
    values: dict[str, float],
    currency: str | None = None,
) -> Candidate:
    names = FEATURES[field]
    if set(values) != set(names):
        raise AssertionError(f"{field} features differ from FEATURES: {sorted(set(values) ^ set(names))}")
    return Candidate(field, value, text, lines, tuple(float(values[n]) for n in names), currency)
