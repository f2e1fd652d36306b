"""Headless Chromium from Debian, driven by Playwright for Python (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).parent / "screenshots"  # with PORTAL_SCREENSHOTS=1 (see screenshots_folder)
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


def screenshots_folder() -> Path | None:
    """Where pictures of pages go, only when asked for: PORTAL_SCREENSHOTS=1 puts them in
    tests/screenshots, PORTAL_SCREENSHOTS=FOLDER in that folder; unset, empty or 0, none are taken."""
    asked = os.environ.get("PORTAL_SCREENSHOTS", "").strip()
    if asked.lower() in ("", "0", "false", "no"):
        return None
    folder = SCREENSHOTS if asked.lower() in ("1", "true", "yes") else Path(asked)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(target, name: str, **options) -> Path | None:
    """`target` (a page or a locator) as <folder>/<name>.png, when screenshots are asked for: every
    screenshot of the tests is taken here. `options` go to Playwright's screenshot()."""
    folder = screenshots_folder()
    if folder is None:
        return None
    path = folder / f"{name}.png"
    target.screenshot(path=str(path), **options)
    return path


def shot(page, name: str) -> Path | None:
    """The whole page, once htmx has settled and Bootstrap's transitions have finished."""
    # The pause stays when no picture is taken: the steps after a shot were written with it.
    page.wait_for_timeout(300)
    return screenshot(page, name, full_page=True)


def pdf_pictures(pdf: Path, name: str, *, first_page_only: bool = False, dpi: int = 50) -> None:
    """A printed PDF's pages as <folder>/<name>-N.png (poppler's pdftoppm), when screenshots are
    asked for."""
    import subprocess

    folder = screenshots_folder()
    if folder is None:
        return
    pages = ["-f", "1", "-l", "1"] if first_page_only else []
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), *pages, str(pdf), str(folder / name)], check=True)


def first_page_png(pdf: Path, name: str) -> None:
    """The first page of a printed PDF as <name>-1.png, to look at (when screenshots are asked for)."""
    pdf_pictures(pdf, name, first_page_only=True, dpi=60)


def pdf_folder(tmp_path: Path) -> Path:
    """Where a test prints its PDFs: beside the screenshots when they are asked for (to look at),
    else the test's own temporary folder."""
    return screenshots_folder() or tmp_path


def sign_in(page, base: str, username: str, password: str = "correct horse battery staple") -> None:
    """Sign in through the form, as a person would, and wait for the dashboard."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
