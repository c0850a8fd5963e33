"""Rate and concurrency limits hold across worker processes, as the handlers themselves
record their runs (tests/e2e_handlers.py): when each started and ended.

Rates: no second of starts holds more runs than the rate allows, with a margin for the
time between the gate and the start, far below what the same runs do without a rate.

The runs a limit holds back are shown by /handlers, the dashboard and /metrics.
"""

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families
from worker_support import Worker, spans, wait_until

RUNS = 30
#: 10/s: at most 10 starts in any second; 2 more for the jitter between gate and start.
MOST_IN_A_SECOND = 12


def most_in_a_second(starts: list[float]) -> int:
    """The most starts in any window of one second (each start opening one)."""
    starts = sorted(starts)
    return max(sum(1 for t in starts if first <= t < first + 1) for first in starts)


def emit_batch(
    http: httpx.Client, name: str, payloads: Sequence[Mapping[str, object]]
) -> list[str]:
    answer = http.post(
        "/emit/batch", json={"events": [{"event": name, "payload": p} for p in payloads]}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["keys"])


def handled_all(http: httpx.Client, tx_key: str, count: int) -> None:
    def finished() -> bool:
        page = http.post("/query", json={"txKey": tx_key, "txState": "finished", "pageSize": 1})
        return bool(page.json()["total"] == count)

    wait_until(finished, f"{count} finished runs of {tx_key}", timeout=60)


def test_a_rate_holds_across_two_worker_processes(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(2)
    emit_batch(http, "e2e.unrated", [{"n": n} for n in range(RUNS)])
    emit_batch(http, "e2e.rated", [{"n": n} for n in range(RUNS)])
    handled_all(http, "unrated", RUNS)
    handled_all(http, "rated", RUNS)

    rated = spans(redis_client, "rated")
    assert len(rated) == RUNS  # each ran once...
    assert {attempt for _, _, attempt in rated} == {1}  # ...held back, never a failed attempt
    assert most_in_a_second([started for started, _, _ in rated]) <= MOST_IN_A_SECOND
    # Without the rate the same runs crowd into one second: the check above can fail.
    unrated = [started for started, _, _ in spans(redis_client, "unrated")]
    assert most_in_a_second(unrated) > MOST_IN_A_SECOND


def test_a_rate_per_key_holds_for_each_key_apart(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(2)
    payloads = [{"customer": customer} for _ in range(12) for customer in ("ada", "bob")]
    emit_batch(http, "e2e.rated-per-customer", payloads)
    handled_all(http, "rated-per-customer", len(payloads))

    ada = [s for s, _, _ in spans(redis_client, "rated-per-customer:ada")]
    bob = [s for s, _, _ in spans(redis_client, "rated-per-customer:bob")]
    assert len(ada) == len(bob) == 12
    assert most_in_a_second(ada) <= 7 and most_in_a_second(bob) <= 7  # 5/s, and 2 of margin
    assert most_in_a_second(ada + bob) >= 9  # each customer has a rate of its own


# Concurrency: no two spans of one limit overlap beyond its slots, checked from the handler's
# own records; the same runs without a limit do overlap, so the checks can fail.


def overlaps(found: list[tuple[float, float, int]]) -> int:
    """The most runs that were running at one moment."""
    edges = sorted([(s, 1) for s, _, _ in found] + [(e, -1) for _, e, _ in found])
    most = running = 0
    for _, step in edges:  # an end sorts before a start at the same moment
        running += step
        most = max(most, running)
    return most


def pids(redis_client: redis.Redis, name: str) -> set[str]:
    return {span.split()[3] for span in redis_client.lrange(f"test:spans:{name}", 0, -1)}


def test_a_concurrency_of_one_per_key_never_overlaps_across_four_workers(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(4)
    customers = ("ada", "bob", "cy")
    payloads = [{"customer": c} for _ in range(6) for c in customers]
    emit_batch(http, "e2e.per-customer", payloads)
    handled_all(http, "any-per-customer", len(payloads))
    handled_all(http, "one-per-customer", len(payloads))

    ran_by: set[str] = set()
    for customer in customers:
        one = spans(redis_client, f"one-per-customer:{customer}")
        assert len(one) == 6 and {attempt for _, _, attempt in one} == {1}
        assert overlaps(one) == 1, customer
        ran_by |= pids(redis_client, f"one-per-customer:{customer}")
        # Without the limit, the same runs of a customer overlap.
        assert overlaps(spans(redis_client, f"any-per-customer:{customer}")) > 1
    assert len(ran_by) > 1  # the runs of the limit went through several processes
    # Each customer has a slot of its own: runs of different customers did overlap.
    every = [s for c in customers for s in spans(redis_client, f"one-per-customer:{c}")]
    assert overlaps(every) > 1


def test_a_concurrency_of_two_holds_across_workers(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(2)
    emit_batch(http, "e2e.two-at-once", [{"n": n} for n in range(12)])
    handled_all(http, "two-at-once", 12)
    found = spans(redis_client, "two-at-once")
    assert len(found) == 12 and {attempt for _, _, attempt in found} == {1}
    assert overlaps(found) == 2


def test_the_slot_of_a_killed_worker_lapses_and_the_runs_waiting_go_on(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    [first] = start_workers(1)
    keys_ = emit_batch(http, "e2e.one-at-once-dies", [{"n": n} for n in range(3)])
    hung = wait_until(lambda: redis_client.get("test:one-at-once-dies:hung"), "a run to hang")
    first.kill()  # it holds the slot; the two other runs wait for it
    start_workers(1)
    handled_all(http, "one-at-once-dies", 3)

    found = spans(redis_client, "one-at-once-dies")
    assert len(found) == 3 and overlaps(found) == 1
    taken_over = http.get(f"/events/{hung}").json()["transactions"][0]
    assert taken_over["attempts"] == 2  # the killed run's attempt counts; waiting did not
    others = [http.get(f"/events/{k}").json()["transactions"][0] for k in keys_ if k != hung]
    assert [tx["attempts"] for tx in others] == [1, 1]


# The runs a limit holds back are seen: in /handlers, on the dashboard, in /metrics.


def one_at_a_time(http: httpx.Client) -> dict[str, Any]:
    [view] = [v for v in http.get("/handlers").json() if v["txKey"] == "one-at-a-time"]
    return dict(view)


def held_back_gauge(http: httpx.Client) -> dict[str, float]:
    """tidings_runs_held_back of the handler one-at-a-time, by reason."""
    found = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if (
                sample.name == "tidings_runs_held_back"
                and sample.labels["tx_key"] == "one-at-a-time"
            ):
                found[sample.labels["reason"]] = sample.value
    return found


def dashboard_row(base_url: str, secret: str) -> str:
    """The handler's row on the dashboard's handlers page, signed in with ``secret``."""
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        form = browser.get("/ui/login").text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        signed = browser.post("/ui/login", data={"csrf": csrf, "secret": secret, "next": "/ui"})
        assert signed.status_code == 303, signed.text
        page = browser.get("/ui/handlers").text
    return page.split('data-tx-key="one-at-a-time"')[1].split("</tr>")[0]


def test_runs_waiting_for_a_concurrency_slot_are_shown_until_they_run(
    http: httpx.Client,
    live_server: str,
    start_workers: Callable[[int], list[Worker]],
    redis_client: redis.Redis,
) -> None:
    start_workers(1)
    emit_batch(http, "e2e.one-at-a-time", [{"customer": "ada"} for _ in range(3)])

    # The first run holds the customer's one slot until the test lets it go; two wait.
    view = wait_until(
        lambda: (v := one_at_a_time(http))["counts"]["waitingForSlot"] == 2 and v,
        "two runs waiting for the slot",
    )
    assert redis_client.get("test:one-at-a-time:started") == "1"
    assert view["counts"]["processing"] == 1 and view["counts"]["waitingForRate"] == 0
    [held] = view["heldBack"]
    assert (held["reason"], held["keyValue"], held["runs"]) == ("concurrency", '"ada"', 2)
    assert held["waitingSince"] <= time.time() * 1000 and held["nextStartAt"] is None
    row = dashboard_row(live_server, str(http.headers["X-Buildable-Secret"]))
    assert re.search(
        r"<strong>2 waiting</strong>: concurrency 1 per customer "
        r'\(<span class="mono">&#34;ada&#34;</span>\), first came \d+ s ago',
        row,
    ), row
    assert held_back_gauge(http) == {"concurrency": 2, "rate": 0}

    redis_client.set("test:one-at-a-time:go", "1")
    handled_all(http, "one-at-a-time", 3)
    view = one_at_a_time(http)
    assert (view["counts"]["waitingForSlot"], view["heldBack"]) == (0, [])
    assert "waiting</strong>" not in dashboard_row(
        live_server, str(http.headers["X-Buildable-Secret"])
    )
    assert held_back_gauge(http) == {"concurrency": 0, "rate": 0}
    assert redis_client.get("test:one-at-a-time:started") == "3"
