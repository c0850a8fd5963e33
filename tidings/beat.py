"""Schedules without a scheduler process: every worker's beat looks, every second, for the
latest tick of each schedule it knows, and the one worker that claims a tick in Redis emits
it as an event (platform "schedule", label "cron"), which normal dispatch hands to the
handlers subscribed to it. Any number of workers may run: each tick is emitted once, and
its emit carries the idempotency key ``schedule:{eventName}@{tick}`` as a second guard.

Ticks missed while no worker ran: with ``missed_ticks="run-last"`` the latest of them is
emitted once, when a worker comes back; with ``"skip"``, a tick noticed more than
``LATE_MS`` after its time is passed over. A schedule seen for the first time starts with
its next tick.
"""

from typing import Any

from tidings import models, schedules
from tidings.handlers import Handler
from tidings.store import Store
from tidings.work import NewEvent, Scope, WorkItem

#: How often a worker's beat looks for due ticks.
BEAT_SECONDS = 1.0
#: A tick noticed later than this after its time was missed.
LATE_MS = 60_000
#: The owner whose events ticks are, where a worker serves every owner (TIDINGS_OWNERS).
DEFAULT_OWNER = "default"


def tick_idempotency_key(event_name: str, tick_ms: int) -> str:
    return f"schedule:{event_name}@{tick_ms}"


def scopes_of(environments: list[str], owners: list[str] | None) -> list[Scope]:
    """Where a worker emits ticks: each environment it handles, for each of its owners."""
    return [Scope(owner, env) for env in environments for owner in owners or [DEFAULT_OWNER]]


def tick_payload(options: models.HandlerOptions, tick_ms: int) -> dict[str, Any]:
    return {"tick": tick_ms, "schedule": options.schedule, "timezone": options.timezone}


async def beat(
    store: Store, handlers: list[Handler], scopes: list[Scope], actor: str, now_ms: int
) -> list[tuple[WorkItem, str]]:
    """Emit the ticks due now that this worker claims; the work they give, with queues."""
    by_event = {h.event_name: h.options for h in handlers if h.options.schedule is not None}
    items: list[tuple[WorkItem, str]] = []
    for event_name, options in by_event.items():
        assert options.schedule is not None
        due = schedules.last_tick(options.schedule, options.timezone, now_ms)
        if due is None:
            continue
        skip = options.missed_ticks == "skip" and now_ms - due > LATE_MS
        for scope in scopes:
            if await store.tick(scope, event_name, due, record_only=skip) != "fire":
                continue
            tick = NewEvent(
                event_name,
                tick_payload(options, due),
                idempotency_key=tick_idempotency_key(event_name, due),
            )
            [stored] = await store.emit(
                scope,
                [tick],
                platform=models.SCHEDULE_PLATFORM,
                label=models.SCHEDULE_LABEL,
                actor=actor,
                idempotency_seconds=models.IDEMPOTENCY_SECONDS,
            )
            items += stored.work(scope)
    return items
