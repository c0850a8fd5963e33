"""The dashboard in headless Chromium, against `tidings serve` and a real Celery worker.

No asyncio.run() in this module: see browser_support.browser.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Dialog, Locator, Page, expect
from worker_support import Worker

from tidings.settings import Settings

ADMIN = {"Authorization": "Bearer admin-secret"}
#: Event names may hold anything but white space and "|".
XSS_NAME = "<img/src=x/onerror=window.pwned=1>"
XSS_PAYLOAD = {"note": "<script>window.pwned=2</script>", "html": '"><img src=x onerror=alert(3)>'}


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    """A Celery worker running tests/e2e_handlers.py, killed by PID afterwards."""
    started = Worker(settings.store_url, tmp_path / "worker.log", {}).start()
    yield started
    started.kill()


@pytest.fixture
def new_key(live_server: str) -> Iterator[Callable[..., httpx.Client]]:
    """new_key(name, env="test"): an API client holding a new secret key (as .secret)."""
    clients: list[httpx.Client] = []

    def make(name: str, env: str = "test") -> httpx.Client:
        created = httpx.post(
            f"{live_server}/admin/keys", json={"name": name, "env": env}, headers=ADMIN
        ).json()
        client = httpx.Client(
            base_url=live_server, headers={"X-Buildable-Secret": created["secret"]}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def emit(client: httpx.Client, name: str, payload: Any = None) -> str:
    answer = client.post("/emit", json={"event": name, "payload": payload or {}})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


def sign_in(page: Page, base_url: str, client: httpx.Client) -> None:
    page.goto(f"{base_url}/ui")
    expect(page).to_have_url(f"{base_url}/ui/login?next=%2Fui")
    page.fill("#secret", client.headers["X-Buildable-Secret"])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/ui")


def row(page: Page, key: str) -> Locator:
    return page.locator(f'tr[data-key="{key}"]')


def mark_page(page: Page) -> None:
    """A mark that a reload would wipe: its presence later proves there was none."""
    page.evaluate("window.notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.notReloaded === true"))


def test_sign_in_watch_filter_open_rerun_and_sign_out(
    page: Page,
    live_server: str,
    worker: Worker,
    new_key: Callable[..., httpx.Client],
    redis_client: redis.Redis,
) -> None:
    shop = new_key("shop")
    sign_in(page, live_server, shop)
    expect(page.locator("#total")).to_have_text("0")
    mark_page(page)

    key = emit(shop, "e2e.toggle", {"order": 42})
    other = emit(shop, "e2e.echo", {"n": 1})
    expect(row(page, key)).to_be_visible(timeout=10_000)  # no reload: the page polls
    expect(row(page, other)).to_be_visible()
    expect(page.locator("#total")).to_have_text("2")
    assert not_reloaded(page)

    page.fill("input[name=eventName]", "e2e.toggle")
    page.fill("input[name=txKey]", "toggle")
    page.select_option("select[name=txState]", "failed")
    page.click("form.filters button[type=submit]")
    expect(row(page, key)).to_be_visible(timeout=10_000)  # the toggle handler failed at once
    expect(row(page, other)).to_have_count(0)
    expect(page.locator("#total")).to_have_text("1")

    row(page, key).get_by_role("link", name="e2e.toggle").click()
    expect(page).to_have_url(f"{live_server}/ui/events/{key}")
    expect(page.locator("h1")).to_have_text("custom.shop.e2e.toggle")
    toggle = page.locator('section[data-tx="toggle"]')
    expect(toggle.locator(".badge").first).to_have_text("failed")
    expect(toggle.locator(".error-line")).to_contain_text("RuntimeError: switched off")
    expect(page.locator("pre.json").first).to_contain_text('"order": 42')

    redis_client.set(f"test:on:{key}", "1")  # a re-run now succeeds
    toggle.get_by_role("button", name="Re-run").click()
    expect(page.get_by_role("status")).to_have_text("Re-running toggle.")
    mark_page(page)
    expect(toggle.locator(".badge").first).to_have_text("finished", timeout=15_000)
    expect(toggle.locator("pre.json")).to_have_text('"on"')
    expect(toggle.locator(".timeline .reason")).to_contain_text(["re-run"])
    assert not_reloaded(page)  # the running event refreshed itself

    page.click("#sign-out")
    expect(page).to_have_url(f"{live_server}/ui/login")
    page.goto(f"{live_server}/ui/events/{key}")
    expect(page).to_have_url(f"{live_server}/ui/login?next=%2Fui%2Fevents%2F{key}")


def test_user_data_stays_inert_text(
    page: Page, live_server: str, new_key: Callable[..., httpx.Client]
) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    shop = new_key("shop")
    first = emit(shop, XSS_NAME, XSS_PAYLOAD)
    sign_in(page, live_server, shop)
    live = emit(shop, XSS_NAME, XSS_PAYLOAD)  # arrives through the poll
    expect(row(page, live)).to_be_visible(timeout=10_000)
    expect(row(page, first).get_by_role("link")).to_have_text(XSS_NAME)
    expect(row(page, live).get_by_role("link")).to_have_text(XSS_NAME)

    row(page, live).get_by_role("link").click()
    expect(page.locator("pre.json").first).to_contain_text(XSS_PAYLOAD["note"])
    expect(page.locator("pre.json").first).to_contain_text("onerror=alert(3)>")
    expect(page.locator("h1")).to_have_text(f"custom.shop.{XSS_NAME}")
    page.wait_for_timeout(500)
    for url in (f"{live_server}/ui", page.url):
        page.goto(url)
        assert page.locator("img").count() == 0
        assert page.evaluate("window.pwned") is None
        assert page.locator("script").count() == 1  # app.js
    assert dialogs == []


def test_a_test_key_never_shows_live_events(
    page: Page, live_server: str, new_key: Callable[..., httpx.Client]
) -> None:
    test, live = new_key("shop"), new_key("shop", "live")
    earlier = emit(live, "order.paid")
    sign_in(page, live_server, test)
    later = emit(live, "order.paid")
    mine = emit(test, "order.paid")  # once it shows, the poll has run past `later`
    expect(row(page, mine)).to_be_visible(timeout=10_000)
    expect(page.locator("tr[data-key]")).to_have_count(1)
    assert row(page, earlier).count() == 0 and row(page, later).count() == 0
    expect(page.locator(".who .badge")).to_have_text("test")
    page.goto(f"{live_server}/ui/events/{later}")
    expect(page.locator("p.error")).to_contain_text("no event with key")
