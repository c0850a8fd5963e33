"""Whether the dashboard stays usable with many stored events: time to first byte of its
pages against the /query call that reads the same page, over real HTTP.

The script starts an embedded Redis and `tidings serve`, stores N events (default
100,000) through ``Store.emit`` in batches of 1,000 (four event names, two labels), signs
in to the dashboard, and then, the cases taking turns request by request, times
``--reps`` requests of each (after a few to warm up):

``stream``     /ui, the newest 50 events                 vs POST /query newestFirst, page 1
``filtered``   /ui?eventName=order.paid&label=mobile     vs the same /query filter
``deep page``  /ui?page=1000, events 49,951-50,000       vs /query page 1000

TTFB is the time from sending the request to having the response's headers (the page is
rendered before its headers go out, so it includes the rendering). It prints medians and
the dashboard-to-/query ratio. Run it from the repository root::

    .venv/bin/python bench/dashboard_ttfb.py [--events 100000] [--reps 50]
"""

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import httpx
from harness import Harness

from tidings import models
from tidings.store import Store
from tidings.work import Scope

ADMIN_TOKEN = "bench"
BATCH = 1000
NAMES = ["user.created", "order.paid", "invoice.sent", "refund.issued"]
LABELS = ["web", "web", "web", "mobile"]
PAGE_SIZE = 50
#: (name, dashboard query string, the same page as a /query body)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("stream", {}, {}),
    (
        "filtered",
        {"eventName": "order.paid", "label": "mobile"},
        {"eventName": "order.paid", "label": "mobile"},
    ),
    ("deep page", {"page": 1000}, {"page": 1000}),
]


def fill(redis_url: str, scope: Scope, events: int) -> float:
    """Stores the events; the rate, in events per second."""

    async def run() -> None:
        store = Store.from_url(redis_url, ttl_seconds=30 * 24 * 3600)
        try:
            for batch in range(events // BATCH):
                payloads = [
                    models.EmitRequest(
                        event=NAMES[(batch + n) % len(NAMES)],
                        payload={"id": f"{batch}-{n}", "email": "ada@example.com", "total": n},
                    )
                    for n in range(BATCH)
                ]
                label = LABELS[batch % len(LABELS)]
                await store.emit(scope, payloads, platform="custom", label=label, actor="bench")
        finally:
            await store.close()

    started = time.perf_counter()
    asyncio.run(run())
    return events / (time.perf_counter() - started)


def ttfb(send: Callable[[], AbstractContextManager[httpx.Response]]) -> float:
    """Seconds until the response's headers arrived (its body is read afterwards)."""
    started = time.perf_counter()
    with send() as response:
        first_byte = time.perf_counter() - started
        response.read()
        assert response.status_code == 200, response.text[:300]
    return first_byte


def sign_in(client: httpx.Client, secret: str) -> None:
    form = client.get("/ui/login").text
    found = re.search(r'name="csrf" value="([^"]+)"', form)
    assert found
    answer = client.post("/ui/login", data={"csrf": found.group(1), "secret": secret})
    assert answer.status_code == 200 and 'id="total"' in answer.text, answer.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()

    with Harness() as harness:
        command = [sys.executable, "-m", "tidings.cli", "serve", "--port", "{port}"]
        _, base = harness.serve("api", command, TIDINGS_ADMIN_TOKEN=ADMIN_TOKEN)
        key = httpx.post(
            f"{base}/admin/keys",
            json={"name": "web", "env": "live"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()
        rate = fill(harness.redis_url, Scope("default", "live"), args.events)
        print(f"stored {args.events:,} events through Store.emit at {rate:,.0f}/s")

        with (
            httpx.Client(base_url=base, follow_redirects=True) as ui,
            httpx.Client(base_url=base, headers={"X-Buildable-Secret": key["secret"]}) as api,
        ):
            sign_in(ui, key["secret"])
            senders = {
                name: [
                    partial(ui.stream, "GET", "/ui", params=params),
                    partial(
                        api.stream,
                        "POST",
                        "/query",
                        json={"newestFirst": True, "pageSize": PAGE_SIZE, **body},
                    ),
                ]
                for name, params, body in CASES
            }
            times: dict[tuple[str, int], list[float]] = {
                (name, side): [] for name in senders for side in (0, 1)
            }
            for rep in range(args.reps + 5):
                for name, sides in senders.items():
                    for side, send in enumerate(sides):
                        took = ttfb(send)
                        if rep >= 5:  # the first few warm up
                            times[name, side].append(took)

    print(f"\nmedian time to first byte over {args.reps} requests each ({PAGE_SIZE} rows a page)")
    print(f"{'page':<12}{'dashboard':>12}{'/query':>12}{'ratio':>8}")
    for name in senders:
        ui_ms, api_ms = (statistics.median(times[name, side]) * 1000 for side in (0, 1))
        print(f"{name:<12}{ui_ms:>9.2f} ms{api_ms:>9.2f} ms{ui_ms / api_ms:>7.2f}x")


if __name__ == "__main__":
    main()
