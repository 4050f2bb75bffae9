"""Receipt fields: amounts and dates as people write them, layout rules, the shipped scorer and profile,
abstention, and the whole path (real OCR through the text ladder) on real SROIE receipts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.calibration.fields_train import (
    THRESHOLD_GRID,
    Scored,
    calibrate_threshold,
    field_is_right,
    sroie_normalise,
)
from frugalsense.errors import ConfigurationError
from frugalsense.fields import (
    extract_receipt_fields,
    find_amounts,
    find_dates,
    parse_amount,
    parse_date,
    read_receipt,
    receipt_threshold,
)
from frugalsense.fields.candidates import FEATURES, candidates, clean_name, correct_words, without_registration
from frugalsense.fields.layout import ReceiptLayout
from frugalsense.fields.lines import check_sum, line_items
from frugalsense.fields.receipts import USER_MODEL_FILE, default_scorer
from frugalsense.fields.scorer import FieldScorer
from frugalsense.fields.types import LineItem
from frugalsense.profiles import load_profile
from frugalsense.results import TextLine
from frugalsense.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "value", "currency", "ambiguous"),
    [
        ("RM 9.00", "9.00", "MYR", False),
        ("RM9.00", "9.00", "MYR", False),
        ("9,00 EUR", "9.00", "EUR", False),
        ("1.234,50", "1234.50", None, False),
        ("$1,234.50", "1234.50", "USD", False),
        ("1,234,567", "1234567", None, False),
        ("€ 12", "12", "EUR", False),
        ("£3.5", "3.5", "GBP", False),
        ("S$ 4.10", "4.10", "SGD", False),
        ("9.00 USD", "9.00", "USD", False),
        ("CHF 1'234.50", "1234.50", "CHF", False),
        ("-12,00", "-12.00", None, False),
        ("1,234", "1234", None, True),  # one mark before three digits: thousands, flagged
        ("0,500", "0.500", None, False),
        ("FORM 9.00", "9.00", None, False),  # the RM of FORM is no ringgit
        ("Grand Tota1 RM51.30", "51.30", "MYR", False),  # the code belongs to the number after it
        ("TOTAL", None, None, False),
        ("1,23,4", None, None, False),
    ],
)
def test_amounts_as_people_write_them(text: str, value: str | None, currency: str | None, ambiguous: bool) -> None:
    found = parse_amount(text)
    if value is None:
        assert found is None
        return
    assert found is not None
    assert (found.value, found.currency, found.ambiguous) == (Decimal(value), currency, ambiguous)


def test_every_amount_on_a_line_is_found_left_to_right() -> None:
    found = find_amounts("2 x RM 4.50   9.00  GST@6% 0.51")
    assert [(a.plain(), a.currency) for a in found] == [
        ("2", None),
        ("4.50", "MYR"),
        ("9.00", None),
        ("6", None),
        ("0.51", None),
    ]


@pytest.mark.parametrize(
    ("text", "order", "iso", "ambiguous"),
    [
        ("25/12/2018", "DMY", "2018-12-25", False),
        ("25 DEC 2018", "DMY", "2018-12-25", False),
        ("2018-12-25", "DMY", "2018-12-25", False),
        ("25-12-18", "DMY", "2018-12-25", False),
        ("DEC 25, 2018", "DMY", "2018-12-25", False),
        ("12/25/2018", "DMY", "2018-12-25", False),  # 25 cannot be a month: month-first whatever the rule
        ("05/03/2018", "DMY", "2018-03-05", True),  # ambiguous: day-first by default ...
        ("05/03/2018", "MDY", "2018-05-03", True),  # ... month-first when asked
        ("02/JAN/2017", "DMY", "2017-01-02", False),
        ("10 0CT 2017", "DMY", "2017-10-10", False),  # OCR's zero for the O of OCT
        ("Date:25/12/20188:13:39PM", "DMY", "2018-12-25", False),  # the time glued on by OCR
        ("01/03/1819:14", "DMY", "2018-03-01", True),  # day and month both <= 12: ambiguous
        ("25 Mac 2018", "DMY", "2018-03-25", False),  # Malay
        ("31/02/2018", "DMY", None, False),
        ("TOTAL 12.50", "DMY", None, False),
    ],
)
def test_dates_to_iso(text: str, order: str, iso: str | None, ambiguous: bool) -> None:
    found = parse_date(text, order)  # type: ignore[arg-type]
    if iso is None:
        assert found is None
        return
    assert found is not None
    assert (found.iso, found.ambiguous) == (iso, ambiguous)
    assert found.value == date.fromisoformat(iso)


def test_a_bad_order_is_refused() -> None:
    with pytest.raises(ValueError, match="DMY"):
        find_dates("05/03/2018", "YMD")  # type: ignore[arg-type]


def _line(text: str, y: float, x: float = 40.0, confidence: float = 0.98) -> TextLine:
    return TextLine(text, ((x, y), (x + 300, y), (x + 300, y + 20), (x, y + 20)), confidence)


RECEIPT = [
    _line("tan ah kow", 0),
    _line("KEDAI MAJU SDN BHD (123456-X)", 25),
    _line("NO.5, JALAN SAGU 18,", 50),
    _line("81100 JOHOR BAHRU, JOHOR.", 75),
    _line("TEL: 07-1234567", 100),
    _line("Date: 25/12/2018 8:13PM", 140),
    _line("SUBTOTAL", 180),
    _line("8.49", 180, 380),
    _line("GST 6%", 205),
    _line("0.51", 205, 380),
    _line("TOTAL RM", 230),
    _line("9.00", 230, 380),
    _line("CASH", 260),
    _line("10.00", 260, 380),
    _line("CHANGE", 290),
    _line("1.00", 290, 380),
]


def test_layout_puts_a_keyword_and_its_amount_in_one_row() -> None:
    layout = ReceiptLayout.from_lines(RECEIPT)
    assert "TOTAL RM 9.00" in [row.text for row in layout.rows]
    assert len(layout.rows) == len(RECEIPT) - 5  # five amounts joined their keywords


def test_every_candidate_carries_the_features_the_model_expects() -> None:
    layout = ReceiptLayout.from_lines(RECEIPT)
    for field, names in FEATURES.items():
        found = candidates(layout, field)
        assert found, field
        assert all(len(c.features) == len(names) for c in found)
    assert {c.value for c in candidates(layout, "total")} >= {"9.00", "10.00", "1.00", "8.49"}


def test_the_name_is_cut_from_its_registration_number() -> None:
    assert without_registration("KEDAI MAJU SDN BHD (123456-X)") == "KEDAI MAJU SDN BHD"
    assert without_registration("NO.5, JALAN SAGU 18,") == "NO.5, JALAN SAGU 18,"


@pytest.mark.parametrize(
    ("read", "meant"),
    [
        ("Jaian Lapangan Terbang, 47200 Subang, Seiangor", "Jalan Lapangan Terbang, 47200 Subang, Selangor"),
        ("TANAN BERKELEY 41150 KLANG", "TAMAN BERKELEY 41150 KLANG"),  # M read as N
        ("52100 KUALA LUMFUR.", "52100 KUALA LUMPUR."),  # P read as F
        ("JIn Desa Tebrau", "Jln Desa Tebrau"),  # l read as I, the case kept
        ("KawasanPerindustrn Tampoi", "KawasanPerindustrian Tampoi"),  # glued, two letters dropped
        ("GARDENIA BAKERIES (KL) SDNBID", "GARDENIA BAKERIES (KL) SDNBHD"),
        ("ENTERPRISE (SETIA ALAM)SUN BHD", "ENTERPRISE (SETIA ALAM)SDN BHD"),
        # left alone: words that are no slip of a known one, and four-letter words ("HALL" is no "MALL")
        ("BATANG BERJUNTAI, TOWN HALL, ALAN", "BATANG BERJUNTAI, TOWN HALL, ALAN"),
        ("NO.53, JALAN BESAR, TAMAN DAYA", "NO.53, JALAN BESAR, TAMAN DAYA"),
    ],
)
def test_names_and_addresses_get_recogniser_slips_of_known_words_undone(read: str, meant: str) -> None:
    assert clean_name(read) == meant


def test_an_unknown_word_is_never_corrected() -> None:
    assert correct_words("KIKU JAPANESE RESTAURANT") == "KIKU JAPANESE RESTAURANT"
    assert correct_words("Sunway Velocity, Cheras") == "Sunway Velocity, Cheras"


def test_the_address_leaves_out_the_licensee_and_registration_rows_above_it() -> None:
    page = [
        _line("Gerbang Alaf Restaurants Sdn Bhd", 0),
        _line("(65351-M)", 25),
        _line("Licensee of McDonald's", 50),
        _line("Level 6, Bangunan TH, Damansara Uptown3", 75),
        _line("No.3, Jalan SS21/39, 47400 Petaling Jaya", 100),
        _line("Selangor", 125),
        _line("(GST ID No: 000504664064)", 150),
        _line("Tel No. 03-9010-9849", 175),
        _line("Date: 21/03/2018", 210),
        _line("Total Rounded", 250),
        _line("25.40", 250, 380),
    ]
    found = extract_receipt_fields(page, threshold=0.0)
    assert found.value("vendor_address") == (
        "Level 6, Bangunan TH, Damansara Uptown3 No.3, Jalan SS21/39, 47400 Petaling Jaya Selangor"
    )


def test_a_total_read_with_a_space_after_its_decimal_point_is_still_a_candidate() -> None:
    page = [*RECEIPT[:10], _line("TOTAL RM", 230), _line("9. 00", 230, 380), *RECEIPT[12:]]
    assert "9.00" in {c.value for c in candidates(ReceiptLayout.from_lines(page), "total")}
    assert extract_receipt_fields(page, threshold=0.0).value("total") == "9.00"


def test_a_code_that_reads_only_month_first_loses_to_the_printed_date() -> None:
    page = [*RECEIPT[:5], _line("MC11-22-30", 120), _line("Date: 24/01/2016 8:13PM", 140), *RECEIPT[6:]]
    assert extract_receipt_fields(page, threshold=0.0).value("date") == "2016-01-24"


def test_a_receipt_gives_its_fields_with_evidence() -> None:
    found = extract_receipt_fields(RECEIPT, threshold=0.0)
    assert found.value("vendor") == "KEDAI MAJU SDN BHD"
    assert found.value("vendor_address") == "NO.5, JALAN SAGU 18, 81100 JOHOR BAHRU, JOHOR."
    assert found.value("date") == "2018-12-25"
    total = found.get("total")
    assert total is not None and (total.value, total.currency) == ("9.00", "MYR")
    assert [e.line for e in total.evidence] == [11]
    assert total.evidence[0].box.y == 230
    tax = found.get("tax")
    assert tax is not None and tax.value == "0.51"  # 6% of 8.49 checks out against the total
    body = found.to_dict()
    assert set(body["fields"]) == {"vendor", "vendor_address", "date", "total", "tax"} and body["not_found"] == []
    assert body["line_items"] == [] and body["checks"] == {}  # no item rows between the date and the totals
    assert json.loads(json.dumps(body)) == body


def test_abstention_leaves_unsure_fields_out_and_says_so() -> None:
    found = extract_receipt_fields(RECEIPT, threshold=1.0)
    assert len(found) == 0
    missing = found.to_dict()["not_found"]
    assert [m["field"] for m in missing] == ["vendor", "vendor_address", "date", "total", "tax"]
    assert all(m["reason"] == "abstained" and 0 <= m["confidence"] < 1 for m in missing)
    assert found.unsure["total"].value == "9.00" and not found.unsure["total"].emitted
    assert "unsure" in found.to_dict(with_unsure=True)


def test_a_field_with_nothing_to_read_is_absent_not_abstained() -> None:
    no_tax = [line for line in RECEIPT if not line.text.startswith(("GST", "0.51"))]
    found = extract_receipt_fields(no_tax, threshold=0.0)
    assert [m.to_dict() for m in found.not_found] == [{"field": "tax", "reason": "absent"}]


def test_a_page_without_text_gives_no_fields() -> None:
    found = extract_receipt_fields([], threshold=0.0)
    assert len(found) == 0 and found.unsure == {}


def test_the_shipped_profile_holds_the_threshold_and_its_provenance() -> None:
    profile = load_profile("fields-receipts")
    assert profile.rungs == ["emit", "abstain"] and len(profile.thresholds) == 1
    assert profile.target is not None and profile.risk is not None
    assert profile.calibration["grid"] == list(THRESHOLD_GRID)
    assert "even positions" in profile.calibration["split"]
    assert receipt_threshold() == profile.thresholds[0]


def test_a_users_profile_wins_over_the_shipped_one(tmp_path: Path) -> None:
    shipped = load_profile("fields-receipts")
    mine = json.loads(json.dumps(shipped.to_dict()))
    mine["thresholds"] = [0.0]
    (tmp_path / "fields-receipts.json").write_text(json.dumps(mine))
    assert receipt_threshold(profile_dir=tmp_path) == 0.0
    assert extract_receipt_fields(RECEIPT, profile_dir=tmp_path).value("total") == "9.00"


def test_the_shipped_model_is_plain_coefficients_for_every_feature() -> None:
    path = ROOT / "src" / "frugalsense" / "data" / "fields" / "receipts-model.json"
    data = json.loads(path.read_text())
    assert set(data["fields"]) == {"vendor", "vendor_address", "date", "total"}
    for field, spec in data["fields"].items():
        assert spec["selector"]["features"] == list(FEATURES[field])
    assert data["trained_on"]["receipts"][:3] == ["000", "012", "024"]  # even positions only


@pytest.mark.parametrize(
    ("change", "message"),
    [({"fields": {"total": {"selector": {"features": ["bias"]}}}}, "malformed"), ({"fields": []}, "malformed")],
)
def test_a_broken_model_file_says_to_retrain(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(change))
    with pytest.raises(ConfigurationError, match=message):
        FieldScorer.load(path)


def test_a_model_with_other_features_is_refused(tmp_path: Path) -> None:
    data = FieldScorer.load().to_dict()
    data["fields"]["total"]["selector"]["features"][1] = "something-else"
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigurationError, match="differ"):
        extract_receipt_fields(RECEIPT, threshold=0.0, scorer=FieldScorer.load(path))


def _scored(right: int, wrong: int, confidence: float = 0.9) -> list[Scored]:
    return [Scored("r", "date", confidence, (), True, True, "", "")] * right + [
        Scored("r", "date", confidence, (), False, False, "", "")
    ] * wrong


def test_calibration_certifies_a_precise_scorer_and_refuses_a_sloppy_one() -> None:
    assert calibrate_threshold(_scored(300, 0), target=0.97, risk=0.1).threshold == THRESHOLD_GRID[0]
    sloppy = calibrate_threshold(_scored(270, 30), target=0.97, risk=0.1)
    assert sloppy.threshold is None
    profile = sloppy.to_profile({"data": "test"})
    assert profile.thresholds == [1.001] and profile.calibration["certified"] is False


def test_calibration_stops_below_the_confident_fields() -> None:
    scored = _scored(300, 0, confidence=0.96) + _scored(50, 50, confidence=0.4)
    assert calibrate_threshold(scored, target=0.95, risk=0.1).threshold == 0.45


def test_sroie_rule_ignores_case_and_spaces_but_not_characters() -> None:
    assert sroie_normalise("Tan Woon  Yann") == "TANWOONYANN"
    assert field_is_right("vendor", "", "MR.D.I.Y. (M) SDN BHD", "MR. D.I.Y. (M) SDN BHD")
    assert not field_is_right("vendor", "", "MR.D.I.Y. (M) SON BHD", "MR. D.I.Y. (M) SDN BHD")
    assert field_is_right("total", "9.00", "9.00", "RM 9.00", by_value=True)
    assert field_is_right("date", "2018-12-25", "25/12/18", "25/12/2018", by_value=True)


def test_the_runtime_path_imports_neither_training_nor_calibration_code() -> None:
    code = (
        "import sys, frugalsense.fields\n"
        "from frugalsense.fields.receipts import extract_receipt_fields\n"
        "extract_receipt_fields([], threshold=0)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'frugalsense.calibration'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(Settings())


@pytest.mark.parametrize(
    ("stem", "vendor", "day", "total"),
    [
        ("018", "LIGHTROOM GALLERY SDN BHD", "2017-12-20", "73.00"),
        ("210", "KAISON FURNISHING SDN BHD", "2018-01-29", "7838.80"),
    ],
)
def test_real_receipts_through_the_text_ladder(
    analyzer: Analyzer, eval_dir: Path, stem: str, vendor: str, day: str, total: str
) -> None:
    fields, analysis = read_receipt(eval_dir / "ocr-sroie" / "img" / f"{stem}.jpg", analyzer, threshold=0.0)
    assert sroie_normalise(fields.value("vendor") or "") == sroie_normalise(vendor)
    assert fields.value("date") == day
    assert fields.value("total") == total
    lines = analysis.pages[0].text or []
    got = fields.get("total")
    assert got is not None and all(lines[e.line].text.strip() == e.text for e in got.evidence)
    assert analysis.receipt.cpu_seconds > 0


# -- line items and the sum check ---------------------------------------------------------------------------


def _items_page(rows: list[tuple[str, ...]], total: str = "9.00") -> list[TextLine]:
    """A receipt whose item rows are `rows` (each a row's boxes, left to right), between a date and a total."""
    page = [_line("KEDAI MAJU SDN BHD", 0), _line("Date: 25/12/2018", 30), _line("ITEM QTY PRICE AMOUNT", 60)]
    y = 90
    for row in rows:
        for x, text in zip((40, 200, 300, 380), row, strict=False):
            page.append(_line(text, y, x=x))
        y += 25
    return [*page, _line("TOTAL", y), _line(total, y, 380)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("Kopi O", "2 x 1.50", "3.00")], [("Kopi O", "2", "1.50", "3.00")]),
        ([("Kopi O", "2pc@1.50", "3.00")], [("Kopi O", "2", "1.50", "3.00")]),
        ([("Kopi O", "1.50*2", "3.00")], [("Kopi O", "2", "1.50", "3.00")]),  # price first
        ([("Kopi O",), ("2 x RM1.50", "", "3.00")], [("Kopi O", "2", "1.50", "3.00")]),  # the name above
        ([("1072", "2", "1.50", "3.00"), ("KOPI O",)], [("KOPI O", "2", "1.50", "3.00")]),  # the name below
        ([("Kopi O", "1", "3.00", "3.00")], [("Kopi O", "1", "3.00", "3.00")]),  # columns: 1 x 3.00
        ([("Kopi O", "7", "1.50", "3.00")], [("Kopi O", None, None, "3.00")]),  # 7 x 1.50 is no 3.00: no guess
        ([("Kopi O", "3.00 SR")], [("Kopi O", None, None, "3.00")]),  # a tax mark after the amount
        ([("Kopi O", "3.00"), ("Member Discount", "-0.50")], [("Kopi O", None, None, "3.00"),
                                                              ("Member Discount", None, None, "-0.50")]),
        ([("Evian Water 6x1.25L",)], []),  # a size in a name is no price
    ],
)  # fmt: skip
def test_line_items_as_printed(rows: list[tuple[str, ...]], expected: list[tuple[object, ...]]) -> None:
    items = line_items(ReceiptLayout.from_lines(_items_page(rows)))
    got = [
        (i.description, None if i.quantity is None else str(i.quantity),
         None if i.unit_price is None else str(i.unit_price), str(i.amount))
        for i in items
    ]  # fmt: skip
    assert got == expected


def test_a_page_that_never_totals_or_starts_with_its_total_has_no_items() -> None:
    page = _items_page([("Kopi O", "3.00")])
    assert line_items(ReceiptLayout.from_lines(page[:-2])) == []  # no TOTAL row: no end to the list
    assert line_items(ReceiptLayout.from_lines(RECEIPT)) == []  # SUBTOTAL comes before any item


@pytest.mark.parametrize(
    ("amounts", "total", "tax", "matches", "tax_added"),
    [
        (["3.00", "6.00"], "9.00", None, True, None),
        (["3.00", "6.00"], "9.02", None, True, None),  # 5-sen rounding moves a total by 2 sen at most
        (["3.00", "6.00"], "9.03", None, False, None),
        (["24.00", "28.00"], "55.10", "3.12", True, "3.12"),  # prices before tax: 52.00 + 3.12, rounded
        (["24.00", "28.00"], "55.10", None, False, None),
        (["3.00", "-1.00"], "2.00", None, True, None),  # a discount line
    ],
)
def test_the_total_against_the_sum_of_the_lines(
    amounts: list[str], total: str, tax: str | None, matches: bool, tax_added: str | None
) -> None:
    items = [LineItem("x", Decimal(a), None, None, ()) for a in amounts]
    check = check_sum(items, Decimal(total), Decimal(tax) if tax else None)
    assert check.sum_matches is matches
    assert check.tax_added == (Decimal(tax_added) if tax_added else None)


def _total_confidence(page: list[TextLine]) -> tuple[float, float | None]:
    found = extract_receipt_fields(page, threshold=0.0)
    total = found.get("total")
    assert total is not None and found.checks is not None
    return total.confidence, found.checks.total_confidence_before


def test_lines_that_add_up_raise_the_totals_confidence_and_others_do_not() -> None:
    adds_up = _items_page([("Kopi O", "2 x 1.50", "3.00"), ("Roti bakar", "1", "6.00", "6.00")], total="9.00")
    raised, before = _total_confidence(adds_up)
    assert before is not None and raised == pytest.approx(before + (1 - before) / 2)
    off = _items_page([("Kopi O", "2 x 1.50", "3.00"), ("Roti bakar", "1", "5.00", "5.00")], total="9.00")
    _, before = _total_confidence(off)
    assert before is None and extract_receipt_fields(off, threshold=0.0).checks.sum_matches is False  # type: ignore[union-attr]
    one = _items_page([("Kopi O", "1", "9.00", "9.00")], total="9.00")  # one line equal to the total proves little
    assert _total_confidence(one)[1] is None


def test_a_users_trained_model_in_the_profile_folder_wins(tmp_path: Path) -> None:
    data = FieldScorer.load().to_dict()
    data["fields"]["total"]["selector"]["intercept"] -= 50.0  # a model that never believes a total
    (tmp_path / USER_MODEL_FILE).write_text(json.dumps(data))
    assert extract_receipt_fields(RECEIPT, threshold=0.0).get("total") is not None
    mine = extract_receipt_fields(RECEIPT, threshold=0.0, profile_dir=tmp_path)
    assert default_scorer(tmp_path).to_dict() == data and default_scorer(None).to_dict() != data
    assert mine.get("total") is not None and mine.get("total").confidence < 0.5  # type: ignore[union-attr]
