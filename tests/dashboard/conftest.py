"""A real browser for page tests: Debian's chromium driven by Playwright.

Never a downloaded browser: Playwright is pointed at /usr/bin/chromium. Under CI=true a
missing chromium or Playwright fails the test (the README's test command installs
both); elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing on CI: `make test` installs it (scripts/"
                    "ensure-system-deps.sh, the dev extra)")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per module. Not per session: Playwright's sync API keeps an
    event loop running on the main thread until it stops, and every later test that
    calls ``asyncio.run`` would fail with "cannot be called from a running event loop"."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        _missing("Debian's chromium")
    with sync_playwright() as p:
        # Tests run as root in CI containers, where chromium's sandbox cannot start.
        b = p.chromium.launch(executable_path=path, chromium_sandbox=False, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.errors = errors
    try:
        yield p
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def cli() -> Any:
    """The real CLI in a subprocess (as in tests/e2e)."""
    from tests.e2e.conftest import Cli

    return Cli()
