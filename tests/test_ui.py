"""The dashboard's pages over FastAPI's test client: sign-in, sessions, CSRF, isolation,
escaping, filters, paging and re-runs. tests/test_ui_browser.py drives them in Chromium."""

import asyncio
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tidings import models
from tidings.clock import now_ms
from tidings.models import HandlerOptions, Subscription, WorkerBeat
from tidings.store import Store, keys
from tidings.work import Scope, WorkItem

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def hidden(html: str, name: str) -> str:
    """The value of a hidden form field."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def sign_in(client: TestClient, secret: str) -> str:
    """Signs in through the form; the session's CSRF token."""
    form = client.get("/ui/login")
    answer = client.post(
        "/ui/login",
        data={"csrf": hidden(form.text, "csrf"), "secret": secret, "next": "/ui"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return hidden(client.get("/ui").text, "csrf")


def row_keys(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


def total(html: str) -> int:
    found = re.search(r'<strong id="total">([\d,]+)</strong>', html)
    assert found, "no total in the page"
    return int(found.group(1).replace(",", ""))


def run(action: Callable[[Store], Any], redis_url: str) -> Any:
    async def go() -> Any:
        store = Store.from_url(redis_url, ttl_seconds=3600)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


def subscribe(redis_url: str, event_name: str, tx_key: str, worker: str = "w1") -> None:
    """Registers a handler in the test environment, and a worker's heartbeat, as it does."""
    sub = Subscription(txKey=tx_key, eventName=event_name, queue="tidings-test")
    run(lambda store: store.subscribe([sub], ["test"]), redis_url)
    run(lambda store: store.heartbeat(heartbeat(worker, [tx_key], now_ms())), redis_url)


def heartbeat(worker: str, tx_keys: list[str], at: int) -> WorkerBeat:
    return WorkerBeat(
        name=worker,
        startedAt=at,
        lastSeen=at,
        heartbeatMs=2000,
        environments=["test"],
        owners=None,
        handlers=tx_keys,
        queues={},
        directQueue=f"tidings.worker.{worker}",
    )


class Shop:
    """A test key, its events over the API, and a browser session with it."""

    def __init__(self, api: TestClient, secret: str) -> None:
        self.api = api
        self.secret = secret
        self.headers = {"X-Buildable-Secret": secret}

    def emit(self, name: str, payload: Any = None) -> str:
        answer = self.api.post(
            "/emit", json={"event": name, "payload": payload or {}}, headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["key"])

    def emit_many(self, name: str, count: int) -> list[str]:
        events = [{"event": name, "payload": {"n": n}} for n in range(count)]
        answer = self.api.post("/emit/batch", json={"events": events}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["keys"])

    def transact(self, key: str, tx_key: str, state: str, output: Any) -> None:
        assert self.api.post("/init", json={"key": key, "txKey": tx_key}, headers=self.headers)
        body = {"key": key, "txKey": tx_key, "state": state, "output": output}
        answer = self.api.post("/transact", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text

    def tx_state(self, key: str, tx_key: str) -> str:
        event = self.api.get(f"/events/{key}", headers=self.headers).json()
        [tx] = [t for t in event["transactions"] if t["txKey"] == tx_key]
        return str(tx["state"])


@pytest.fixture
def shop(api: TestClient, new_secret: Callable[..., str]) -> Shop:
    return Shop(api, new_secret("shop"))


@pytest.fixture
def browser(api: TestClient) -> TestClient:
    """The API's test client in a browser's role: it keeps the session cookie. (A second
    client would run the app on an event loop of its own, which its Redis pool is not on.)"""
    return api


@pytest.fixture
def csrf(browser: TestClient, shop: Shop) -> str:
    return sign_in(browser, shop.secret)


# Signing in and out


def test_the_root_and_every_page_lead_to_sign_in(browser: TestClient) -> None:
    assert browser.get("/", follow_redirects=False).headers["location"] == "/ui"
    for path in ("/ui", "/ui/handlers", "/ui/events/abc", "/ui/rerun?txKey=x"):
        answer = browser.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")
    form = browser.get("/ui/login")
    assert form.status_code == 200 and 'name="secret"' in form.text


def test_signing_in_sets_a_strict_http_only_cookie_that_holds_no_secret(
    browser: TestClient, shop: Shop, redis_client: redis.Redis
) -> None:
    form = browser.get("/ui/login")
    answer = browser.post(
        "/ui/login",
        data={"csrf": hidden(form.text, "csrf"), "secret": shop.secret, "next": "/ui/handlers"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/handlers"
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if "tidings_session=" in c]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert shop.secret not in cookie
    record = redis_client.hgetall(f"tidings:session:{session_id}")
    assert record["secret"] == hashlib.sha256(shop.secret.encode()).hexdigest()
    assert shop.secret not in str(record)
    assert 0 < redis_client.ttl(f"tidings:session:{session_id}") <= 8 * 3600
    page = browser.get("/ui")
    assert page.status_code == 200 and "default / shop" in page.text


def test_a_wrong_secret_gets_the_form_again(browser: TestClient, shop: Shop) -> None:
    form = browser.get("/ui/login")
    answer = browser.post(
        "/ui/login",
        data={"csrf": hidden(form.text, "csrf"), "secret": "sk_test_nope"},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "unknown secret key" in answer.text
    assert "tidings_session" not in answer.headers.get("set-cookie", "")


def test_signing_in_needs_the_forms_csrf_token(browser: TestClient, shop: Shop) -> None:
    browser.get("/ui/login")
    for token in ("", "forged"):
        answer = browser.post(
            "/ui/login", data={"csrf": token, "secret": shop.secret}, follow_redirects=False
        )
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        assert "tidings_session" not in answer.headers.get("set-cookie", "")


def test_signing_out_ends_the_session(
    browser: TestClient, csrf: str, redis_client: redis.Redis
) -> None:
    session_id = browser.cookies["tidings_session"]
    answer = browser.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert not redis_client.exists(f"tidings:session:{session_id}")
    browser.cookies.set("tidings_session", session_id, path="/ui")  # replayed: no use
    assert browser.get("/ui", follow_redirects=False).status_code == 303


def test_revoking_the_key_signs_its_sessions_out_at_once(
    api: TestClient, browser: TestClient, csrf: str
) -> None:
    assert browser.get("/ui", follow_redirects=False).status_code == 200
    api.post(
        "/admin/keys/revoke",
        json={"name": "shop", "env": "test"},
        headers={"Authorization": "Bearer admin-secret"},
    )
    assert browser.get("/ui", follow_redirects=False).status_code == 303


def test_state_changing_requests_without_the_csrf_token_are_refused(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship")
    key = shop.emit("order.paid")
    shop.transact(key, "ship", "failed", {"error": {"type": "E", "message": "m"}})
    posts = [
        ("/ui/logout", {}),
        (f"/ui/events/{key}/rerun", {"txKey": "ship"}),
        ("/ui/rerun", {"txKey": "ship"}),
    ]
    for path, fields in posts:
        for token in (None, "forged", csrf.upper()):
            data = fields if token is None else {**fields, "csrf": token}
            answer = browser.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, token)
    assert shop.tx_state(key, "ship") == "failed"
    assert browser.get("/ui", follow_redirects=False).status_code == 200  # still signed in


# What a key sees


def test_a_key_sees_only_its_owner_and_environment(
    api: TestClient, browser: TestClient, new_secret: Callable[..., str]
) -> None:
    mine = Shop(api, new_secret("shop"))
    live = Shop(api, new_secret("shop", "live"))
    other = Shop(api, new_secret("shop", "test", "team-b"))
    own_key = mine.emit("order.paid")
    live_key, other_key = live.emit("order.paid"), other.emit("order.paid")
    sign_in(browser, mine.secret)
    page = browser.get("/ui").text
    assert row_keys(page) == [own_key] and total(page) == 1
    assert row_keys(browser.get("/ui/rows?after=0").text) == [own_key]
    for key in (live_key, other_key):
        answer = browser.get(f"/ui/events/{key}")
        assert answer.status_code == 404 and "no event with key" in answer.text


def test_user_data_is_shown_as_text(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    name = XSS[0]  # an event name may hold anything but white space and "|"
    subscribe(redis_url, name, "<b>ship</b>")
    key = shop.emit(name, {"note": XSS[0], XSS[1]: XSS[1]})
    key2 = shop.emit("order.paid", {"note": XSS[1]})
    error = {"type": XSS[1], "message": XSS[0], "traceback": XSS[1]}
    shop.transact(key2, "ship<b>", "failed", {"error": error})
    pages = [
        browser.get("/ui").text,
        browser.get("/ui/rows?after=0").text,
        browser.get("/ui", params={"eventName": name}).text,
        browser.get(f"/ui/events/{key}").text,
        browser.get(f"/ui/events/{key2}").text,
        browser.get("/ui/handlers").text,
        browser.get("/ui", params={"label": XSS[1], "txKey": XSS[0]}).text,
        browser.get("/ui/rerun", params={"txKey": "ship", "eventName": XSS[1]}).text,
    ]
    for html in pages:
        assert not any(attack in html for attack in XSS)
        assert "<img" not in html and "<b>" not in html
        assert html.count("<script") == html.count('<script src="/ui/static/app.js')
    detail = pages[4]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "ship&lt;b&gt;" in detail


# The stream


def test_filters_by_name_label_handler_state_and_time(
    api: TestClient, browser: TestClient, new_secret: Callable[..., str], redis_url: str
) -> None:
    shop, billing = Shop(api, new_secret("shop")), Shop(api, new_secret("billing"))
    paid = shop.emit("order.paid")
    failed = shop.emit("order.paid")
    untouched = shop.emit("order.paid")
    created = shop.emit("user.created")
    invoiced = billing.emit("order.paid")
    shop.transact(paid, "ship", "finished", {"ok": True})
    shop.transact(failed, "ship", "failed", {"error": {"type": "E", "message": "m"}})
    sign_in(browser, shop.secret)

    def shown(**params: str) -> list[str]:
        page = browser.get("/ui", params=params)
        assert page.status_code == 200
        keys = row_keys(page.text)
        assert total(page.text) == len(keys)
        return keys

    assert shown() == [invoiced, created, untouched, failed, paid]
    assert shown(eventName="order.paid") == [invoiced, untouched, failed, paid]
    assert shown(label="billing") == [invoiced]
    assert shown(platform="custom", label="shop", eventName="user.created") == [created]
    assert shown(txKey="ship") == [failed, paid]
    assert shown(txKey="ship", txState="finished") == [paid]
    assert shown(txKey="ship", txState="failed") == [failed]
    assert shown(eventName="order.paid", txKey="ship", txState="does-not-exist") == [
        invoiced,
        untouched,
    ]
    detail = api.get(f"/events/{untouched}", headers=shop.headers).json()
    at = detail["createdAt"]
    assert set(shown(since=str(at))) <= {invoiced, created, untouched}
    assert untouched in shown(since=str(at)) and untouched not in shown(until=str(at))
    iso = datetime.fromtimestamp(at / 1000, UTC)
    assert untouched in shown(since=iso.isoformat())
    assert shown(since="2000-01-01T00:00", until="2000-01-02") == []
    page = browser.get("/ui", params={"txKey": "ship", "txState": "failed"}).text
    assert 'value="ship"' in page and '<option value="failed" selected>' in page


def test_a_filter_that_makes_no_sense_is_explained(browser: TestClient, csrf: str) -> None:
    for params, message in [
        ({"txState": "failed"}, "give txKey too"),
        ({"since": "yesterday"}, "since: give a time like"),
        ({"eventName": "has space"}, "eventName"),
        ({"txKey": "x", "txState": "exploded"}, "txState"),
        ({"since": "9" * 5000}, "since: epoch ms have at most"),
    ]:
        page = browser.get("/ui", params=params)
        assert page.status_code == 200
        assert message in page.text and 'role="alert"' in page.text


def test_numbers_too_long_to_be_numbers_are_not_taken(browser: TestClient, csrf: str) -> None:
    # Python refuses to parse integers of over 4,300 digits: these once answered 500.
    for path, params in [
        ("/ui", {"page": "9" * 5000}),
        ("/ui", {"rerun": "9" * 5000}),
        ("/ui/rows", {"after": "9" * 5000}),
    ]:
        assert browser.get(path, params=params).status_code == 200, (path, params)


def test_pages_of_fifty_newest_first(browser: TestClient, csrf: str, shop: Shop) -> None:
    keys = shop.emit_many("tick", 120)
    newest_first = keys[::-1]
    first = browser.get("/ui").text
    assert total(first) == 120
    assert row_keys(first) == newest_first[:50]
    assert "Page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    third = browser.get("/ui?page=3").text
    assert row_keys(third) == newest_first[100:]
    assert 'rel="prev"' in third and 'rel="next"' not in third
    assert "data-poll" not in third  # only the first page takes new rows
    link = re.search(r'href="([^"]+)" rel="next"', browser.get("/ui?eventName=tick").text)
    assert link and link.group(1) == "/ui?eventName=tick&amp;page=2"


def test_new_rows_are_those_newer_than_the_newest_shown(
    browser: TestClient, csrf: str, shop: Shop
) -> None:
    batch = shop.emit_many("tick", 80)  # all in one millisecond
    page = browser.get("/ui?eventName=tick").text
    newest = re.search(r'data-key="([^"]+)" data-created="(\d+)"', page)
    assert newest and newest.group(1) == batch[-1]
    poll = {"eventName": "tick", "after": newest.group(2), "afterKey": newest.group(1)}
    nothing = browser.get("/ui/rows", params=poll)
    assert row_keys(nothing.text) == [] and nothing.headers["X-Total"] == "80"
    later = [shop.emit("tick"), shop.emit("other"), shop.emit("tick")]
    fresh = browser.get("/ui/rows", params=poll)
    assert row_keys(fresh.text) == [later[2], later[0]]
    assert fresh.headers["X-Total"] == "82" and fresh.headers["X-More"] == "0"
    flood = shop.emit_many("tick", 150)
    capped = browser.get("/ui/rows", params=poll)
    assert row_keys(capped.text) == flood[::-1][:100] and capped.headers["X-More"] == "1"


# An event, handlers and re-runs


def test_an_event_shows_its_payload_transactions_errors_and_history(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship")
    key = shop.emit("order.paid", {"order": 7, "items": ["a", "b"]})
    shop.transact(key, "audit", "finished", {"audited": True})
    scope_item = WorkItem("default", "test", key, "ship")

    async def fail_once_then_for_good(store: Store) -> None:
        claim = await store.claim(scope_item, actor="w1", lease_ms=60_000)
        assert claim is not None
        await store.retry_later(
            scope_item, claim, actor="w1", reason="attempt 1 failed: boom", due=0, lease_ms=0
        )

    run(fail_once_then_for_good, redis_url)
    error = {"type": "RuntimeError", "message": "boom again", "traceback": "Traceback (most..."}
    shop.api.post(
        "/transact",
        json={"key": key, "txKey": "ship", "state": "failed", "output": {"error": error}},
        headers=shop.headers,
    )
    page = browser.get(f"/ui/events/{key}").text
    assert "custom.shop.order.paid" in page
    assert "&#34;order&#34;: 7" in page  # pretty-printed JSON
    assert "&#34;audited&#34;: true" in page
    assert "RuntimeError" in page and "boom again" in page and "Traceback (most..." in page
    assert "attempt 1 failed: boom" in page  # a history entry's reason
    ship = page.split('data-tx="ship"')[1]
    assert 'name="txKey" value="ship"' in ship and "Re-run" in ship
    assert (
        'name="txKey" value="audit"' not in page.split('data-tx="audit"')[1].split("</section>")[0]
    )
    assert "data-refresh" not in page.split('id="event"')[1][:20]  # nothing runs: no polling


def test_a_delayed_event_says_when_it_is_due(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship")
    due = now_ms() + 3_600_000
    answer = shop.api.post(
        "/emit", json={"event": "order.paid", "deliverAt": due}, headers=shop.headers
    )
    key = answer.json()["key"]
    shown = datetime.fromtimestamp(due / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    page = browser.get(f"/ui/events/{key}").text
    assert "Delayed till" in page and shown in page and "starts when the event is due" in page
    row = browser.get("/ui").text.split(f'data-key="{key}"')[1].split("</tr>")[0]
    assert f"due {shown}" in " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_an_unknown_event_is_a_404_page(browser: TestClient, csrf: str) -> None:
    answer = browser.get("/ui/events/nope")
    assert answer.status_code == 404 and "no event with key" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_rerunning_one_failed_transaction(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship")
    key = shop.emit("order.paid")
    shop.transact(key, "ship", "failed", {"error": {"type": "E", "message": "m"}})
    answer = browser.post(
        f"/ui/events/{key}/rerun", data={"csrf": csrf, "txKey": "ship"}, follow_redirects=False
    )
    assert (
        answer.status_code == 303 and answer.headers["location"] == f"/ui/events/{key}?rerun=ship"
    )
    assert shop.tx_state(key, "ship") == "processing"
    page = browser.get(answer.headers["location"]).text
    assert "Re-running ship" in page and "data-refresh" in page.split('id="event"')[1][:20]
    again = browser.post(f"/ui/events/{key}/rerun", data={"csrf": csrf, "txKey": "ship"})
    assert again.status_code == 409 and "only a failed one is re-run" in again.text


def test_rerunning_a_handlers_failed_transactions_in_a_filter_after_a_confirmation(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship")
    failed = [shop.emit("order.paid") for _ in range(3)]
    fine = shop.emit("order.paid")
    for key in failed:
        shop.transact(key, "ship", "failed", {"error": {"type": "E", "message": "m"}})
    shop.transact(fine, "ship", "finished", None)
    stream = browser.get("/ui", params={"eventName": "order.paid", "txKey": "ship"}).text
    link = re.search(r'href="(/ui/rerun\?[^"]+)"', stream)
    assert link
    confirm = browser.get(link.group(1).replace("&amp;", "&"))
    assert '<strong id="count">3</strong>' in confirm.text
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', confirm.text.split("/ui/rerun")[1]))
    assert form == {"csrf": csrf, "eventName": "order.paid", "txKey": "ship"}
    answer = browser.post("/ui/rerun", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui?eventName=order.paid&txKey=ship&rerun=3"
    assert [shop.tx_state(key, "ship") for key in failed] == ["processing"] * 3
    assert shop.tx_state(fine, "ship") == "finished"
    assert (
        "3 failed transaction(s) handed to the workers again"
        in browser.get(answer.headers["location"]).text
    )
    none_left = browser.get(link.group(1).replace("&amp;", "&")).text
    assert (
        '<strong id="count">0</strong>' in none_left
        and "<button" not in none_left.split("/ui/rerun")[1].split("</form>")[0]
    )


def test_the_handlers_view(browser: TestClient, csrf: str, shop: Shop, redis_url: str) -> None:
    subscribe(redis_url, "order.paid", "ship")
    done, broken, waiting = (shop.emit("order.paid") for _ in range(3))
    shop.transact(done, "ship", "finished", None)
    shop.transact(broken, "ship", "failed", None)
    page = browser.get("/ui/handlers").text
    row = page.split('data-tx-key="ship"')[1].split("</tr>")[0]
    assert "custom.*.order.paid" in row and "tidings-test" in row and "w1" in row
    counts = re.findall(r'txState=([\w-]+)">(\d+)</a>', row)
    assert counts == [
        ("finished", "1"),
        ("failed", "1"),
        ("processing", "0"),
        ("does-not-exist", "1"),
    ]
    assert f"/ui/events/{waiting}" in row
    assert "/ui/rerun?eventName=order.paid" in row


def test_the_handlers_view_tells_live_workers_from_gone_ones_and_unserved_handlers(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    subscribe(redis_url, "order.paid", "ship", worker="live-worker")
    subscribe(redis_url, "order.paid", "audit", worker="gone-worker")
    long_ago = now_ms() - 60_000  # 30 heartbeats missed
    run(lambda store: store.heartbeat(heartbeat("gone-worker", ["audit"], long_ago)), redis_url)
    shop.emit("order.paid")
    page = browser.get("/ui/handlers").text
    ship = page.split('data-tx-key="ship"')[1].split("</tr>")[0]
    audit = page.split('data-tx-key="audit"')[1].split("</tr>")[0]
    assert "live-worker" in ship and "gone" not in ship and "No live worker" not in ship
    assert "No live worker runs it: its waiting events wait for one" in audit
    assert re.search(r"gone-worker</span> gone, last seen 1 min ago", audit)


def test_static_files_are_served_and_nothing_else(browser: TestClient) -> None:
    script = browser.get("/ui/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "max-age" in script.headers["cache-control"]
    assert browser.get("/ui/static/app.css").status_code == 200
    assert browser.get("/ui/static/..%2F__init__.py").status_code == 404
    assert browser.get("/ui/static/nope.js").status_code == 404


def test_pages_forbid_inline_script(browser: TestClient) -> None:
    policy = browser.get("/ui/login").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_the_handlers_view_says_which_limits_hold_runs_back(
    browser: TestClient, csrf: str, shop: Shop, redis_url: str
) -> None:
    options = HandlerOptions.model_validate(
        {"txKey": "ship", "eventName": "order.paid", "concurrency": 1}
        | {"concurrencyKey": "customer", "rate": "10/s"}
    )
    sub = Subscription(txKey="ship", eventName="order.paid", queue="tidings", options=options)
    scope = Scope("default", "test")
    customers = ['"ada"', *(f'"c{n:02}"' for n in range(models.MAX_HELD_BACK))]

    async def hold_back(store: Store) -> None:
        await store.subscribe([sub], ["test"])
        for value in customers:  # one runs; two wait for ada, one for each other customer
            limit = keys.flow_limit("concurrency", scope, "ship", value)
            for n in range(3 if value == '"ada"' else 2):
                run_ = f"default|test|{n:032x}|ship|0"
                slot = await store.acquire(limit, run_, f"t{n}", slots=1, lease_ms=60_000)
                if slot.status == "wait":
                    await store.note_waiting(limit, "ship")
        rated = keys.flow_limit("rate", scope, "ship", "null")
        for n in range(3):  # one starts, two are booked
            await store.rate(rated, f"default|test|{n:032x}|ship|0", 100, stale_ms=60_000)

    run(hold_back, redis_url)
    row = browser.get("/ui/handlers").text.split('data-tx-key="ship"')[1].split("</tr>")[0]
    held = re.findall(r'<div class="held (\w+)">\s*(.*?)\s*</div>', row, re.S)
    assert len(held) == models.MAX_HELD_BACK
    assert held[0][0] == "concurrency" and re.fullmatch(
        r"<strong>2 waiting</strong>: concurrency 1 per customer "
        r'\(<span class="mono">&#34;ada&#34;</span>\), first came \d+ s ago',
        held[0][1],
    )
    assert held[1][0] == "rate" and re.fullmatch(
        r"<strong>2 waiting</strong>: rate 10/s, next at <time title=\"\d+\">[\d:\- ]+</time>",
        held[1][1],
    )
    assert "<strong>1 waiting</strong>: concurrency 1 per customer" in held[2][1]
    # 22 runs wait for a slot and 2 for the rate; the 20 limits shown hold 22 of them.
    assert '<div class="muted">and 2 more under other values</div>' in row
