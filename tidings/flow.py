"""Flow control in the worker: may a run start now under its handler's debounce,
concurrency and rate?

A run is gated before it claims its transaction, so that one held back is neither failed
nor counted as an attempt:

- Concurrency: the run takes a slot of its limit (tidings/store/flow.py) and gives it back
  when it ends; one over the limit waits in its limit's line and this message is done. The
  run that frees a slot publishes the first in line (and workers hand out slots whose lease
  lapsed, every recovery round), so waiting costs no polling and keeps arrival order.
- Debounce: the first run of an event (attempt 0) joins its burst as the burst's last run
  and is put off till the burst is due (in the due set, tidings/store/due.py); the run it
  supersedes is recorded as finished without running the handler, its output naming the
  event that superseded it. When the burst's last run comes back due, it goes on.
- Rate: a run over the rate is booked its start time and put off till then, in the due
  set as retries are (tidings/store/due.py).

A copy of a waiting run (recovery hands out events that wait long) finds its place taken
and is dropped.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.errors import NotFound
from tidings.handlers import Handler
from tidings.ids import new_id
from tidings.store import Store, keys
from tidings.work import WorkItem

log = logging.getLogger("tidings.flow")

#: Hands work items to the workers, with the queue of each.
Publish = Callable[[list[tuple[WorkItem, str]]], None]
#: The limit of runs whose payload has no value at the key path.
NO_VALUE = "null"


@dataclass(frozen=True)
class Held:
    """A concurrency slot a run holds while it runs."""

    limit: str
    token: str


@dataclass(frozen=True)
class Admission:
    #: The run may claim its transaction now.
    go: bool
    held: Held | None = None
    #: A run of its debounce burst that it supersedes, never to run its handler.
    superseded: WorkItem | None = None


def run_name(item: WorkItem) -> str:
    """A run as the limits name it."""
    return "|".join(str(part) for part in item.row)


def run_of(name: str) -> WorkItem:
    owner, env, key, tx_key, attempt = name.split("|")
    return WorkItem(owner, env, key, tx_key, int(attempt))


def key_value(payload: Any, path: str | None) -> str:
    """The JSON of the value at a dotted path of the payload (``NO_VALUE`` where there is
    none), which names its limit."""
    if path is None:
        return NO_VALUE
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return NO_VALUE
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _limit(kind: str, item: WorkItem, payload: Any, path: str | None) -> str:
    """The limit of a kind that a run falls under: its handler's, for its key path's value."""
    return keys.flow_limit(kind, item.scope, item.tx_key, key_value(payload, path))


@dataclass
class Gate:
    store: Store
    lease_ms: int
    publish: Publish

    async def admit(self, item: WorkItem, handler: Handler) -> Admission:
        options = handler.options
        debounce = options.debounce if item.attempt == 0 else None  # a retry is not an event
        if options.concurrency is None and options.rate is None and debounce is None:
            return Admission(go=True)
        payload = await self._payload(item) if options.key_paths else None
        run = run_name(item)
        superseded = None
        if debounce is not None:
            limit = _limit("debounce", item, payload, options.debounce_key)
            most = options.debounce_max
            answer = await self.store.debounce(
                limit,
                run,
                period_ms=round(debounce * 1000),
                most_ms=None if most is None else round(most * 1000),
                keep_ms=self.lease_ms,
            )
            superseded = run_of(answer.superseded) if answer.superseded else None
            if answer.status == "wait":
                await self.store.put_off(item, now_ms() + answer.wait_ms)
                return Admission(go=False, superseded=superseded)
        held = None
        if options.concurrency is not None:
            limit = _limit("concurrency", item, payload, options.concurrency_key)
            token = new_id()
            slot = await self.store.acquire(
                limit, run, token, slots=options.concurrency, lease_ms=self.lease_ms
            )
            self._publish(handler, slot.promoted)
            if slot.status == "wait":
                await self.store.note_waiting(limit, item.tx_key)
                return Admission(go=False, superseded=superseded)
            held = Held(limit, token)
        if options.rate is not None:
            limit = _limit("rate", item, payload, options.rate_key)
            interval = models.rate_interval_ms(options.rate)
            rate = await self.store.rate(limit, run, interval, stale_ms=self.lease_ms)
            if rate.status != "ok":
                back_by = rate.wait_ms + self.lease_ms
                if held is not None:
                    await self.store.keep(held.limit, held.token, run, now_ms() + back_by)
                if rate.status == "wait":
                    if item.attempt:  # a retry's lease lasts until it comes back
                        await self.store.extend_leases([item], back_by)
                    # A millisecond more: the booking is on Redis's clock.
                    await self.store.put_off(item, now_ms() + rate.wait_ms + 1)
                return Admission(go=False, superseded=superseded)
        return Admission(go=True, held=held, superseded=superseded)

    async def release(self, handler: Handler, admission: Admission) -> None:
        """Give back the slot a run held, to the first run waiting for it."""
        held = admission.held
        if held is not None and handler.options.concurrency is not None:
            promoted = await self.store.release(
                held.limit, held.token, slots=handler.options.concurrency, lease_ms=self.lease_ms
            )
            self._publish(handler, promoted)

    async def _payload(self, item: WorkItem) -> Any:
        try:
            return (await self.store.get_event(item.scope, item.key)).payload
        except NotFound:  # expired: its claim skips it
            return None

    def _publish(self, handler: Handler, runs: list[str]) -> None:
        if runs:
            self.publish([(run_of(run), handler.queue) for run in runs])


async def wake(store: Store, handlers: list[Handler], lease_ms: int) -> list[tuple[WorkItem, str]]:
    """The runs that slots lapsed since (their worker died) go to, with their queues, for
    the handlers this worker runs."""
    slots_of = {h.tx_key: c for h in handlers if (c := h.options.concurrency) is not None}
    queues = {h.tx_key: h.queue for h in handlers}
    promoted = await store.wake(slots_of, lease_ms)
    return [(item, queues[item.tx_key]) for item in map(run_of, promoted)]
