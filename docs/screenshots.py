"""Regenerates the dashboard screenshots in docs/ (`make screenshots`).

Starts an embedded Redis, `tidings serve` and a worker running handlers/ and
docs/demo_handlers.py, emits a shop's events, and shoots each page in headless Chromium
(/usr/bin/chromium, as the browser tests use it).
"""

import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

from browser_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from harness import Harness, wait_until  # noqa: E402

ADMIN_TOKEN = "screenshots"
ORDERS = [
    ("A-1041", 129.90, [("mug-blue", 2)]),
    ("A-1042", 740.00, [("espresso-machine", 1)]),  # declined: over the card's limit
    ("A-1043", 24.50, [("filter-papers", 5)]),
    ("A-1044", 62.00, [("beans-1kg", 2), ("grinder-burr", 1)]),
]
USERS = [("ada@example.com", "Ada"), ("grace@example.com", "Grace"), ("linus@example.com", "")]


def emit(api: httpx.Client, name: str, payload: object) -> str:
    answer = api.post("/emit", json={"event": name, "payload": payload})
    answer.raise_for_status()
    return str(answer.json()["key"])


def state(api: httpx.Client, key: str) -> str:
    return str(api.get(f"/events/{key}").json()["state"])


def shoot(page: Page, name: str) -> None:
    path = DOCS / f"ui-{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    with Harness() as harness:
        env = {"TIDINGS_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": f"{DOCS}:{ROOT}"}
        _, base = harness.serve(
            "api", [sys.executable, "-m", "tidings.cli", "serve", "--port", "{port}"], **env
        )
        worker = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--concurrency=2"]
        harness.start(
            "worker",
            [*worker, "--without-mingle", "--without-gossip"],
            TIDINGS_HANDLERS="handlers,demo_handlers",
            **env,
        )
        created = httpx.post(
            f"{base}/admin/keys",
            json={"name": "shop", "env": "test"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()
        with httpx.Client(base_url=base, headers={"X-Buildable-Secret": created["secret"]}) as api:
            wait_until(lambda: api.get("/handlers").json(), 30, "the worker's handlers")
            for email, name in USERS:
                emit(api, "user.created", {"email": email, "name": name})
            keys = []
            for order_id, total, items in ORDERS:
                lines = [{"sku": sku, "quantity": n} for sku, n in items]
                order = {"id": order_id, "total": total, "items": lines}
                keys.append(emit(api, "order.paid", order))
                emit(api, "invoice.created", {"order": order_id, "email": "ada@example.com"})
                time.sleep(0.3)
            emit(api, "refund.requested", {"order": "A-1039", "amount": 18.0})
            declined = keys[1]
            wait_until(lambda: state(api, declined) == "failed", 30, "the declined order")
            time.sleep(1)  # the rest settles
            shots(base, created["secret"], declined)


def shots(base: str, secret: str, declined: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{base}/ui")
        shoot(page, "login")
        page.fill("#secret", secret)
        page.click("button[type=submit]")
        expect(page.locator("#total")).to_be_visible()
        shoot(page, "events")
        page.goto(f"{base}/ui/events/{declined}")
        page.click("details summary")
        shoot(page, "event")
        page.goto(f"{base}/ui/handlers")
        shoot(page, "handlers")
        browser.close()


if __name__ == "__main__":
    main()
