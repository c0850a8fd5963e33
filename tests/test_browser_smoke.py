"""The browser-test stack works: Playwright drives headless Chromium through a real page."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browser_support import screenshot
from playwright.sync_api import Page

# The `browser` and `page` fixtures. Redundant once tests/conftest.py loads the plugin too;
# both may stand, the plugin is registered once.

PAGE = b"""<!doctype html>
<html>
  <head><meta charset="utf-8"><title>tidings browser smoke</title></head>
  <body>
    <p id="status">waiting</p>
    <button id="go" onclick="document.getElementById('status').textContent = 'clicked'">
      Go
    </button>
  </body>
</html>
"""


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    """PAGE served over HTTP on a free loopback port, from a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_click_runs_the_page_script_and_a_screenshot_is_a_png(
    page: Page, page_url: str, tmp_path: Path
) -> None:

    page.goto(page_url)
    assert page.title() == "tidings browser smoke"
    assert page.text_content("#status") == "waiting"

    page.click("#go")

    assert page.text_content("#status") == "clicked"
    shot = screenshot(page, tmp_path / "smoke.png")
    data = shot.read_bytes()
    assert len(data) > 100
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
