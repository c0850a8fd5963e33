"""What travels between the API, the store and the workers: scopes, events to store, work
items, the claims workers hold and the results they record. Plain values; the store keeps
them in Redis."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tidings import models
from tidings.clock import now_ms


@dataclass(frozen=True)
class Scope:
    """The events of one owner in one environment; nothing reaches outside its scope."""

    owner: str
    env: str


@dataclass(frozen=True)
class WorkItem:
    """One transaction for a worker to run: a handler (txKey) on an event.

    ``attempt`` 0 claims it afresh; a higher one continues it (a retry, a re-run).
    """

    owner: str
    env: str
    key: str
    tx_key: str
    attempt: int = 0

    @property
    def row(self) -> list[str | int]:
        """As a broker message carries it."""
        return [self.owner, self.env, self.key, self.tx_key, self.attempt]

    @property
    def scope(self) -> Scope:
        return Scope(self.owner, self.env)


@dataclass(frozen=True)
class NewEvent:
    """An event to store: what /emit takes, and what an inbound request brings with it."""

    event: str
    payload: Any = None
    headers: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    #: An event already stored with the same key (within its time) stands for this one,
    #: which is then not stored: a repeated delivery, a retried request.
    idempotency_key: str | None = None
    #: When its handlers start (epoch ms); None: at once.
    deliver_at: int | None = None

    @classmethod
    def of(
        cls, event: "models.EmitRequest | NewEvent", idempotency_key: str | None = None
    ) -> "NewEvent":
        """An event to store, from what /emit took (or as it is)."""
        if isinstance(event, NewEvent):
            return event
        return cls(
            event.event,
            event.payload,
            idempotency_key=idempotency_key,
            deliver_at=deliver_at(event),
        )


def deliver_at(event: models.EmitRequest) -> int | None:
    """When an emitted event's handlers start: its deliverAt, or its delay from now."""
    return now_ms() + event.delay if event.delay is not None else event.deliverAt


@dataclass(frozen=True)
class Emitted:
    """A stored event: its key, and the handlers subscribed to it when it was stored."""

    key: str
    #: (txKey, queue) of each handler subscribed to the event when it was stored.
    routes: list[tuple[str, str]]
    #: Not stored: ``key`` is the event stored earlier with the same idempotency key.
    duplicate: bool = False
    #: Its handlers start later, when it comes due (tidings/store/due.py).
    delayed: bool = False
    #: Its transactions went to the workers as it was stored (the emit script pushed them).
    published: bool = False

    def work(self, scope: Scope) -> list[tuple["WorkItem", str]]:
        """Its transactions to hand out now, with their queues: none if it waits for its
        time, was stored before, or its transactions went out with it."""
        if self.delayed or self.published:
            return []
        return [
            (WorkItem(scope.owner, scope.env, self.key, tx), queue) for tx, queue in self.routes
        ]


#: Broker messages carrying work items: (queue, message as the broker keeps it) each.
Messages = Callable[[list[tuple[WorkItem, str]]], list[tuple[str, bytes]]]


@dataclass(frozen=True)
class Claim:
    """A worker's claim: the attempt it runs and the event's input. Its token is what the
    worker's result must show to count."""

    token: str
    attempt: int
    payload: Any
    headers: Any
    query: Any
    created_at: int
    event_id: str
    event_name: str
    platform: str
    label: str


@dataclass(frozen=True)
class Result:
    """What a worker's run of a claimed transaction ended with, for the store to record."""

    item: WorkItem
    claim: Claim
    state: str
    output: Any
    #: The events its handler emitted, with their keys: stored with the result.
    follow_ups: list[tuple[str, NewEvent]]
