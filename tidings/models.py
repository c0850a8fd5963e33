"""The record and request shapes: one definition each, used by the API, store, worker and client.

Field names follow the Event API contract exactly (camelCase, ``_id``).
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from tidings import schedules

CUSTOM_PLATFORM = "custom"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10

TxState = Literal["processing", "finished", "failed"]
EndState = Literal["finished", "failed"]
Environment = Literal["test", "live"]

#: Unicode's White_Space characters, spelled out: "\s" means other sets in Python's, Rust's
#: (pydantic's) and JSON Schema's regular expressions.
WHITE_SPACE = r"\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Event names and txKeys: no white space, and no "|" (it separates names in Redis keys).
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=rf"^[^|{WHITE_SPACE}]+$")
]
#: Platforms, labels (secret key names) and owners: they are dot-separated parts of a full name.
Part = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
]
EventKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: The longest idempotency key /emit takes...
MAX_IDEMPOTENCY_KEY = 255
#: ...and how long it stands for the event first emitted with it.
IDEMPOTENCY_SECONDS = 24 * 3600
#: What a client names an emit by, so that sending it again stores nothing new: printable
#: ASCII without spaces, as the IETF's Idempotency-Key header draft suggests (a UUID fits).
IdempotencyKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=r"^[!-~]+$"),
]


def _blank_is_none(value: Any) -> Any:
    """The original clients send "" for filters they do not use."""
    return None if value == "" else value


def _integral_number_is_int(value: Any) -> Any:
    """JSON has one kind of number: 2.0 is the integer 2, as JSON Schema reads it too."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Integers in requests may come as 2 or 2.0. (Constraints go before the validator, or the
#: JSON schema spells them wrong.)
AsInt = BeforeValidator(_integral_number_is_int)
Ms = Annotated[int, Field(ge=0), AsInt]


def full_event_name(platform: str, label: str, event_name: str) -> str:
    return f"{platform}.{label}.{event_name}"


class Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class HistoryEntry(Record):
    enterState: str
    exitState: str | None
    timestamp: int
    updatedBy: str
    # Beyond the original: why a worker wrote it (a retry, a lapsed lease, an error).
    reason: str | None = Field(default=None, exclude_if=lambda reason: reason is None)


class Ownership(Record):
    buildableId: str
    userId: str
    clientId: str


class Processing(Record):
    hasTransactions: bool
    totalTransactions: int
    hasFutureTransactions: bool
    isCompleted: bool


class Event(Record):
    id: str = Field(alias="_id")
    key: str
    eventName: str
    environment: str
    payload: Any
    query: Any
    headers: Any
    createdAt: int
    state: str
    history: list[HistoryEntry]
    ttl: int
    v: int
    ownership: Ownership
    processing: Processing
    # Beyond the original: the parts of the full name, spelled out...
    platform: str
    label: str
    fullName: str
    # ...and, for a delayed event, when its handlers start (epoch ms).
    deliverAt: int | None = Field(default=None, exclude_if=lambda due: due is None)


class EventRef(Record):
    id: str = Field(alias="_id")
    eventName: str


class Transaction(Record):
    id: str = Field(alias="_id")
    key: str
    txn: str
    event: EventRef
    createdAt: int
    ttl: int
    state: TxState
    history: list[HistoryEntry]
    startedAt: int
    txKey: str
    endedAt: int | None
    # Beyond the original.
    output: Any = None
    attempts: int = 1
    v: int = 1


class EventWithTransactions(Event):
    transactions: list[Transaction]


class QueryPage(Record):
    rows: list[Event]
    total: int
    page: int
    pageSize: int
    totalPages: int


class EmitResult(Record):
    status: Literal["success"] = "success"
    key: str


class BatchEmitResult(Record):
    status: Literal["success"] = "success"
    keys: list[str]


class FullName(Record):
    fullName: str


# Requests. Strict: a field of the wrong type is an error, never silently converted.


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class EmitRequest(Request):
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["delay", "deliverAt"]}})

    event: Name
    payload: Any = Field(default_factory=dict)
    #: Beyond the original: the event is stored at once and its handlers start this many
    #: milliseconds later...
    delay: Ms | None = None
    #: ...or at this time (epoch ms; one in the past is due at once).
    deliverAt: Ms | None = None

    @model_validator(mode="after")
    def _one_due_time(self) -> "EmitRequest":
        if self.delay is not None and self.deliverAt is not None:
            raise ValueError("give delay or deliverAt, not both")
        return self


class BatchEvent(EmitRequest):
    #: As /emit's Idempotency-Key header: an event sent again with the same key within
    #: IDEMPOTENCY_SECONDS is not stored again; its key answers the first event's.
    idempotencyKey: IdempotencyKey | None = None


class BatchEmitRequest(Request):
    events: list[BatchEvent] = Field(min_length=1, max_length=MAX_PAGE_SIZE)


def _blank_or(kind: Any) -> BeforeValidator:
    """A filter that may be left out, null or "" (read as null), as its schema says."""
    return BeforeValidator(_blank_is_none, json_schema_input_type=kind | Literal[""] | None)


OptionalName = Annotated[Name | None, _blank_or(Name)]
OptionalPart = Annotated[Part | None, _blank_or(Part)]
#: Epoch milliseconds.
OptionalMs = Annotated[Ms | None, _blank_or(Ms)]
QueryTxState = TxState | Literal["does-not-exist"]


#: txState filters on a txKey: with a txState, a txKey is needed too (else the answer is 400).
TX_STATE_NEEDS_TX_KEY: JsonDict = {
    "if": {"required": ["txState"], "properties": {"txState": {"type": "string", "minLength": 1}}},
    "then": {"required": ["txKey"], "properties": {"txKey": {"type": "string", "minLength": 1}}},
}


class QueryRequest(Request):
    model_config = ConfigDict(json_schema_extra=TX_STATE_NEEDS_TX_KEY)

    eventName: OptionalName = None
    platform: OptionalPart = None
    label: OptionalPart = None
    txKey: OptionalName = None
    txState: Annotated[QueryTxState | None, _blank_or(QueryTxState)] = None
    since: OptionalMs = None
    # Beyond the original: events created before `until` (ms), and newest first.
    until: OptionalMs = None
    newestFirst: bool = False
    page: Annotated[int, Field(ge=1), AsInt] = 1
    pageSize: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), AsInt] = DEFAULT_PAGE_SIZE


class InitRequest(Request):
    key: EventKey
    txKey: Name


class TransactRequest(Request):
    key: EventKey
    txKey: Name
    output: Any = None
    state: EndState


class UpdateRequest(Request):
    key: EventKey
    eventName: Name
    txKey: Name
    txState: TxState


class FullNameRequest(Request):
    eventName: Name
    platform: OptionalPart = None
    label: OptionalPart = None


#: A rate's units, in seconds.
RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_QUEUE = "tidings"
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 1.0
#: What a scheduled handler does about ticks that passed while no worker ran: run the
#: latest of them once, or skip them all.
MissedTicks = Literal["run-last", "skip"]
#: The platform and label of the events a schedule emits at each tick.
SCHEDULE_PLATFORM = "schedule"
SCHEDULE_LABEL = "cron"


def _check_rate(rate: str) -> str:
    count, _, unit = rate.partition("/")
    if not count.isdigit() or unit not in RATE_UNITS:
        raise ValueError(f"rate {rate!r}: write runs per unit, such as '10/s', '100/m', '1000/h'")
    if int(count) == 0:
        raise ValueError(f"rate {rate!r}: at least one run per {unit}, or no rate at all")
    return rate


#: Runs per unit of time: "10/s", "100/m", "1000/h", "5/d".
Rate = Annotated[str, AfterValidator(_check_rate)]
#: A dotted path into an event's payload ("customer.id"), whose value keys a limit.
KeyPath = Annotated[
    str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
]


def rate_interval_ms(rate: str) -> float:
    """The time between two runs at a rate, in ms."""
    count, _, unit = rate.partition("/")
    return RATE_UNITS[unit] * 1000 / int(count)


class HandlerOptions(Record):
    """Every option of ``@handler``, checked when the handler is decorated, and shown by
    /handlers. JSON names are camelCase (``maxRetries``); Python's are snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)

    tx_key: Name
    event_name: Name
    #: Act only on events from this source (label None: any label).
    platform: Part | None = CUSTOM_PLATFORM
    label: Part | None = None
    #: The Celery queue of its runs (suffixed with the environment).
    queue: Name = DEFAULT_QUEUE
    #: Epoch ms: also act on events emitted since then, before it existed (a backfill).
    since: int | None = None
    #: Retries after an exception, waiting backoff * 2**n seconds (with jitter).
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    backoff: float = Field(default=DEFAULT_BACKOFF_SECONDS, gt=0)
    #: At most this many runs at once across all workers (per value of concurrency_key).
    concurrency: int | None = Field(default=None, ge=1)
    concurrency_key: KeyPath | None = None
    #: At most so many runs started per unit of time across all workers, spread evenly
    #: (per value of rate_key).
    rate: Rate | None = None
    rate_key: KeyPath | None = None
    #: A burst of events (per value of debounce_key) yields one run, on its last event,
    #: once none has come for this many seconds, or debounce_max seconds after its first.
    debounce: float | None = Field(default=None, gt=0)
    debounce_key: KeyPath | None = None
    debounce_max: float | None = Field(default=None, gt=0)
    #: A cron expression: at each of its ticks (in `timezone`) the event `event_name` is
    #: emitted, from platform "schedule", and the handler acts on it.
    schedule: str | None = None
    timezone: str = "UTC"
    missed_ticks: MissedTicks = "run-last"

    @model_validator(mode="before")
    @classmethod
    def _ticks_come_from_the_schedule(cls, data: Any) -> Any:
        """A scheduled handler acts on its ticks, which come from the platform "schedule"."""
        if isinstance(data, dict) and data.get("schedule") is not None and "platform" not in data:
            return {**data, "platform": SCHEDULE_PLATFORM}
        return data

    @model_validator(mode="after")
    def _options_go_together(self) -> "HandlerOptions":
        for option, needs in (
            ("concurrency_key", "concurrency"),
            ("rate_key", "rate"),
            ("debounce_key", "debounce"),
            ("debounce_max", "debounce"),
            ("timezone", "schedule"),
            ("missed_ticks", "schedule"),
        ):
            given = getattr(self, option) != type(self).model_fields[option].default
            if given and getattr(self, needs) is None:
                raise ValueError(f"{option} goes with {needs}: give {needs} too")
        if self.debounce_max is not None and self.debounce_max < (self.debounce or 0):
            raise ValueError("debounce_max is the longest a burst waits: at least debounce")
        if self.schedule is not None:
            if self.platform != SCHEDULE_PLATFORM:
                raise ValueError(
                    f"a schedule's ticks come from platform {SCHEDULE_PLATFORM!r}: leave "
                    "platform out"
                )
            schedules.check(self.schedule, self.timezone)
        else:
            schedules.zone(self.timezone)
        return self

    @property
    def key_paths(self) -> dict[str, str]:
        """The payload paths the options name, by option."""
        paths = {
            "concurrency_key": self.concurrency_key,
            "rate_key": self.rate_key,
            "debounce_key": self.debounce_key,
        }
        return {option: path for option, path in paths.items() if path is not None}

    def summary(self) -> list[str]:
        """The options that shape its runs, in words (the dashboard's handlers page)."""
        said = [f"{self.max_retries} retries, backoff {self.backoff:g} s"]
        if self.concurrency is not None:
            per = f" per {self.concurrency_key}" if self.concurrency_key else ""
            said.append(f"at most {self.concurrency} at once{per}")
        if self.rate is not None:
            per = f" per {self.rate_key}" if self.rate_key else ""
            said.append(f"rate {self.rate}{per}")
        if self.debounce is not None:
            per = f" per {self.debounce_key}" if self.debounce_key else ""
            most = f", at most {self.debounce_max:g} s" if self.debounce_max else ""
            said.append(f"debounce {self.debounce:g} s{per}{most}")
        if self.schedule is not None:
            said.append(
                f"on {self.schedule} ({schedules.explain(self.schedule)}, {self.timezone}); "
                f"missed ticks: {self.missed_ticks}"
            )
        return said


class Subscription(Record):
    """A handler's subscription, as workers register it in Redis for the API to see."""

    txKey: str
    eventName: str
    platform: str | None = CUSTOM_PLATFORM
    label: str | None = None
    queue: str
    #: Epoch ms: the handler also acts on events emitted since then (a backfill). None:
    #: since any process first registered it (tidings:subscribed-at).
    since: int | None = None
    #: Only these owners' events (None: every owner's).
    owners: list[str] | None = None
    #: Every option of the handler (None: registered by a tidings before they were kept).
    options: HandlerOptions | None = None

    def routing(self) -> str:
        """What decides which events it acts on, as JSON: its options aside."""
        return self.model_dump_json(exclude={"options"})

    def serves(self, owner: str) -> bool:
        return self.owners is None or owner in self.owners


#: A worker that has missed this many heartbeats in a row counts as gone...
WORKER_GONE_AFTER_HEARTBEATS = 3
#: ...and one not seen for this long is forgotten.
WORKER_FORGOTTEN_AFTER_SECONDS = 3600


class QueueReceipts(Record):
    """What a worker last took off one of its queues (epoch ms)."""

    #: Any message: a canary or work.
    receivedAt: int | None = None
    #: The last canary: when a worker sent it, and when this one received it.
    canarySentAt: int | None = None
    canaryReceivedAt: int | None = None


class WorkerBeat(Record):
    """A worker's heartbeat, as it records itself in Redis every few seconds."""

    name: str
    startedAt: int
    lastSeen: int
    #: How often it heartbeats (ms): after a few missed, it counts as gone.
    heartbeatMs: int
    environments: list[str]
    owners: list[str] | None
    #: The txKeys of the handlers it runs.
    handlers: list[str]
    #: Every broker queue it consumes (its own direct queue too), with what it took off it.
    queues: dict[str, QueueReceipts]
    #: The queue only it consumes, where its own canaries go.
    directQueue: str

    def live(self, now: int) -> bool:
        return now - self.lastSeen <= WORKER_GONE_AFTER_HEARTBEATS * self.heartbeatMs

    def runs(self, tx_key: str, env: str, owner: str) -> bool:
        return (
            tx_key in self.handlers
            and env in self.environments
            and (self.owners is None or owner in self.owners)
        )


class WorkerSeen(Record):
    name: str
    lastSeen: int


class HandlerCounts(Record):
    processing: int
    finished: int
    failed: int
    #: Events it subscribes to that have no transaction of it yet.
    waiting: int
    #: Runs held back by its concurrency limit until a slot frees, and runs booked by its
    #: rate limit to start later (first attempts among them count in `waiting` too).
    waitingForSlot: int
    waitingForRate: int


#: The most limits a handler view lists in heldBack (its counts have them all).
MAX_HELD_BACK = 20


class HeldBack(Record):
    """Runs of a handler that one of its limits holds back: the limit of one value of its
    key path."""

    reason: Literal["concurrency", "rate"]
    #: The JSON of the value at the limit's key path ("null": none there, or no key path).
    keyValue: str
    #: concurrency: runs waiting for a slot; rate: runs booked to start later.
    runs: int
    #: concurrency: when the run waiting longest began to wait (epoch ms).
    waitingSince: int | None = None
    #: rate: when the next booked run may start (epoch ms, on Redis's clock).
    nextStartAt: int | None = None


class HandlerView(Subscription):
    """A subscribed handler as one owner and environment see it."""

    subscribedAt: int
    #: Live workers that run it here (seen within a few heartbeats).
    workers: list[WorkerSeen]
    #: Workers that ran it here but have missed a few heartbeats (forgotten after an hour).
    goneWorkers: list[WorkerSeen]
    #: False while no live worker runs it: its waiting events wait for one to start.
    served: bool
    counts: HandlerCounts
    #: The oldest event that waits for it and is due (a delayed one waits for its time).
    oldestWaiting: Event | None
    #: The limits holding its runs back, most runs first (at most MAX_HELD_BACK).
    heldBack: list[HeldBack]


class QueueWorker(Record):
    """A live worker that consumes a queue, and what it last took off it."""

    name: str
    lastSeenSeconds: float
    #: Since it last received anything from the queue (a canary or work).
    lastReceivedSeconds: float | None
    #: Since it last received a canary from the queue, and that canary's trip (sent to
    #: received).
    canaryAgeSeconds: float | None
    canaryRoundTripMs: int | None


class QueueHealth(Record):
    """One queue of one environment: who consumes it and how far behind it is."""

    queue: str
    environment: str
    brokerQueue: str
    #: The txKeys of the handlers subscribed on it.
    handlers: list[str]
    #: Those of its handlers that no live worker consuming it runs.
    handlersWithoutWorker: list[str]
    workers: list[QueueWorker]
    #: A live worker took something off it within TIDINGS_CANARY_TIMEOUT_SECONDS.
    served: bool
    #: How long the oldest event still waiting for one of its handlers to claim it has been
    #: due (since it was emitted, or since its deliverAt).
    oldestWaitingSeconds: float | None


class Health(Record):
    status: Literal["ok", "error"]
    redis: Literal["ok", "down"]
    message: str | None = Field(default=None, exclude_if=lambda message: message is None)
    queues: list[QueueHealth] = Field(default_factory=list)


class RerunRequest(Request):
    txKey: Name


#: The most transactions one bulk re-run hands out.
MAX_RERUN = 10_000


class RerunFailedRequest(Request):
    """Re-run every failed transaction of a handler among the events of a filter."""

    txKey: Name
    eventName: OptionalName = None
    platform: OptionalPart = None
    label: OptionalPart = None
    since: OptionalMs = None
    until: OptionalMs = None


#: A (key, txKey) pair, described without prefixItems, which schema-driven tools read
#: differently from OpenAPI 3.1.
KeyAndTxKey = Annotated[
    tuple[str, str],
    WithJsonSchema({"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}),
]


class Rerun(Record):
    status: Literal["success"] = "success"
    #: The (key, txKey) of every transaction handed to the workers again.
    rerun: list[KeyAndTxKey]


class SecretKey(Record):
    """A secret key as the operator sees it; the secret itself is shown only at creation."""

    name: Part
    env: Environment
    owner: Part
    createdAt: int
    revokedAt: int | None = None
    secret: str | None = None


class CreateKeyRequest(Request):
    name: Part
    env: Environment
    owner: Part = "default"


class ErrorBody(BaseModel):
    """The body of every error answer; some carry more fields (/health: "redis")."""

    model_config = ConfigDict(extra="allow")

    status: Literal["error"]
    message: str
