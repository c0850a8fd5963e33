"""Debounce: a burst of events for one key yields one run, on its last event, across worker
processes; a burst that goes on runs at least every debounce_max seconds. The handler
(tests/e2e_handlers.py: debounced, 1 s per customer, at most 3 s) records its runs."""

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from worker_support import Worker, handled, spans

from tidings import handler

#: Slack for the time between a due time and the handler's start, on a busy machine.
MARGIN_SECONDS = 1.5


def emit(http: httpx.Client, customer: str) -> dict[str, Any]:
    answer = http.post("/emit", json={"event": "e2e.debounced", "payload": {"customer": customer}})
    assert answer.status_code == 200, answer.text
    return dict(http.get(f"/events/{answer.json()['key']}").json())


def outputs(http: httpx.Client, events: list[dict[str, Any]]) -> list[Any]:
    """Each event's transaction output, once every one has ended."""
    return [handled(http, e["key"])["transactions"][0]["output"] for e in events]


def test_a_burst_for_one_key_yields_one_run_on_its_last_event(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(2)
    ada: list[dict[str, Any]] = []
    bob: list[dict[str, Any]] = []
    for _ in range(5):
        ada.append(emit(http, "ada"))
        if len(bob) < 3:
            bob.append(emit(http, "bob"))
        time.sleep(0.1)

    for burst, customer in ((ada, "ada"), (bob, "bob")):
        keys = [e["key"] for e in burst]
        *before, last = outputs(http, burst)
        assert last == keys[-1]  # the handler ran on the last event...
        for i, output in enumerate(before):  # ...and each before it gave way to a later one
            assert output["debouncedBy"] in keys[i + 1 :]
        [(started, _, _)] = spans(redis_client, f"debounced:{customer}")
        quiet = burst[-1]["createdAt"] / 1000 + 1  # a second after its last event
        assert quiet <= started < quiet + MARGIN_SECONDS


def test_a_burst_that_goes_on_runs_at_least_every_debounce_max(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(1)
    burst = []
    for _ in range(20):  # an event every 0.3 s for 6 s: never a quiet second
        burst.append(emit(http, "cy"))
        time.sleep(0.3)

    ran = [o for o in outputs(http, burst) if isinstance(o, str)]  # the rest: debouncedBy
    runs = sorted(started for started, _, _ in spans(redis_client, "debounced:cy"))
    assert 2 <= len(runs) == len(ran) <= 3  # one per 3 s at most, and the burst's end
    assert runs[0] < burst[0]["createdAt"] / 1000 + 3 + MARGIN_SECONDS
    assert ran[-1] == burst[-1]["key"]  # the burst's end: its last event ran


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"debounce_key": "customer"}, "debounce_key goes with debounce"),
        ({"debounce": 5, "debounce_max": 2}, "at least debounce"),
        ({"debounce": 0}, "greater than 0"),
    ],
)
def test_a_debounce_that_cannot_work_is_refused_when_decorated(
    options: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        handler("e2e.debounced", tx_key="refused-debounce", **options)(lambda event: None)
