"""Receipt fields on the SROIE receipts the scorer never saw: per-field precision, recall and F1, cost per page.

    python bench/fields.py                                  # OCR cached in the data folder on the first run
    python bench/fields.py --ocr-cache /tmp/fields-ocr      # reuse a cache (AnalysisResult JSON per receipt)
    python bench/fields.py --thresholds 0.5 0.8 0.9         # more operating points

Receipts are sorted by file name; the odd positions (1, 3, 5, ...) are reported here, the even ones trained and
calibrated the shipped model and profile (frugalsense.calibration.fields_train). A field is right when its text
equals the key file's under SROIE task 3's normalisation (case and white space ignored:
`fields_train.sroie_normalise`); "by value" compares the ISO date and the amount instead (the keys sometimes
write "RM 9.00" for a printed "9.00"). Precision counts emitted fields, recall every key field of every receipt
(a field not emitted is a miss). CPU-seconds per page are the text ladder's OCR (measured when the cache was
written) plus the extraction (measured now); dollars at Settings.price_per_cpu_hour against Amazon Textract
AnalyzeExpense's list price of $10 per 1,000 pages (as quoted in issue 14). A last table bounds what this OCR
allows (`ocr_bound`): key fields whose text is in the OCR at all, and those one of our candidates has right.

    python bench/fields.py --forms --ocr-cache /tmp/fields-ocr-funsd   # FUNSD key-value pairs instead

With --forms: FUNSD forms sorted by file name, the odd positions reported (the even ones trained and calibrated
the shipped form model and profile, frugalsense.calibration.fields_forms_train). A pair is right when both its
question and its answer text equal an annotated pair's with case and white space ignored (exact), or are both at
least 0.8 similar (lenient, difflib's ratio). The same model also links the annotation's own words (no OCR
errors) and the annotation's own entities (linking alone): upper bounds that separate OCR from linking errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
from frugalsense.calibration.fields_forms_data import count_pairs, load_forms, prf
from frugalsense.calibration.fields_forms_data import split as split_forms
from frugalsense.calibration.fields_forms_train import prepare
from frugalsense.calibration.fields_train import (
    SROIE_KEYS,
    Receipt,
    field_is_right,
    load_receipts,
    split,
    sroie_normalise,
)
from frugalsense.calibration.report import usd_per_1000
from frugalsense.fields.candidates import candidates
from frugalsense.fields.forms import extract_form_fields, form_threshold, join_segments, link_pairs
from frugalsense.fields.forms_model import FormModel
from frugalsense.fields.receipts import SCORED_FIELDS, extract_receipt_fields, receipt_threshold
from frugalsense.fields.types import ReceiptFields
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings

TEXTRACT_EXPENSE_PER_1000 = 10.0


def table(
    results: Sequence[tuple[dict[str, str], ReceiptFields]], *, by_value: bool
) -> list[tuple[str, int, int, int, float, float, float]]:
    """Rows of (field, right, emitted, truths, precision, recall, F1), then the micro-averaged "all"."""
    rows = []
    totals = [0, 0, 0]
    for field in SCORED_FIELDS:
        right = emitted = 0
        for truth, found in results:
            got = found.get(field)
            if got is None:
                continue
            emitted += 1
            right += field_is_right(field, got.value, got.text, truth[SROIE_KEYS[field]], by_value=by_value)
        truths = sum(1 for truth, _ in results if truth[SROIE_KEYS[field]].strip())
        rows.append((field, right, emitted, truths, *prf(right, emitted, truths)))
        totals = [totals[0] + right, totals[1] + emitted, totals[2] + truths]
    rows.append(("all", totals[0], totals[1], totals[2], *prf(*totals)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ocr-cache", type=Path, default=None, help="cached OCR (default: the data folder)")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.75, 0.9], help="extra operating points")
    parser.add_argument("--forms", action="store_true", help="FUNSD key-value pairs instead of SROIE receipts")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.forms:
        return forms(args.ocr_cache or settings.data_dir / "bench" / "fields-ocr-funsd", settings)
    cache = args.ocr_cache or settings.data_dir / "bench" / "fields-ocr"
    receipts = load_receipts(_data.eval_dir() / "ocr-sroie", cache)
    _, report = split(receipts)
    shipped = receipt_threshold(load_profile("fields-receipts", settings.profile_dir))
    points = [("abstention off", 0.0), (f"shipped profile (>= {shipped:g})", shipped)]
    points += [(f"threshold {t:g}", t) for t in args.thresholds]

    extract_cpu = []
    runs: dict[str, list[tuple[dict[str, str], ReceiptFields]]] = {}
    for label, threshold in points:
        runs[label] = []
        for receipt in report:
            start = time.process_time()
            found = extract_receipt_fields(receipt.lines, threshold=threshold)
            extract_cpu.append(time.process_time() - start)
            runs[label].append((receipt.truth, found))

    print(f"SROIE receipts: {len(receipts)}; reported on the {len(report)} at odd positions (never trained on)\n")
    for label, results in runs.items():
        for by_value in (False, True):
            kind = "by value (ISO date, amount)" if by_value else "task-3 rule (text, case and spaces ignored)"
            print(f"{label}; {kind}")
            print("| field | right | emitted | truths | precision | recall | F1 |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for name, right, emitted, truths, p, r, f in table(results, by_value=by_value):
                print(f"| {name} | {right} | {emitted} | {truths} | {p:.3f} | {r:.3f} | {f:.3f} |")
            print()

    ocr_bound(report)
    ocr = sum(r.cpu_s for r in report) / len(report)
    extraction = sum(extract_cpu) / len(extract_cpu)
    per_page = ocr + extraction
    ours = usd_per_1000(per_page, settings.price_per_cpu_hour)
    print("| cost per receipt page | CPU-s | $ per 1,000 pages |\n|---|---:|---:|")
    print(f"| OCR (text ladder, when cached) | {ocr:.3f} | {usd_per_1000(ocr, settings.price_per_cpu_hour):.4f} |")
    print(f"| field extraction | {extraction:.4f} | {usd_per_1000(extraction, settings.price_per_cpu_hour):.5f} |")
    print(f"| total | {per_page:.3f} | {ours:.4f} |")
    print(f"| Amazon Textract AnalyzeExpense (list price) | - | {TEXTRACT_EXPENSE_PER_1000:.2f} |")
    print(f"\n${settings.price_per_cpu_hour}/CPU-hour: {TEXTRACT_EXPENSE_PER_1000 / ours:,.0f}x cheaper per page")
    return 0


def _joins(texts: Sequence[str], most: int = 8) -> set[str]:
    """Every run of up to `most` consecutive texts, joined, under SROIE's normalisation."""
    normal = [sroie_normalise(t) for t in texts]
    return {"".join(normal[i:j]) for i in range(len(normal)) for j in range(i + 1, min(len(normal), i + most) + 1)}


def ocr_bound(report: Sequence[Receipt]) -> None:
    """How many key fields our OCR could give at all (task-3 rule): the key's text inside a join of up to 8
    consecutive OCR lines (as the recogniser returned them, or row by row), and inside one of our candidates
    (after the clean-up of names and addresses): what no selector can beat."""
    print(
        "| field | key text in the OCR (lines or joins) | a candidate is right | chosen right (abstention off) |"
    )
    print("|---|---:|---:|---:|")
    for field in SCORED_FIELDS:
        in_ocr = in_candidates = chosen = 0
        for receipt in report:
            truth = receipt.truth[SROIE_KEYS[field]]
            layout = receipt.layout()
            joined = _joins([ln.text for ln in receipt.lines]) | _joins([row.text for row in layout.rows])
            in_ocr += any(sroie_normalise(truth) in j for j in joined)
            found = candidates(layout, field)
            in_candidates += any(field_is_right(field, c.value, c.text, truth) for c in found)
            got = extract_receipt_fields(receipt.lines, threshold=0.0).get(field)
            chosen += got is not None and field_is_right(field, got.value, got.text, truth)
        n = len(report)
        print(f"| {field} | {in_ocr}/{n} | {in_candidates}/{n} | {chosen}/{n} |")
    print()


def forms(cache: Path, settings: Settings) -> int:
    """Pair precision, recall and F1 on the FUNSD forms at odd positions: from our OCR at the shipped threshold and
    with abstention off, and the upper bounds from the annotation's words and entities; CPU-seconds per page."""
    report = split_forms(load_forms(_data.eval_dir() / "ocr-funsd" / "training_data", cache))[1]
    model = FormModel.load()
    shipped = form_threshold(load_profile("fields-forms", settings.profile_dir))
    print(
        f"FUNSD forms: reported on the {len(report)} at odd positions (never trained on); decision "
        f"{model.decision:g}, shipped threshold {shipped:g}\n"
    )
    print("| input | operating point | rule | right | emitted | annotated | precision | recall | F1 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    pages = {
        "our OCR": [join_segments(p.page, model.join) for p in prepare(report, "ocr")],
        "annotation words": [join_segments(p.page, model.join) for p in prepare(report, "words")],
        "annotation entities (linking only)": [form.entity_page() for form in report],
    }
    for label, joined in pages.items():
        found = [(form, link_pairs(page, model, 0.0)) for form, page in zip(report, joined, strict=True)]
        for point, cut in (("abstention off", 0.0), (f"shipped (>= {shipped:g})", shipped)):
            for rule in ("exact", "lenient"):
                right, emitted, truths = count_pairs(found, cut=cut, lenient=rule == "lenient")
                p, r, f = prf(right, emitted, truths)
                counts = f"{right} | {emitted} | {truths}"
                print(f"| {label} | {point} | {rule} | {counts} | {p:.3f} | {r:.3f} | {f:.3f} |")

    extract_cpu = []
    for form in report:
        start = time.process_time()
        extract_form_fields(form.lines, model=model)
        extract_cpu.append(time.process_time() - start)
    ocr = sum(f.cpu_s for f in report) / len(report)
    extraction = sum(extract_cpu) / len(extract_cpu)
    print("\n| cost per form page | CPU-s | $ per 1,000 pages |\n|---|---:|---:|")
    print(f"| OCR (text ladder, when cached) | {ocr:.3f} | {usd_per_1000(ocr, settings.price_per_cpu_hour):.4f} |")
    print(f"| pair extraction | {extraction:.4f} | {usd_per_1000(extraction, settings.price_per_cpu_hour):.5f} |")
    total = ocr + extraction
    print(f"| total | {total:.3f} | {usd_per_1000(total, settings.price_per_cpu_hour):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
