"""Fixtures for the dashboard's browser tests: a real headless Chromium driven by Playwright, one gateway.

The browser is the system's Chromium (Debian's ``chromium`` package; ``SPOON_LLM_CHROMIUM`` names another
binary), never one Playwright downloads. Without it the browser tests are skipped with the reason. Every page
collects console errors and uncaught exceptions; a test fails if any was logged that it did not expect.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, expect, sync_playwright

from spoon_llm.testing import ProviderSimulator

from ..conftest import MASTER_KEY, Gateway, gateway_of_its_own

#: Where screenshots go (ignored by git); printed by the tests that write them.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"

# Generous: the machine is shared and busy; these waits end as soon as the condition holds.
expect.set_options(timeout=30_000)


def chromium_path() -> str | None:
    """The Chromium binary to drive, or ``None`` when none is installed."""
    configured = os.environ.get("SPOON_LLM_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Console:
    """Console errors and uncaught exceptions of one page; ``allow`` takes the ones a test expects."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        # The browser's own /favicon.ico probe (pages that are not the dashboard, such as a JSON 404) is not the
        # page's error, and it may land after the test's checks; the dashboard's icon has another URL.
        if message.type == "error" and not url.endswith("/favicon.ico"):
            self.errors.append(f"console error: {message.text} ({url})")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error}")

    def allow(self, pattern: str) -> list[str]:
        """Remove (and return) the errors matching ``pattern``."""
        taken = [e for e in self.errors if re.search(pattern, e)]
        self.errors = [e for e in self.errors if e not in taken]
        return taken


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("the dashboard's browser tests need Chromium, which is not installed here (Debian: "
                    "apt-get install -y chromium; or set SPOON_LLM_CHROMIUM to a Chromium binary)")
    return path


# Module scope: the sync API keeps an event loop running in this thread while it is open, which async tests
# elsewhere in the session must not meet.
@pytest.fixture(scope="module")
def playwright_driver(chromium: str) -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium: str) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=chromium, headless=True)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def ui_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own (the tests switch its backend and set its budget) with the master key."""
    with gateway_of_its_own(simulators, tmp_path_factory, "dashboard", master_key=MASTER_KEY) as running:
        yield running


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (its own session storage) at laptop width; fails on unexpected console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="UTC")
    opened = context.new_page()
    opened.on("console", console.on_console)
    opened.on("pageerror", console.on_page_error)
    try:
        yield opened
    finally:
        context.close()
    assert console.errors == [], "\n".join(console.errors)
