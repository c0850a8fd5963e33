"""The init/transact wrapper around every handler run: plain Python, no Celery.

A run claims its transaction (a leased init), calls the handler, and records the outcome
with transact. The rows of one message run together: claims asked for while one is on its
way go to Redis together in the next round trip, and so do results, so that a message of
many rows costs a few round trips rather than two a row. An exception is retried with
backoff until ``max_retries`` runs out; each failed attempt is written to the transaction's
history; the last one fails it with the error as its output. The Celery task in
``tidings.celery_app`` is a thin shell around this.
"""

import asyncio
import contextvars
import json
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import ValidationError

from tidings import metrics, models
from tidings.clock import now_ms
from tidings.flow import Gate, Held
from tidings.handlers import MAX_BACKOFF_SECONDS, EventInfo, Handler, Message
from tidings.ids import new_event_key
from tidings.store import Store
from tidings.store.events import past_retention
from tidings.work import Claim, Emitted, NewEvent, Result, WorkItem

log = logging.getLogger("tidings.worker")

#: "deferred": held back by the handler's debounce, concurrency or rate, to run later;
#: "debounced": superseded by a later event of its debounce burst, never to run.
Outcome = Literal["finished", "failed", "retrying", "skipped", "deferred", "debounced"]
#: Hands work items to the workers, with the queue of each.
Publish = Callable[[list[tuple[WorkItem, str]]], None]


@dataclass
class Running:
    """The handler running in this context: the event it handles (its follow-ups go to its
    partition), how long events are kept, and the events it emits, stored and dispatched
    once it has succeeded."""

    key: str
    retention_ms: int
    outbox: list[tuple[str, NewEvent]] = field(default_factory=list)


_running: contextvars.ContextVar[Running] = contextvars.ContextVar("running")


def emit(
    event_name: str,
    payload: Any = None,
    *,
    delay: int | None = None,
    deliver_at: int | None = None,
) -> str:
    """Emit a follow-up event from inside a handler, without HTTP; answers its key.

    It lands in the handled event's owner, environment and label, and is stored only if
    the handler succeeds, so that a retried handler does not emit twice. ``delay`` (ms from
    now) or ``deliver_at`` (epoch ms) holds its handlers back until then, as /emit's
    ``delay`` and ``deliverAt`` do.
    """
    try:
        running = _running.get()
    except LookupError:
        raise RuntimeError(
            "tidings.emit() works inside a handler; elsewhere use tidings.Client(...).emit()"
        ) from None
    request = models.EmitRequest(
        event=event_name,
        payload={} if payload is None else payload,
        delay=delay,
        deliverAt=deliver_at,
    )
    event = NewEvent.of(request)
    if why := past_retention(event, now_ms(), running.retention_ms):
        raise ValueError(why)
    key = new_event_key(beside=running.key)
    running.outbox.append((key, event))
    return key


def backoff_delay(handler: Handler, attempt: int) -> float:
    """Exponential, capped, with equal jitter: half fixed, half random."""
    delay = min(MAX_BACKOFF_SECONDS, handler.options.backoff * 2.0 ** (attempt - 1))
    return float(delay / 2 + random.uniform(0, delay / 2))


def error_output(exc: BaseException) -> dict[str, Any]:
    traceback_text = "".join(traceback.format_exception(exc))
    return {"error": {"type": type(exc).__name__, "message": str(exc), "traceback": traceback_text}}


class NotRetryable(Exception):
    """A failure that another attempt cannot mend (bad payload, unserialisable output)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.output = {"error": {"type": error_type, "message": message}}


In = TypeVar("In")
Out = TypeVar("Out")


class Together(Generic[In, Out]):
    """Calls of ``many`` with one argument each: those made while a call is on its way
    (or in the same turn of the event loop) go together in the next one."""

    def __init__(self, many: Callable[[list[In]], Awaitable[list[Out]]]) -> None:
        self.many = many
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._calling: asyncio.Task[None] | None = None

    async def __call__(self, arg: In) -> Out:
        answer: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((arg, answer))
        if self._calling is None:
            self._calling = asyncio.create_task(self._call())
        return await answer

    async def _call(self) -> None:
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                try:
                    outs = await self.many([arg for arg, _ in waiting])
                except Exception as exc:
                    for _, answer in waiting:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), out in zip(waiting, outs, strict=True):
                    if not answer.done():
                        answer.set_result(out)
        finally:
            self._calling = None


@dataclass
class Runner:
    store: Store
    worker_name: str
    lease_ms: int
    publish: Publish
    #: What this runner is running now, whose leases are kept alive...
    running: set[WorkItem] = field(default_factory=set)
    #: ...and the concurrency slots they hold.
    slots: set[Held] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._claim = Together(self._claim_many)
        self._finish = Together(self._finish_many)
        self.gate = Gate(self.store, self.lease_ms, self.publish)

    async def _claim_many(self, items: list[WorkItem]) -> list[Claim | None]:
        return await self.store.claim_many(items, actor=self.worker_name, lease_ms=self.lease_ms)

    async def _finish_many(self, results: list[Result]) -> list[list[Emitted] | None]:
        return await self.store.finish_many(results, self.worker_name)

    async def run(self, item: WorkItem, handler: Handler) -> Outcome:
        admission = await self.gate.admit(item, handler)
        if admission.superseded is not None:
            await self._supersede(admission.superseded, by=item)
        if not admission.go:
            outcome: Outcome = "deferred"
        else:
            if admission.held is not None:
                self.slots.add(admission.held)
            try:
                outcome = await self._run_admitted(item, handler)
            finally:
                if admission.held is not None:
                    self.slots.discard(admission.held)
                await self.gate.release(handler, admission)
        metrics.METRICS.inc(metrics.HANDLER_RUNS, item.tx_key, outcome)
        return outcome

    async def _supersede(self, item: WorkItem, *, by: WorkItem) -> None:
        """End a run that a later event of its debounce burst supersedes, without running
        its handler: its output names that event."""
        claim = await self._claim(item)
        if claim is not None:
            await self._end(item, claim, "finished", {"debouncedBy": by.key})
            metrics.METRICS.inc(metrics.HANDLER_RUNS, item.tx_key, "debounced")

    async def _run_admitted(self, item: WorkItem, handler: Handler) -> Outcome:
        claim = await self._claim(item)
        if claim is None:
            return "skipped"
        if claim.attempt == 1:
            waited = (now_ms() - claim.created_at) / 1000
            metrics.METRICS.observe(metrics.EMIT_TO_START_SECONDS, waited, item.tx_key)
        self.running.add(item)
        try:
            return await self._run_claimed(item, handler, claim)
        finally:
            self.running.discard(item)

    async def _run_claimed(self, item: WorkItem, handler: Handler, claim: Claim) -> Outcome:
        if claim.attempt > handler.options.max_retries + 1:
            # Taken over after lapsed leases until no attempt is left: each run killed its
            # worker (out of memory, a crash), so running it again would do the same.
            lost = {
                "type": "WorkerLost",
                "message": f"{claim.attempt - 1} attempts lost their worker",
            }
            return await self._end(item, claim, "failed", {"error": lost})
        running = Running(item.key, self.store.ttl_ms)
        token = _running.set(running)
        try:
            output = await self._call(handler, item, claim)
        except NotRetryable as exc:
            return await self._end(item, claim, "failed", exc.output)
        except Exception as exc:
            if claim.attempt > handler.options.max_retries:
                return await self._end(item, claim, "failed", error_output(exc))
            return await self._retry(item, handler, claim, exc)
        finally:
            _running.reset(token)
        return await self._end(item, claim, "finished", output, running.outbox)

    async def _call(self, handler: Handler, item: WorkItem, claim: Claim) -> Any:
        try:
            payload = handler.validate_payload(claim.payload)
        except ValidationError as exc:
            why = f"the payload does not fit the handler's model: {exc}"
            raise NotRetryable("ValidationError", why) from None
        message = Message(
            payload=payload,
            headers=claim.headers,
            query=claim.query,
            event=_event_info(item, claim),
            tx_key=item.tx_key,
            attempt=claim.attempt,
        )
        started = time.perf_counter()
        try:
            output = await handler.fn(message) if handler.is_async else handler.fn(message)
        finally:
            ran = time.perf_counter() - started
            metrics.METRICS.observe(metrics.HANDLER_SECONDS, ran, item.tx_key)
        try:
            json.dumps(output)
        except (TypeError, ValueError) as exc:
            why = f"the handler returned a value that is not JSON-serialisable: {exc}"
            raise NotRetryable(type(exc).__name__, why) from None
        return output

    async def _retry(
        self, item: WorkItem, handler: Handler, claim: Claim, exc: Exception
    ) -> Outcome:
        delay = backoff_delay(handler, claim.attempt)
        reason = (
            f"attempt {claim.attempt} failed: {type(exc).__name__}: {exc}; retrying in {delay:.1f}s"
        )
        due = now_ms() + int(delay * 1000)
        await self.store.retry_later(
            item, claim, actor=self.worker_name, reason=reason, due=due, lease_ms=self.lease_ms
        )
        return "retrying"

    async def _end(
        self,
        item: WorkItem,
        claim: Claim,
        state: models.EndState,
        output: Any,
        outbox: list[tuple[str, NewEvent]] | None = None,
    ) -> Outcome:
        """Record the result, with the events the handler emitted, then hand those out."""
        emitted = await self._finish(Result(item, claim, state, output, outbox or []))
        if emitted is None:
            # Our lease lapsed and another worker took the run over (or the event expired):
            # its result counts, not ours.
            log.warning("result of %s on %s not recorded: claimed again", item.tx_key, item.key)
            return "skipped"
        self.publish([work for event in emitted for work in event.work(item.scope)])
        return state


def _event_info(item: WorkItem, claim: Claim) -> EventInfo:
    return EventInfo(
        key=item.key,
        id=claim.event_id,
        eventName=claim.event_name,
        platform=claim.platform,
        label=claim.label,
        fullName=models.full_event_name(claim.platform, claim.label, claim.event_name),
        environment=item.env,
        owner=item.owner,
        createdAt=claim.created_at,
    )
