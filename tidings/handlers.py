"""Handlers: the functions users decorate to act on events, and what they receive.

    @handler("user.created", tx_key="send-welcome-email")
    def send_welcome(event: Message[UserCreated]) -> dict:
        ...

Each decorated function subscribes to an event name; every run of it on an event is one
transaction, keyed by its ``tx_key``.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

from tidings import models

P = TypeVar("P")

DEFAULT_QUEUE = "tidings"
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class EventInfo:
    key: str
    id: str
    eventName: str
    platform: str
    label: str
    fullName: str
    environment: str
    owner: str
    createdAt: int


@dataclass(frozen=True)
class Message(Generic[P]):
    """What a handler receives: annotate ``Message[SomeModel]`` to get a validated payload."""

    payload: P
    headers: dict[str, Any]
    query: dict[str, Any]
    event: EventInfo
    tx_key: str
    attempt: int


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    event_name: str
    tx_key: str
    platform: str | None
    label: str | None
    max_retries: int
    backoff: float
    since: int | None
    queue: str
    payload_model: Any = field(default=None)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def subscription(self) -> models.Subscription:
        return models.Subscription(
            txKey=self.tx_key,
            eventName=self.event_name,
            platform=self.platform,
            label=self.label,
            queue=self.queue,
            since=self.since,
        )

    def validate_payload(self, payload: Any) -> Any:
        """The payload as the handler annotated it; raises pydantic's ValidationError."""
        if self.payload_model is None:
            return payload
        return TypeAdapter(self.payload_model).validate_python(payload)


#: Every handler imported so far, by tx_key.
REGISTRY: dict[str, Handler] = {}


def handler(
    event_name: str,
    *,
    tx_key: str | None = None,
    platform: str | None = models.CUSTOM_PLATFORM,
    label: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    since: datetime | int | None = None,
    queue: str = DEFAULT_QUEUE,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Subscribe the decorated function to ``event_name``.

    tx_key: the transaction key; by default the function's module-qualified name.
    platform, label: act only on events from this source (label None: any label).
    max_retries, backoff: retries after an exception, waiting backoff * 2**n seconds
        (with jitter, at most 5 minutes).
    since: also act on events emitted since then, before the handler existed (epoch ms or
        a datetime). By default it acts on every event emitted since any process (a worker,
        `tidings serve`, `tidings subscribe`) first registered it.
    queue: the Celery queue its runs go to (suffixed with the environment).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = tx_key or f"{fn.__module__}.{fn.__qualname__}"
        subscription = models.Subscription(
            txKey=key, eventName=event_name, platform=platform, label=label, queue=queue
        )
        _check_names(subscription)
        existing = REGISTRY.get(key)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"tx_key {key!r} is taken by {existing.fn.__qualname__}")
        REGISTRY[key] = Handler(
            fn=fn,
            event_name=event_name,
            tx_key=key,
            platform=platform,
            label=label,
            max_retries=max_retries,
            backoff=backoff,
            since=_epoch_ms(since),
            queue=queue,
            payload_model=_payload_model(fn),
        )
        return fn

    return decorate


def _check_names(sub: models.Subscription) -> None:
    """Names follow the same rules as the API's, so that a handler can match an event."""
    names = TypeAdapter(models.Name)
    names.validate_python(sub.eventName)
    names.validate_python(sub.txKey)
    for part in (sub.platform, sub.label):
        if part is not None:
            TypeAdapter(models.Part).validate_python(part)


def _epoch_ms(since: datetime | int | None) -> int | None:
    if isinstance(since, datetime):
        return int(since.timestamp() * 1000)
    return since


def _payload_model(fn: Callable[..., Any]) -> Any:
    """P of a first parameter annotated ``Message[P]``, when P is a pydantic model (or any
    type pydantic validates); None when the handler takes the payload as it comes."""
    params = list(inspect.signature(fn).parameters)
    if not params:
        raise TypeError(f"handler {fn.__qualname__} must take one argument, the event")
    annotation = get_type_hints(fn).get(params[0])
    if get_origin(annotation) is Message:
        (payload_type,) = get_args(annotation)
        if payload_type is not Any:
            return payload_type
    return None


def discover(modules: Iterable[str]) -> list[Handler]:
    """Import the named modules and, for a package, every module under it (as Celery's
    autodiscovery does), so that a new module in a handlers package needs no import in its
    ``__init__``; answers every handler known afterwards. An import error propagates."""
    for name in modules:
        module = importlib.import_module(name)
        path = getattr(module, "__path__", None)
        if path is not None:
            for found in pkgutil.walk_packages(path, prefix=f"{module.__name__}."):
                importlib.import_module(found.name)
    return list(REGISTRY.values())


def subscriptions(owners: list[str] | None) -> list[models.Subscription]:
    """The subscriptions of every known handler, acting on these owners' events (None: all)."""
    return [h.subscription.model_copy(update={"owners": owners}) for h in REGISTRY.values()]
