"""The console's Documents screen as a shop owner uses it, in a real headless Chromium against a real
`frugalsense serve`: a SROIE receipt (as a two-page PDF whose second page is blank) and a FUNSD form uploaded
through the page, what it shows checked against what ``POST /v1/documents/fields`` answers for the same file.

Nothing here depends on what the models read (another model may read other values): only on the page agreeing
with the API. OCR runs for real, about 2 CPU-s a page; the API's own calls come from the tenant's result cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator

from _browser import Console, chromium, expect
from _server import Server
from frugalsense.api.schemas import DocumentFields
from frugalsense.api.schemas.fields import DocumentForms

pytestmark = pytest.mark.browser

RECEIPT = "018"  # any SROIE receipt would do
FORM = "0000971160"  # any FUNSD form would do


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("documents"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _read(server: Server, key: str, path: Path, kind: str) -> dict[str, Any]:
    """What the API answers for the file, with the pictures the page asks for when the browser cannot show it."""
    data = {"kind": kind} if path.suffix != ".pdf" else {"kind": kind, "previews": "true"}
    response = httpx.post(
        f"{server.url}/v1/documents/fields",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": (path.name, path.read_bytes())},
        data=data,
        timeout=300,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    (DocumentForms if kind == "form" else DocumentFields).model_validate(body)  # previews and all
    return body


def _upload(console: Console, path: Path, kind: str) -> Locator:
    page = console.page
    console.go("documents")
    page.set_input_files("#documents-file", str(path))
    page.check(f"#documents-form input[name=kind][value={kind}]")
    page.click("#documents-form button[type=submit]")
    console.status(f"Read {path.name}.")
    return page.locator("#documents-result figure.document")


def _boxes_on_picture(figure: Locator, selector: str, expected: int) -> None:
    """`expected` boxes drawn, each inside the page's picture on the screen, the picture loaded."""
    boxes = figure.locator(f"svg {selector}")
    expect(boxes).to_have_count(expected)
    img = figure.locator(".stage img")
    assert img.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    shown = img.bounding_box()
    assert shown is not None
    for i in range(expected):
        box = boxes.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
        assert shown["x"] - 1 <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"] + 1
        assert shown["y"] - 1 <= box["y"] and box["y"] + box["height"] <= shown["y"] + shown["height"] + 1


def _lit(figure: Locator) -> set[str]:
    """The keys of the boxes lit on the page's picture."""
    return set(figure.locator("svg rect.on").evaluate_all("nodes => nodes.map((n) => n.dataset.key)"))


def _left_out(figure: Locator) -> list[tuple[str, str, str]]:
    items = figure.locator("ul.left-out li")
    return [
        (items.nth(i).get_attribute("data-field") or "", items.nth(i).get_attribute("data-reason") or "", text)
        for i, text in enumerate(items.all_inner_texts())
    ]


def test_a_receipt_shows_its_fields_left_out_fields_lines_boxes_and_cost(
    server: Server, browser: Browser, shots: Path, eval_dir: Path, tmp_path: Path
) -> None:
    receipt = Image.open(eval_dir / "ocr-sroie" / "img" / f"{RECEIPT}.jpg").convert("RGB")
    scan = tmp_path / "receipt.pdf"  # a PDF: the browser cannot show it, so the page asks for the pages' pictures
    receipt.save(scan, format="PDF", save_all=True, append_images=[Image.new("RGB", receipt.size, "white")])
    key = server.tenant_key("corner-shop")
    console = Console(browser, server.url, shots)
    console.sign_in(key)
    figures = _upload(console, scan, "receipt")
    body = _read(server, key, scan, "receipt")
    assert [p["page"] for p in body["pages"]] == [1, 2] and body["previews_omitted"] == 0
    pictures = [s for s in body["receipt"]["stages"] if s["stage"] == "decode" and s["note"] == "preview"]
    # One picture per page, made while the page is decoded for reading (the file is not opened again); billed on
    # the call's receipt, and each page decoded once.
    assert len(pictures) == 2
    decoded = [s for s in body["receipt"]["stages"] if s["stage"] == "decode" and not s["note"]]
    assert len(decoded) == 3  # the file opened, then its two pages
    expect(figures).to_have_count(2)

    first, api = figures.nth(0), body["pages"][0]
    expect(first).to_be_visible()
    # Every field read, as the API says it: value (with its currency), confidence.
    rows = first.locator("table.fields tbody tr")
    shown = [
        (
            row.get_attribute("data-key"),
            row.locator("td").first.inner_text(),
            row.get_attribute("data-confidence"),
        )
        for row in rows.all()
    ]
    expected = [
        (name, f"{f['value']} {f['currency']}" if f.get("currency") else f["value"], f["confidence"])
        for name, f in api["fields"].items()
    ]
    assert [(n, v, float(c or "nan")) for n, v, c in shown] == expected
    # Every field left out, with its reason in words.
    left = _left_out(first)
    assert [(f, r) for f, r, _ in left] == [(m["field"], m["reason"]) for m in api["not_found"]]
    for _, reason, text in left:
        assert ("not sure" in text) if reason == "abstained" else ("not found" in text)
    # The line items and whether they add up.
    items = first.locator("table.items tbody tr")
    expect(items).to_have_count(len(api["line_items"]))
    assert [r.locator("td").last.inner_text() for r in items.all()] == [i["amount"] for i in api["line_items"]]
    sum_line = first.locator("p.sum")
    matches = api["checks"].get("sum_matches")
    if matches is None:
        expect(sum_line).not_to_have_attribute("data-sum-matches", re.compile(".*"))
    else:
        expect(sum_line).to_have_attribute("data-sum-matches", str(matches).lower())
        expect(sum_line).to_contain_text("The lines add up" if matches else "do not add up")

    # The evidence boxes on the page's picture (the server's preview of the PDF page).
    preview = api["preview"]
    img = first.locator(".stage img")
    assert img.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])") == [
        preview["width"],
        preview["height"],
    ]
    evidence = sum(len(f["evidence"]) for f in api["fields"].values())
    _boxes_on_picture(first, "rect.evidence.field", evidence)
    _boxes_on_picture(first, "rect.evidence.item", sum(len(i["evidence"]) for i in api["line_items"]))
    # Hovering a field lights its boxes only; a click keeps them lit once the pointer leaves.
    if api["fields"]:
        name = next(iter(api["fields"]))
        row = first.locator(f"tr[data-key={name}]")
        row.hover()
        assert _lit(first) == {name}
        expect(row).to_have_class(re.compile(r"\bon\b"))
        row.locator("button.key").click()
        expect(row.locator("button.key")).to_have_attribute("aria-pressed", "true")
        first.locator("figcaption").hover()
        assert _lit(first) == {name}
    console.shot("documents-receipt")

    # The blank second page: every field left out as not found, no box drawn.
    console.page.click("#documents-result .turn-next")
    second = figures.nth(1)
    expect(second).to_be_visible()
    expect(first).to_be_hidden()
    assert [(f, r) for f, r, _ in _left_out(second)] == [
        (m["field"], "absent") for m in body["pages"][1]["not_found"]
    ]
    assert {f for f, _, _ in _left_out(second)} == {"vendor", "vendor_address", "date", "total", "tax"}
    expect(second.locator("table.fields tbody tr")).to_have_count(0)
    expect(second.locator("svg rect")).to_have_count(0)

    # What the call cost, and the same two pages at Amazon Textract AnalyzeExpense's list price.
    cost = console.page.locator("#documents-result p.compare")
    expect(cost).to_contain_text("AnalyzeExpense")
    assert float(cost.get_attribute("data-cloud-usd") or "nan") == pytest.approx(0.02)
    expect(console.page.locator("#documents-result table.receipt")).to_be_visible()
    strays = [u for u in console.requests if not u.startswith((server.url + "/", f"blob:{server.url}/"))]
    assert strays == []
    console.close()


def test_a_form_shows_its_questions_and_answers_on_the_picture(
    server: Server, browser: Browser, shots: Path, eval_dir: Path
) -> None:
    form = eval_dir / "ocr-funsd" / "training_data" / "images" / f"{FORM}.png"
    key = server.tenant_key("print-shop")
    console = Console(browser, server.url, shots)
    console.sign_in(key)
    figures = _upload(console, form, "form")
    (api,) = _read(server, key, form, "form")["pages"]
    figure = figures.first
    expect(figure).to_be_visible()
    rows = figure.locator("table.pairs tbody tr")
    expect(rows).to_have_count(len(api["pairs"]))
    shown = [
        (
            r.locator("th").inner_text(),
            r.locator("td").first.inner_text(),
            float(r.get_attribute("data-confidence") or 0),
        )
        for r in rows.all()
    ]
    assert shown == [(p["question"], " · ".join(p["answers"]), p["confidence"]) for p in api["pairs"]]
    expect(figure.locator("p.left-out")).to_have_attribute("data-abstained", str(api["abstained"]))
    # A PNG is drawn on as picked: the page asked for no pictures, and the boxes lie on the file.
    assert (figure.locator(".stage img").get_attribute("src") or "").startswith("blob:")
    _boxes_on_picture(figure, "rect.evidence.question", sum(len(p["question_evidence"]) for p in api["pairs"]))
    _boxes_on_picture(figure, "rect.evidence.answer", sum(len(p["answer_evidence"]) for p in api["pairs"]))
    if api["pairs"]:
        rows.first.hover()
        assert _lit(figure) == {"pair-0"}
    cost = console.page.locator("#documents-result p.compare")
    expect(cost).to_contain_text("AnalyzeDocument (forms)")
    assert float(cost.get_attribute("data-cloud-usd") or "nan") == pytest.approx(0.05)
    console.shot("documents-form")
    console.close()
