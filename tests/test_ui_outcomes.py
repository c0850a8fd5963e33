"""The dashboard renders whatever a transaction came to.

A transaction's output is any JSON an API client sends to /transact, or whatever a worker
wrote (an error with or without a traceback, a payload that did not fit, an output that was
not JSON, many attempts). For each, every page that shows the event answers 200 and shows
what it should, and a failed one can be re-run from its page. Everything goes over HTTP to
`tidings serve` as a real process on a real Redis; the worker cases run a real Celery worker.
"""

import asyncio
import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from worker_support import Worker

from tidings import Client
from tidings.models import Subscription
from tidings.store import Store

ADMIN = {"Authorization": "Bearer admin-secret"}
#: The handler the API cases act as: subscribed as a worker would, with no worker running it.
EVENT, TX_KEY = "order.paid", "ship"
WAIT_SECONDS = 60


def new_secret(base_url: str) -> str:
    """A test key of an owner of its own: its pages show only this test's events."""
    owner = f"o{uuid.uuid4().hex[:12]}"
    answer = httpx.post(
        f"{base_url}/admin/keys",
        json={"name": "shop", "env": "test", "owner": owner},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["secret"])


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field in the page"
    return found.group(1)


@contextmanager
def signed_in(base_url: str, secret: str) -> Iterator[httpx.Client]:
    """A browser: an HTTP client holding the dashboard's cookies, signed in with `secret`."""
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        form = browser.get("/ui/login")
        fields = {"csrf": hidden(form.text, "csrf"), "secret": secret, "next": "/ui"}
        answer = browser.post("/ui/login", data=fields)
        assert answer.status_code == 303, answer.text
        yield browser


# How each outcome comes about. An API case acts through the API as a client of the
# original Event API would; a worker case emits an event that a tests/e2e_handlers.py
# handler turns into that outcome.

Make = Callable[[httpx.Client], str]


def transacted(state: str, output: Any) -> Make:
    def make(api: httpx.Client) -> str:
        key = emit(api, EVENT, {"order": 7})
        assert api.post("/init", json={"key": key, "txKey": TX_KEY}).status_code == 200
        body = {"key": key, "txKey": TX_KEY, "state": state, "output": output}
        answer = api.post("/transact", json=body)
        assert answer.status_code == 200, answer.text
        return key

    return make


def claimed(api: httpx.Client) -> str:
    key = emit(api, EVENT, {"order": 7})
    assert api.post("/init", json={"key": key, "txKey": TX_KEY}).status_code == 200
    return key


def updated(state: str) -> Make:
    def make(api: httpx.Client) -> str:
        key = emit(api, EVENT, {"order": 7})
        body = {"key": key, "eventName": EVENT, "txKey": TX_KEY, "txState": state}
        answer = api.post("/update", json=body)
        assert answer.status_code == 200, answer.text
        return key

    return make


def emit(api: httpx.Client, name: str, payload: Any) -> str:
    answer = api.post("/emit", json={"event": name, "payload": payload})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


@dataclass(frozen=True)
class Outcome:
    id: str
    make: Make
    state: str
    #: How the failure's error line begins; None: the page shows no error line.
    error_line: str | None = None
    #: What else the transaction's part of the event page shows, as a reader sees it.
    shows: tuple[str, ...] = ()
    #: What it must not show (e.g. an output while the handler still runs).
    hides: tuple[str, ...] = ()
    event: str = EVENT
    tx_key: str = TX_KEY
    #: Made by a handler in a real worker, from an event it subscribes to.
    by_worker: bool = False


def failed(id: str, output: Any, error_line: str | None = None, *shows: str) -> Outcome:
    return Outcome(id, transacted("failed", output), "failed", error_line, shows)


def finished(id: str, output: Any, *shows: str) -> Outcome:
    return Outcome(id, transacted("finished", output), "finished", None, shows)


def handled(
    id: str, event: str, payload: Any, state: str, error_line: str | None, *shows: str
) -> Outcome:
    """An event `event` that its tests/e2e_handlers.py handler (tx_key: its last name part,
    as those handlers are named) turns into the outcome."""
    return Outcome(
        id,
        lambda api: emit(api, event, payload),
        state,
        error_line,
        shows,
        event=event,
        tx_key=event.split(".")[-1],
        by_worker=True,
    )


TRACEBACK = 'Traceback (most recent call last):\n  File "pay.py", line 1\nCardDeclined'
ERROR = {"type": "CardDeclined", "message": "card declined", "traceback": TRACEBACK}
OUTCOMES = [
    # Failed, with the error shape the worker writes, whole or in part.
    failed("error-with-traceback", {"error": ERROR}, "CardDeclined: card declined", TRACEBACK),
    Outcome(
        "error-message-only",
        transacted("failed", {"error": {"message": "card declined"}}),
        "failed",
        "card declined",
        hides=("Traceback", "Output"),
    ),
    failed("error-type-only", {"error": {"type": "CardDeclined"}}, "CardDeclined"),
    failed("error-traceback-only", {"error": {"traceback": TRACEBACK}}, None, TRACEBACK),
    failed("error-empty", {"error": {}}, None, '"error": {}'),
    failed("error-a-string", {"error": "card declined"}, "card declined"),
    failed("error-null", {"error": None}, None, '"error": null'),
    failed(
        "error-parts-not-strings",
        {"error": {"type": 402, "message": ["card", "declined"], "traceback": {"frames": 3}}},
        '402: [ "card", "declined" ]',
        '"frames": 3',
    ),
    failed(
        "error-and-more",
        {"error": {"message": "card declined", "code": "E42"}, "tried": ["visa"]},
        "card declined",
        '"code": "E42"',
        '"visa"',
    ),
    # Failed, with outputs of every JSON kind.
    failed("failed-a-string", "card declined", None, '"card declined"'),
    failed("failed-a-list", ["card", "declined"], None, '[ "card", "declined" ]'),
    failed("failed-null", None, None, "Output null"),
    failed("failed-a-number", 402, None, "Output 402"),
    failed("failed-a-boolean", False, None, "Output false"),
    failed(
        "failed-nested",
        {"charge": {"tries": [{"code": 51, "ok": None}]}},
        None,
        '"tries": [ { "code": 51, "ok": null } ]',
    ),
    Outcome("failed-by-update", updated("failed"), "failed", shows=("Output null",)),
    # Finished, with outputs of every JSON kind.
    finished("finished-a-string", "shipped", 'Output "shipped"'),
    finished("finished-a-list", ["a", "b"], '[ "a", "b" ]'),
    finished("finished-null", None, "Output null"),
    finished("finished-a-number", 3.5, "Output 3.5"),
    finished("finished-a-boolean", True, "Output true"),
    finished(
        "finished-nested",
        {"parcel": {"items": [{"sku": "A1", "gift": None}]}},
        '"items": [ { "sku": "A1", "gift": null } ]',
    ),
    finished("finished-with-an-error-field", {"error": ERROR}, '"message": "card declined"'),
    Outcome("finished-by-update", updated("finished"), "finished", shows=("Output null",)),
    # Still running: its output is not final.
    Outcome("processing", claimed, "processing", hides=("Output",)),
    # What a real worker writes.
    handled(
        "worker-retries-run-out",
        "e2e.broken",
        {},
        "failed",
        "ValueError: always broken",
        "attempts: 3",
        "Traceback (most recent call last)",
        "attempt 2 failed: ValueError: always broken",
    ),
    handled(
        "worker-third-attempt-succeeds",
        "e2e.flaky",
        {},
        "finished",
        None,
        "attempts: 3",
        '"attempt": 3',
        "attempt 1 failed: RuntimeError: flaky attempt 1",
    ),
    handled(
        "worker-payload-does-not-fit-the-model",
        "e2e.typed",
        {"id": "not a number"},
        "failed",
        "ValidationError: the payload does not fit the handler's model",
    ),
    handled(
        "worker-output-not-json",
        "e2e.unserialisable",
        {},
        "failed",
        "TypeError: the handler returned a value that is not JSON-serialisable",
    ),
]


def reads(html_text: str) -> str:
    """What a reader sees of some HTML: its text, unescaped, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", html_text)).split())


@pytest.fixture(scope="module")
def subscribed(redis_url: str) -> None:
    """Subscribes the API cases' handler, as a worker registers it (no worker runs it: the
    re-runs' messages wait in a queue that nobody reads)."""

    async def subscribe() -> None:
        store = Store.from_url(redis_url, ttl_seconds=3600)
        try:
            sub = Subscription(txKey=TX_KEY, eventName=EVENT, queue="ui-outcomes")
            await store.subscribe([sub], ["test"])
        finally:
            await store.close()

    asyncio.run(subscribe())


@pytest.fixture
def api_secret(module_live_server: str, subscribed: None) -> str:
    return new_secret(module_live_server)


@pytest.fixture(scope="module")
def worker_secret(
    module_live_server: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real worker running tests/e2e_handlers.py, and a key of an owner of its own."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = Worker(redis_url, log, {}).start()
    try:
        yield new_secret(module_live_server)
    finally:
        worker.kill()


@pytest.mark.parametrize("outcome", OUTCOMES, ids=[o.id for o in OUTCOMES])
def test_every_page_renders_the_outcome(
    outcome: Outcome, module_live_server: str, request: pytest.FixtureRequest
) -> None:
    secret = request.getfixturevalue("worker_secret" if outcome.by_worker else "api_secret")
    base = module_live_server
    with (
        httpx.Client(base_url=base, headers={"X-Buildable-Secret": secret}, timeout=10) as api,
        Client(secret, base) as client,
        signed_in(base, secret) as browser,
    ):
        key = outcome.make(api)
        if outcome.by_worker:
            client.wait(key, WAIT_SECONDS)
        [tx] = [t for t in client.get_event(key).transactions if t.txKey == outcome.tx_key]
        assert tx.state == outcome.state

        page = browser.get(f"/ui/events/{key}")
        assert page.status_code == 200, page.text
        section = page.text.split(f'data-tx="{outcome.tx_key}"')[1].split("</section>")[0]
        line = re.search(r'<p class="error-line">(.*?)</p>', section, re.DOTALL)
        if outcome.error_line is None:
            assert line is None
        else:
            assert line and reads(line.group(1)).startswith(outcome.error_line)
        shown = reads(section)
        for text in outcome.shows:
            assert reads(text) in shown
        for text in outcome.hides:
            assert text not in shown
        failed = outcome.state == "failed"
        assert ('<button type="submit">Re-run</button>' in section) == failed
        running = "data-refresh" in page.text.split('id="event"')[1][:20]
        assert running == (outcome.state == "processing")

        filtered = {"eventName": outcome.event, "txKey": outcome.tx_key}
        for path, params in [
            ("/ui", {}),
            ("/ui", {**filtered, "txState": outcome.state}),
            ("/ui/rows", {"after": "0"}),
        ]:
            answer = browser.get(path, params=params)
            assert answer.status_code == 200, (path, params, answer.text)
            assert f'data-key="{key}"' in answer.text, (path, params)

        handlers = browser.get("/ui/handlers")
        assert handlers.status_code == 200, handlers.text
        row = handlers.text.split(f'data-tx-key="{outcome.tx_key}"')[1].split("</tr>")[0]
        assert ("Re-run failed…" in row) == failed

        confirm = browser.get("/ui/rerun", params=filtered)
        assert confirm.status_code == 200, confirm.text
        assert f'<strong id="count">{int(failed)}</strong>' in confirm.text

        if failed:  # the Re-run button works: the transaction goes back to the workers
            form = section.split('class="push"')[1].split("</form>")[0]
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))
            answer = browser.post(f"/ui/events/{key}/rerun", data=fields)
            assert answer.status_code == 303, answer.text
            again = browser.get(answer.headers["location"])
            assert again.status_code == 200, again.text
            assert f"Re-running {outcome.tx_key}" in again.text
            [tx] = [t for t in client.get_event(key).transactions if t.txKey == outcome.tx_key]
            assert "re-run" in [entry.reason for entry in tx.history]
            if not outcome.by_worker:  # nobody runs it; a worker may have run it again already
                assert tx.state == "processing"
