"""GET /metrics: every process's counts, added up in Redis, in Prometheus' text format."""

import asyncio

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tidings import metrics, models
from tidings.api import create_app
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope


def scrape(api: TestClient, **headers: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value."""
    answer = api.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def flush(settings: Settings, *processes: metrics.Metrics) -> None:
    async def go() -> None:
        store = Store.from_settings(settings)
        for process in processes:
            await process.flush(store)
        await store.close()

    asyncio.run(go())


def test_the_counts_of_several_processes_add_up(api: TestClient, settings: Settings) -> None:
    one, two = metrics.Metrics(), metrics.Metrics()
    one.inc(metrics.HANDLER_RUNS, "send-email", "finished", by=2)
    two.inc(metrics.HANDLER_RUNS, "send-email", "finished")
    two.inc(metrics.HANDLER_RUNS, "send-email", "failed")
    one.observe(metrics.HANDLER_SECONDS, 0.003, "send-email")
    two.observe(metrics.HANDLER_SECONDS, 0.2, "send-email")
    two.observe(metrics.HANDLER_SECONDS, 1000.0, "send-email")
    flush(settings, one, two)

    samples = scrape(api)
    runs = samples["tidings_handler_runs_total"]
    assert runs[(("outcome", "finished"), ("tx_key", "send-email"))] == 3
    assert runs[(("outcome", "failed"), ("tx_key", "send-email"))] == 1
    buckets = samples["tidings_handler_duration_seconds_bucket"]
    assert buckets[(("le", "0.0025"), ("tx_key", "send-email"))] == 0
    assert buckets[(("le", "0.005"), ("tx_key", "send-email"))] == 1
    assert buckets[(("le", "0.25"), ("tx_key", "send-email"))] == 2
    assert buckets[(("le", "300.0"), ("tx_key", "send-email"))] == 2
    assert buckets[(("le", "+Inf"), ("tx_key", "send-email"))] == 3
    assert samples["tidings_handler_duration_seconds_count"][(("tx_key", "send-email"),)] == 3
    total = samples["tidings_handler_duration_seconds_sum"][(("tx_key", "send-email"),)]
    assert abs(total - 1000.203) < 1e-9


def test_a_flush_adds_only_what_was_counted_since_the_last(settings: Settings) -> None:
    process = metrics.Metrics()
    process.inc(metrics.LEASE_RECOVERIES, "live", by=5)
    flush(settings, process)
    flush(settings, process)  # nothing new: adds nothing
    process.inc(metrics.LEASE_RECOVERIES, "live")
    flush(settings, process)
    with TestClient(create_app(settings)) as api:
        assert scrape(api)["tidings_recoveries_total"][(("environment", "live"),)] == 6


def test_emitted_events_are_counted_by_environment_and_name(
    api: TestClient, settings: Settings, headers: dict[str, str]
) -> None:
    subscribe(settings, "ship-order", "order.paid")
    for name in ("order.paid", "order.paid", "order.refunded", "made.up.name"):
        assert api.post("/emit", json={"event": name, "payload": {}}, headers=headers).is_success
    flush(settings, metrics.METRICS)  # the API process's own counts, as its loop would

    emitted = scrape(api)["tidings_events_emitted_total"]
    assert emitted[(("environment", "test"), ("event_name", "order.paid"))] == 2
    # Names no handler subscribes to are the emitter's to invent: one series for them all.
    assert emitted[(("environment", "test"), ("event_name", metrics.NO_HANDLER))] == 2
    assert len(emitted) == 2


def subscribe(settings: Settings, tx_key: str, event_name: str) -> None:
    subscription = models.Subscription(
        txKey=tx_key, eventName=event_name, platform="custom", queue="tidings", since=0
    )

    async def go() -> None:
        store = Store.from_settings(settings)
        await store.subscribe([subscription], ["test"])
        await store.close()

    asyncio.run(go())


def test_events_waiting_for_a_handler_are_read_from_the_store(
    api: TestClient, settings: Settings, headers: dict[str, str]
) -> None:
    subscribe(settings, "ship-order", "order.paid")
    for _ in range(3):
        assert api.post("/emit", json={"event": "order.paid"}, headers=headers).is_success
    assert api.post("/emit", json={"event": "order.refunded"}, headers=headers).is_success

    samples = scrape(api)
    labels = (("environment", "test"), ("owner", "default"), ("tx_key", "ship-order"))
    assert samples["tidings_events_waiting"][labels] == 3
    finished = tuple(sorted((*labels, ("state", "finished"))))
    assert samples["tidings_transactions"][finished] == 0


def test_a_metrics_token_guards_the_page(settings: Settings) -> None:
    guarded = settings.model_copy(update={"metrics_token": "scrape-me"})
    with TestClient(create_app(guarded)) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = api.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert answer.status_code == 200
        assert "# TYPE tidings_recoveries_total counter" in answer.text


def test_runs_held_back_by_a_limit_are_read_from_the_store(
    api: TestClient, settings: Settings, headers: dict[str, str]
) -> None:
    subscribe(settings, "ship-order", "order.paid")
    api.post("/emit", json={"event": "order.paid"}, headers=headers)  # the scope has events
    limit = keys.flow_limit("rate", Scope("default", "test"), "ship-order", "null")

    async def book() -> None:
        store = Store.from_settings(settings)
        for n in range(3):  # an hour apart: one starts, two are booked
            await store.rate(limit, f"default|test|{n:032x}|ship-order|0", 3_600_000, 60_000)
        await store.close()

    asyncio.run(book())
    held = scrape(api)["tidings_runs_held_back"]
    labels = (("environment", "test"), ("owner", "default"))
    assert held[(*labels, ("reason", "concurrency"), ("tx_key", "ship-order"))] == 0
    assert held[(*labels, ("reason", "rate"), ("tx_key", "ship-order"))] == 2


def test_what_waits_for_its_time_is_read_from_the_store(
    api: TestClient, settings: Settings, headers: dict[str, str]
) -> None:
    subscribe(settings, "ship-order", "order.paid")
    for delay in (None, 60_000, 3_600_000):
        body = {"event": "order.paid"} if delay is None else {"event": "order.paid", "delay": delay}
        assert api.post("/emit", json=body, headers=headers).is_success

    waiting = scrape(api)["tidings_waiting_for_time"]
    assert waiting[(("environment", "test"), ("owner", "default"))] == 2
