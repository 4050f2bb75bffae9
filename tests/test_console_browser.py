"""The web console as a person clicks it, in a real headless Chromium against a real `frugalsense serve`.

One server for the module; each person at the console has a browser context of their own. Screenshots of each
screen land in the module's temporary folder (docs/console/*.png are copies of the key ones).
"""

from __future__ import annotations

import io
import json
import re
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Locator

from _browser import Console, chromium, expect
from _server import Server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("console"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def shop(server: Server) -> str:
    """An admin key of a tenant used only through the browser, so its usage is exactly what the page did."""
    return server.tenant_key("corner-shop")


@pytest.fixture(scope="module")
def photos(eval_dir: Path) -> dict[str, Path]:
    g = eval_dir / "faces-gallery" / "examples"
    return {
        "obama": g / "knn_examples/train/obama/obama.jpg",
        "obama2": g / "knn_examples/train/obama/obama2.jpg",
        "obama_probe": g / "knn_examples/test/obama1.jpg",
        "biden": g / "knn_examples/train/biden/biden.jpg",
        "stranger": g / "lin-manuel-miranda.png",
        "alex_a": g / "knn_examples/test/alex_lacamoire1.jpg",
        "alex_b": g / "alex-lacamoire.png",
        "receipt": eval_dir / "ocr-sroie" / "img" / "006.jpg",
        "hen": eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG",
    }


def _cards(console: Console, selector: str) -> list[str]:
    return [t.strip() for t in console.page.locator(f"{selector} li.card .name").all_inner_texts()]


def _identify(console: Console, photo: Path) -> list[str]:
    """Identify a photo on the People screen; the names (or "unknown") shown on its face cards."""
    page = console.page
    page.locator("#identify-result").evaluate("node => node.replaceChildren()")
    page.set_input_files("#identify-file", str(photo))
    page.click("#identify-form button")
    expect(page.locator("#identify-result li.card").first).to_be_visible()
    return _cards(console, "#identify-result")


def _picture_size(img: Locator) -> list[int]:
    """The natural size of an <img> once it has loaded (fails if it cannot)."""
    return list(img.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"))


def test_the_whole_story(
    server: Server, browser: object, shots: Path, shop: str, photos: dict[str, Path], eval_dir: Path
) -> None:
    console = Console(browser, server.url, shots)  # type: ignore[arg-type]
    page = console.page
    expect(page.locator("#screen-signin")).to_be_visible()
    console.shot("signin")
    console.sign_in(shop)

    # Analyze: the picture with its face box drawn, labels, and the receipt as a table.
    page.set_input_files("#analyze-file", str(photos["obama"]))
    page.click("#analyze-form button[type=submit]")
    expect(page.locator("#analyze-result table.receipt")).to_be_visible()
    expect(page.locator("#analyze-result svg rect.facebox")).to_have_count(1)
    expect(page.locator("#analyze-result .facts")).to_contain_text("Labels:")
    console.shot("analyze")

    # People: a collection, two persons enrolled from photos, a second photo for one of them.
    console.go("people")
    page.fill("#collection-name", "staff")
    page.click("#collection-form button")
    expect(page.locator("#people-collection option")).to_have_text("staff")
    for name, photo in (("Barack", photos["obama"]), ("Joe", photos["biden"])):
        page.fill("#person-name", name)
        page.set_input_files("#person-photo", str(photo))
        page.click("#person-form button")
        console.status(f"Added {name}.")
    expect(page.locator("#persons li.card")).to_have_count(2)
    assert _cards(console, "#persons") == ["Barack", "Joe"]
    barack = page.locator("#persons li.card").first.get_attribute("data-person")
    page.set_input_files(f"#enrol-{barack}", str(photos["obama2"]))
    console.status("Added a photo of Barack.")
    expect(page.locator("#persons li.card").first).to_contain_text("2 faces")
    thumb = page.locator("#persons li.card img").first
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0  # the crop, served to its tenant

    # Identify: a new photo of Barack is Barack; a stranger is unknown.
    assert _identify(console, photos["obama_probe"]) == ["Barack"]
    assert _identify(console, photos["stranger"]) == ["unknown"]
    console.shot("identify")

    # A recurring unknown face (Alex, twice) shows as a cluster; naming it makes a person with both faces.
    assert _identify(console, photos["alex_a"]) == ["unknown"]
    assert _identify(console, photos["alex_b"]) == ["unknown"]
    cluster = page.locator("#clusters li.card").filter(has_text="seen 2 times")
    expect(cluster).to_have_count(1)
    console.shot("clusters")
    cluster.locator("input").fill("Alex")
    cluster.locator("button").click()
    console.status("Alex now has 2 faces.")
    expect(page.locator("#persons li.card .name")).to_have_text(["Barack", "Joe", "Alex"])

    # Correcting a mistake: the stranger is named Lin, then recognised; "not Lin" takes it back.
    _identify(console, photos["stranger"])
    card = page.locator("#identify-result li.card").first
    card.locator("input").fill("Lin")
    card.get_by_role("button", name="Save name").click()
    console.status("Noted: that face is Lin.")
    assert _identify(console, photos["stranger"]) == ["Lin"]
    page.locator("#identify-result li.card").first.get_by_role("button", name="Not Lin").click()
    console.status("Noted: that face is not Lin.")
    assert _identify(console, photos["stranger"]) != ["Lin"]

    # Search: index a receipt and a photo, find the receipt by its words and the photo by an example picture.
    console.go("search")
    page.set_input_files("#index-more", [str(photos["receipt"]), str(photos["hen"])])
    page.click("#index-form button")
    console.status("Indexed 2 of 2 files.")
    expect(page.locator("#index-progress")).to_have_js_property("value", 2)
    company = json.loads((eval_dir / "ocr-sroie" / "key" / "006.json").read_text())["company"]
    page.fill("#search-q", company)
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-result li.hit").first).to_contain_text("006.jpg")
    expect(page.locator("#search-result li.hit").first.locator(".why")).to_contain_text("words")
    receipt_thumbnail = page.locator("#search-result li.hit").first.locator("img.thumb")
    assert _picture_size(receipt_thumbnail)[1] == 240  # the receipt is taller than wide
    console.shot("search")
    page.set_input_files("#searchimage-file", str(photos["hen"]))
    page.click("#searchimage-form button")
    expect(page.locator("#search-result li.hit").first).to_contain_text("n01514859_hen.JPEG")

    # Delete Joe: the confirmation says what goes, and then he is gone.
    console.go("people")
    joe = page.locator("#persons li.card").filter(has_text="Joe")
    joe_id = joe.get_attribute("data-person")
    joe.get_by_role("button", name="Delete Joe").click()
    expect(page.locator("#confirm-text")).to_contain_text("1 face (1 enrolled)")
    console.shot("delete-person")
    page.click("#confirm-yes")
    console.status("Joe was deleted.")
    assert "Joe" not in _cards(console, "#persons")
    assert console.fetch("GET", f"/v1/persons/{joe_id}")[0] == 404

    # Costs: today's numbers are the sum of every receipt the page received.
    console.go("costs")
    total = page.locator("[data-total-cpu]")
    expect(total).to_be_visible()
    shown = float(total.get_attribute("data-total-cpu") or "nan")
    assert shown == pytest.approx(console.receipts_cpu(), abs=1e-4)
    assert shown > 0
    expect(page.locator("#costs-table")).to_contain_text("faces")
    console.shot("costs")

    # Keys (admin): create one, its secret shown once, then revoke it.
    console.go("keys")
    page.fill("#key-name", "front desk")
    page.click("#key-form button")
    expect(page.locator("#key-secret code")).to_have_text(re.compile(r"^fs_"))
    console.shot("keys")
    page.get_by_role("button", name="Revoke front desk").click()
    expect(page.locator("#keys-table")).to_contain_text("revoked")

    # Every request the page made went to this server.
    origin = server.url
    strays = [u for u in console.requests if not (u.startswith(origin + "/") or u.startswith(f"blob:{origin}/"))]
    assert strays == []
    assert any("/v1/analyze" in u for u in console.requests)

    page.click("#sign-out")
    expect(page.locator("#screen-signin")).to_be_visible()
    assert console.fetch("GET", "/v1/collections", csrf=False)[0] == 401
    console.close()


def test_session_cookie_flags_and_csrf(server: Server, browser: object, shots: Path) -> None:
    console = Console(browser, server.url, shots)  # type: ignore[arg-type]
    console.sign_in(server.admin_key)
    (cookie,) = [c for c in console.context.cookies() if c["name"] == "fs_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["secure"] is False
    assert "fs_session" not in console.page.evaluate("document.cookie")
    # Without the CSRF token a change is refused; with it, it goes through; reads need none.
    assert console.fetch("POST", "/v1/collections", {"name": "no-token"}, csrf=False)[0] == 403
    assert console.fetch("POST", "/v1/collections", {"name": "with-token"})[0] == 201
    status, listed = console.fetch("GET", "/v1/collections", csrf=False)
    assert status == 200 and [c["name"] for c in listed["collections"]] == ["with-token"]
    # The cookie alone, from anywhere else, changes nothing: another origin is refused even with the token.
    session = {"fs_session": cookie["value"]}
    csrf = console.fetch("GET", "/console/session", csrf=False)[1]["csrf"]
    forged = httpx.post(
        f"{server.url}/v1/collections",
        json={"name": "forged"},
        cookies=session,
        headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
    )
    assert forged.status_code == 403
    console.page.click("#sign-out")
    expect(console.page.locator("#screen-signin")).to_be_visible()
    assert httpx.get(f"{server.url}/v1/collections", cookies=session).status_code == 401
    console.close()


def test_a_user_key_cannot_reach_admin_pages(server: Server, browser: object, shots: Path) -> None:
    made = httpx.post(
        f"{server.url}/v1/keys",
        json={"name": "cashier", "role": "user"},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    console = Console(browser, server.url, shots)  # type: ignore[arg-type]
    console.sign_in(made.json()["key"])
    expect(console.page.locator("#nav a[href='#keys']")).to_be_hidden()
    console.page.evaluate("location.hash = '#keys'")
    console.status("Keys are managed by admins")
    expect(console.page.locator("#screen-keys")).to_be_hidden()
    assert console.fetch("GET", "/v1/keys", csrf=False)[0] == 403
    assert console.fetch("POST", "/v1/keys", {"name": "sneaky"})[0] == 403
    console.shot("user-key")
    console.close()


def test_a_tenant_never_sees_another_tenants_thumbnails(
    server: Server, browser: object, shots: Path, photos: dict[str, Path]
) -> None:
    owner = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=120)
    staff = owner.post("/v1/collections", json={"name": "private"}).json()
    person = owner.post(f"/v1/collections/{staff['id']}/persons", json={"name": "Barack"}).json()
    enrolled = owner.post(f"/v1/persons/{person['id']}/faces", files={"file": photos["obama"].read_bytes()})
    face_id = enrolled.json()["face"]["id"]
    indexed = owner.post("/v1/index", files={"file": photos["hen"].read_bytes()}, data={"source": "private/hen"})
    thumbnail = f"{server.url}/console/api/items/{indexed.json()['item_id']}/thumbnail"
    mine = Console(browser, server.url, shots)  # type: ignore[arg-type]
    mine.sign_in(server.admin_key)
    assert (
        mine.page.request.get(f"{server.url}/console/api/crops/{face_id}").headers["content-type"] == "image/jpeg"
    )
    assert mine.page.request.get(thumbnail).headers["content-type"] == "image/jpeg"
    other = Console(browser, server.url, shots)  # type: ignore[arg-type]
    other.sign_in(server.tenant_key("rival"))
    assert other.page.request.get(f"{server.url}/console/api/crops/{face_id}").status == 404
    assert other.page.request.get(thumbnail).status == 404
    assert httpx.get(thumbnail).status_code == 401
    assert other.fetch("GET", f"/console/api/persons?collection_id={staff['id']}", csrf=False)[0] == 404
    assert other.fetch("GET", f"/console/api/persons/{person['id']}/erasure", csrf=False)[0] == 404
    signed_out = httpx.get(f"{server.url}/console/api/crops/{face_id}")
    assert signed_out.status_code == 401
    mine.close()
    other.close()
    owner.close()


def test_pdf_pages_are_drawn_one_by_one_and_search_shows_thumbnails(
    server: Server, browser: object, shots: Path, eval_dir: Path, tmp_path: Path
) -> None:
    receipts = eval_dir / "ocr-sroie" / "img"
    pages = [Image.open(receipts / name).convert("RGB") for name in ("000.jpg", "012.jpg")]
    scan = tmp_path / "receipts.pdf"
    pages[0].save(scan, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    quiet = tmp_path / "quiet.wav"
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\0\0" * 16_000)
    quiet.write_bytes(buf.getvalue())
    console = Console(browser, server.url, shots)  # type: ignore[arg-type]
    page = console.page
    console.sign_in(server.tenant_key("print-shop"))

    # Analyze a two-page PDF: each page comes back as a picture with its text lines outlined, one at a time.
    page.set_input_files("#analyze-file", str(scan))
    page.check("#analyze-form input[value=text]")
    page.click("#analyze-form button[type=submit]")
    expect(page.locator("#analyze-result table.receipt")).to_be_visible()
    figures = page.locator("#analyze-result figure.page")
    expect(figures).to_have_count(2)
    turner = page.locator("#analyze-result .turner")
    for number in (1, 2):
        shown, hidden = figures.nth(number - 1), figures.nth(2 - number)
        expect(shown).to_be_visible()
        expect(hidden).to_be_hidden()
        expect(turner).to_contain_text(f"Page {number} ({number} of 2)")
        picture = shown.locator(".stage img")
        # The page as rendered at 150 dpi (its scan's own size), shrunk to at most 1280 px a side.
        assert _picture_size(picture)[1] == pytest.approx(min(1280, pages[number - 1].height), abs=1)
        lines = shown.locator("svg polygon.textline")
        assert lines.count() >= 5
        # The outlines lie on the picture: inside its box on the screen.
        img, line = picture.bounding_box(), lines.first.bounding_box()
        assert img is not None and line is not None
        assert img["x"] <= line["x"] and line["x"] + line["width"] <= img["x"] + img["width"] + 1
        assert img["y"] <= line["y"] and line["y"] + line["height"] <= img["y"] + img["height"] + 1
        if number == 1:
            console.shot("analyze-pdf")
            page.click("#analyze-result .turn-next")
    expect(page.locator("#analyze-result .turn-next")).to_be_disabled()

    # Search: the indexed PDF shows its first page as a thumbnail, a recording a placeholder.
    console.go("search")
    page.set_input_files("#index-more", [str(scan), str(quiet)])
    page.click("#index-form button")
    console.status("Indexed 2 of 2 files.")
    company = json.loads((eval_dir / "ocr-sroie" / "key" / "000.json").read_text())["company"]
    page.fill("#search-q", company)
    page.click("#search-form button[type=submit]")
    hit = page.locator("#search-result li.hit").first
    expect(hit).to_contain_text("receipts.pdf")
    width, height = _picture_size(hit.locator("img.thumb"))
    assert height == 240 and width == round(240 * pages[0].width / pages[0].height)
    page.fill("#search-q", "")
    page.click("#search-form summary")
    page.select_option("#search-kind", "audio")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-result li.hit")).to_have_count(1)
    expect(page.locator("#search-result li.hit .thumb.placeholder")).to_contain_text("audio")
    console.shot("search-thumbnails")
    strays = [u for u in console.requests if not u.startswith((server.url + "/", f"blob:{server.url}/"))]
    assert strays == []
    console.close()
