"""A real headless Chromium for the console tests: Debian's chromium-headless-shell driven by playwright.

Playwright's own browser download does not work offline, so the browser is the system one, found on PATH.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Response, expect, sync_playwright

__all__ = ["Console", "chromium", "chromium_path", "expect"]

#: model work in the page (first loads included) may take this long, in ms
SLOW_MS = 120_000
expect.set_options(timeout=SLOW_MS)


def chromium_path() -> str:
    for name in ("chromium-headless-shell", "chromium"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium found: apt-get install chromium-headless-shell (scripts/setup.sh --test does)")


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """One person at the console: a browser context of their own (cookies), its page, what it asked for."""

    browser: Browser
    url: str
    shots: Path
    context: BrowserContext = field(init=False)
    page: Page = field(init=False)
    requests: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(SLOW_MS)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("response", lambda response: self.responses.append(response))
        self.page.goto(self.url + "/")

    def sign_in(self, key: str) -> None:
        self.page.fill("#signin-key", key)
        self.page.click("#signin-form button")
        expect(self.page.locator("#nav")).to_be_visible()

    def go(self, screen: str) -> None:
        self.page.click(f"#nav a[href='#{screen}']")
        expect(self.page.locator(f"#screen-{screen}")).to_be_visible()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def status(self, text: str) -> None:
        expect(self.page.locator("#status")).to_contain_text(text)

    def fetch(self, method: str, path: str, body: Any = None, csrf: bool = True) -> tuple[int, Any]:
        """A request from the page's own script (its cookie, optionally its CSRF token): (status, JSON or None)."""
        return tuple(  # type: ignore[return-value]
            self.page.evaluate(
                """async ([method, path, body, csrf]) => {
                    const headers = {};
                    if (csrf) {
                        const who = await (await fetch('/console/session')).json();
                        headers['X-CSRF-Token'] = who.csrf;
                    }
                    if (body !== null) headers['Content-Type'] = 'application/json';
                    const payload = body === null ? undefined : JSON.stringify(body);
                    const r = await fetch(path, {method, headers, body: payload});
                    const type = r.headers.get('content-type') || '';
                    return [r.status, type.includes('json') ? await r.json() : null];
                }""",
                [method, path, body, csrf],
            )
        )

    def receipts_cpu(self) -> float:
        """CPU-seconds on every receipt the page received."""
        total = 0.0
        for response in self.responses:
            if "/v1/" in response.url and response.headers.get("x-cost-receipt"):
                total += float(response.json()["receipt"]["cpu_seconds"])
        return total

    def close(self) -> None:
        self.context.close()
