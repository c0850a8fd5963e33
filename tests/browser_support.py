"""Browser fixtures: real pages in headless Chromium, driven by Playwright's sync API.

The browser is Debian's /usr/bin/chromium, which `make chromium` installs (`make test`
depends on it). Playwright's own browser download cannot be used here: never run
`playwright install`.

Load with `pytest_plugins = ["browser_support"]` (tests/conftest.py, or a test module).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")

# Playwright adds --headless for headless=True, and gives every launch a fresh
# --user-data-dir of its own (passing one in args is an error).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for each test module that uses it.

    Not for the whole session: while Playwright's sync API runs, its asyncio loop stays
    marked as running on the main thread, so `asyncio.run()` there fails ("cannot be called
    from a running event loop"). Stopping Playwright at the end of the module frees it for
    the tests in later modules (tests/test_testing.py, test_api.py's `subscribe`). In a module
    that uses the browser, run no `asyncio.run()` on the main thread after its first use.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}, and it is missing: run `make chromium` "
            "as root (it runs `apt-get install -y chromium`)",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a new browser context (own cookies and storage), closed after the test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, path: Path | str) -> Path:
    """Saves a full-page PNG of `page` at `path` (parent folders made) and returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=target, full_page=True)
    return target
