"""Headless Chromium from Debian, driven by Playwright for Python (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("PORTAL_REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium is required (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors:
    """Console errors and failed page scripts (a CSP violation shows up here)."""

    def __init__(self, page):
        self.messages: list[str] = []
        # "Failed to load resource" is Chromium reporting a 4xx answer (a 422 form, say): expected.
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and self.messages.append(m.text)
            ),
        )
        page.on("pageerror", lambda e: self.messages.append(str(e)))


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_timeout(300)  # let htmx settle and Bootstrap's transitions finish
    page.screenshot(path=str(path), full_page=True)
    return path


def first_page_png(pdf: Path, name: str) -> None:
    """The first page of a printed PDF as tests/screenshots/<name>-1.png, to look at."""
    import subprocess

    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(SCREENSHOTS / name)], check=True
    )


def sign_in(page, base: str, username: str, password: str = "correct horse battery staple") -> None:
    """Sign in through the form, as a person would, and wait for the dashboard."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
