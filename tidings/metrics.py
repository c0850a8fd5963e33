"""Prometheus metrics for the whole deployment, served by the API at ``GET /metrics``.

API and worker processes are many, often on several machines, so no one process can
answer for all of them. Each process counts in memory (``METRICS``) and adds what it
counted to Redis every few seconds, in one pipeline; a scrape of any API process reads
the sums. What the store already knows (events waiting for each handler, transactions by
state) is read from it at scrape time instead of being counted.
"""

import asyncio
import json
import logging
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from tidings import models
from tidings.store import Store, keys
from tidings.work import Emitted, NewEvent

log = logging.getLogger("tidings.metrics")

#: How often a process adds its counts to Redis, at most.
FLUSH_SECONDS = 2.0

#: Seconds: from half a millisecond (a fast no-op handler) to minutes (a retried one).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


#: The event_name label of events no handler subscribes to: names are the emitter's to
#: choose, and a label per name would let any key holder grow every scrape without bound.
NO_HANDLER = "(no handler)"


@dataclass(frozen=True)
class Definition:
    name: str
    help: str
    labels: tuple[str, ...]
    #: None for a counter.
    buckets: tuple[float, ...] | None = None


EVENTS_EMITTED = Definition(
    "tidings_events_emitted",
    f"Events stored; those no handler subscribes to are counted as {NO_HANDLER!r}.",
    ("environment", "event_name"),
)
HANDLER_RUNS = Definition(
    "tidings_handler_runs",
    "Handler runs by how they ended: finished, failed, retrying, skipped (claimed elsewhere), "
    "deferred (held back by a concurrency or rate limit, to run later).",
    ("tx_key", "outcome"),
)
HANDLER_SECONDS = Definition(
    "tidings_handler_duration_seconds",
    "How long handler functions ran.",
    ("tx_key",),
    LATENCY_BUCKETS,
)
EMIT_TO_START_SECONDS = Definition(
    "tidings_emit_to_start_seconds",
    "From an event being stored to a handler starting on it (first attempts only).",
    ("tx_key",),
    LATENCY_BUCKETS,
)
DISPATCH_BATCH = Definition(
    "tidings_dispatch_batch_size",
    "Transactions per broker message, counted by the worker that runs it.",
    (),
    BATCH_BUCKETS,
)
LEASE_RECOVERIES = Definition(
    "tidings_recoveries",
    "Transactions handed out again by recovery: a lapsed lease or a lost message.",
    ("environment",),
)
CANARY_ROUND_TRIP = Definition(
    "tidings_canary_round_trip_seconds",
    "From a worker sending a canary through a queue to a worker receiving it.",
    ("queue",),
    LATENCY_BUCKETS,
)
#: The canary queue label of every worker's own queue.
OWN_QUEUE = "(worker's own)"
DEFINITIONS = {
    d.name: d
    for d in (
        EVENTS_EMITTED,
        HANDLER_RUNS,
        HANDLER_SECONDS,
        EMIT_TO_START_SECONDS,
        DISPATCH_BATCH,
        LEASE_RECOVERIES,
        CANARY_ROUND_TRIP,
    )
}

#: A histogram's sum and count sit beside its buckets in the same Redis hash.
SUM, COUNT = "sum", "count"


def _le(upper: float | None) -> str:
    """A bucket's upper bound as Prometheus writes it; None for the last, unbounded one."""
    return "+Inf" if upper is None else repr(float(upper))


class Metrics:
    """One process's counts since it last flushed them; safe to use from any thread. A
    count's key is its labels (and a histogram's part), made a Redis field as it is flushed,
    so that counting costs no serialisation on a handler's way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[str, ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )

    def inc(self, metric: Definition, *labels: str, by: float = 1) -> None:
        with self._lock:
            self._counts[metric.name][labels] += by

    def observe(self, metric: Definition, value: float, *labels: str) -> None:
        assert metric.buckets is not None, f"{metric.name} is not a histogram"
        # Buckets are stored non-cumulative (one field per bucket); the scrape adds them up.
        bucket = bisect_left(metric.buckets, value)
        upper = metric.buckets[bucket] if bucket < len(metric.buckets) else None
        with self._lock:
            counts = self._counts[metric.name]
            counts[(*labels, _le(upper))] += 1
            counts[(*labels, SUM)] += value
            counts[(*labels, COUNT)] += 1

    def _take(self) -> dict[str, dict[tuple[str, ...], float]]:
        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: defaultdict(float))
        return counts

    async def flush(self, store: Store) -> None:
        """Add this process's counts to the deployment's, in Redis. Counts that cannot be
        written (Redis away) are kept for the next flush."""
        counts = self._take()
        if not counts:
            return
        try:
            # One MULTI: a pipeline resent after a dropped connection would count twice.
            async with store.redis.pipeline(transaction=True) as pipe:
                for name, fields in counts.items():
                    for key, value in fields.items():
                        pipe.hincrbyfloat(keys.metric(name), json.dumps(key), value)
                await pipe.execute()
        except Exception:
            with self._lock:
                for name, fields in counts.items():
                    for key, value in fields.items():
                        self._counts[name][key] += value
            raise


#: This process's counts.
METRICS = Metrics()


def event_label(event: models.EmitRequest | NewEvent, stored: Emitted) -> str:
    return event.event if stored.routes else NO_HANDLER


async def read(store: Store) -> list[Metric]:
    """Every metric of the deployment, as prometheus_client's metric families."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for name in DEFINITIONS:
            pipe.hgetall(keys.metric(name))
        stored = dict(zip(DEFINITIONS, await pipe.execute(), strict=True))
    families = [
        _family(d, {tuple(json.loads(f)): float(v) for f, v in stored[d.name].items()})
        for d in DEFINITIONS.values()
    ]
    return [*families, *await _store_gauges(store)]


def _family(d: Definition, values: dict[tuple[str, ...], float]) -> Metric:
    if d.buckets is None:
        counter = CounterMetricFamily(d.name, d.help, labels=d.labels)
        for labels, value in sorted(values.items()):
            counter.add_metric(labels, value)
        return counter
    histogram = HistogramMetricFamily(d.name, d.help, labels=d.labels)
    width = len(d.labels)
    for labels in sorted({k[:width] for k in values}):
        running, buckets = 0.0, []
        for upper in [*d.buckets, None]:
            running += values.get((*labels, _le(upper)), 0.0)
            buckets.append((_le(upper), running))
        histogram.add_metric(labels, buckets, values.get((*labels, SUM), 0.0))
    return histogram


async def _store_gauges(store: Store) -> list[Metric]:
    waiting = GaugeMetricFamily(
        "tidings_events_waiting",
        "Events a subscribed handler has not started on yet.",
        labels=("owner", "environment", "tx_key"),
    )
    transactions = GaugeMetricFamily(
        "tidings_transactions",
        "Transactions within retention, by handler and state.",
        labels=("owner", "environment", "tx_key", "state"),
    )
    held_back = GaugeMetricFamily(
        "tidings_runs_held_back",
        "Runs a handler's limits hold back: waiting for a concurrency slot, or booked by a "
        "rate to start later.",
        labels=("owner", "environment", "tx_key", "reason"),
    )
    due = GaugeMetricFamily(
        "tidings_waiting_for_time",
        "Delayed events, retries and runs put off by a rate or a debounce, waiting in Redis "
        "for their time.",
        labels=("owner", "environment"),
    )
    for scope in await store.scopes():
        due.add_metric((scope.owner, scope.env), await store.waiting_for_time(scope))
        for view in await store.handlers(scope):
            labels = (scope.owner, scope.env, view.txKey)
            waiting.add_metric(labels, view.counts.waiting)
            for state in ("processing", "finished", "failed"):
                transactions.add_metric((*labels, state), getattr(view.counts, state))
            held_back.add_metric((*labels, "concurrency"), view.counts.waitingForSlot)
            held_back.add_metric((*labels, "rate"), view.counts.waitingForRate)
    return [waiting, transactions, held_back, due]


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def registry_of(metrics: list[Metric]) -> CollectorRegistry:
    """A registry holding one scrape's metrics, for prometheus_client's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    return registry


async def flush_every(store: Store) -> None:
    """An API process's flushing loop (a worker flushes between batches instead); a last
    flush when it is cancelled, as the process stops."""
    try:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await _flush_quietly(store)
    finally:
        await _flush_quietly(store)


async def _flush_quietly(store: Store) -> None:
    try:
        await METRICS.flush(store)
    except Exception:  # Redis away: the counts wait for the next round
        log.warning("could not flush metrics to Redis", exc_info=True)
