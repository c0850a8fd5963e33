"""Handlers: the functions users decorate to act on events, and what they receive.

    @handler("user.created", tx_key="send-welcome-email")
    def send_welcome(event: Message[UserCreated]) -> dict:
        ...

Each decorated function subscribes to an event name; every run of it on an event is one
transaction, keyed by its ``tx_key``.
"""

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from pydantic import BaseModel, TypeAdapter, ValidationError

from tidings import models

P = TypeVar("P")

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


class Tick(BaseModel):
    """The payload of a schedule's tick: annotate ``Message[Tick]``."""

    #: When the tick was due (epoch ms).
    tick: int
    schedule: str
    timezone: str


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    options: models.HandlerOptions
    payload_model: Any = field(default=None)

    @property
    def tx_key(self) -> str:
        return self.options.tx_key

    @property
    def event_name(self) -> str:
        return self.options.event_name

    @property
    def queue(self) -> str:
        return self.options.queue

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def subscription(self) -> models.Subscription:
        o = self.options
        return models.Subscription(
            txKey=o.tx_key,
            eventName=o.event_name,
            platform=o.platform,
            label=o.label,
            queue=o.queue,
            since=o.since,
            options=o,
        )

    def validate_payload(self, payload: Any) -> Any:
        """The payload as the handler annotated it; raises pydantic's ValidationError."""
        if self._payload_adapter is None:
            return payload
        return self._payload_adapter.validate_python(payload)

    @functools.cached_property
    def _payload_adapter(self) -> TypeAdapter[Any] | None:
        """Built once: building one takes longer than most validations."""
        return None if self.payload_model is None else TypeAdapter(self.payload_model)


#: Every handler imported so far, by tx_key.
REGISTRY: dict[str, Handler] = {}


def handler(
    event_name: str,
    *,
    tx_key: str | None = None,
    since: datetime | int | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Subscribe the decorated function to ``event_name``.

    tx_key: the transaction key; by default the function's module-qualified name.
    since: also act on events emitted since then, before the handler existed (epoch ms or
        a datetime). By default it acts on every event emitted since any process (a worker,
        `tidings serve`, `tidings subscribe`) first registered it.
    options: the rest of ``tidings.models.HandlerOptions``, by their Python names
        (platform, label, queue, max_retries, backoff, concurrency, concurrency_key, rate,
        rate_key, debounce, debounce_key, debounce_max, schedule, timezone, missed_ticks).
        An option that cannot work (an unknown one, a rate of zero, a key path the payload
        model does not have, a bad cron expression) raises ValueError here, when the module
        is imported.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = tx_key or f"{fn.__module__}.{fn.__qualname__}"
        try:
            checked = models.HandlerOptions(
                tx_key=key, event_name=event_name, since=_epoch_ms(since), **options
            )
        except ValidationError as exc:
            raise ValueError(f"@handler of {fn.__qualname__}: {exc}") from None
        payload_model = _payload_model(fn)
        for option, path in checked.key_paths.items():
            _check_path(fn, payload_model, option, path)
        existing = REGISTRY.get(key)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"tx_key {key!r} is taken by {existing.fn.__qualname__}")
        _check_one_schedule(fn, checked)
        REGISTRY[key] = Handler(fn=fn, options=checked, payload_model=payload_model)
        return fn

    return decorate


def _check_one_schedule(fn: Callable[..., Any], options: models.HandlerOptions) -> None:
    """The ticks of an event name come from one schedule."""
    if options.schedule is None:
        return
    timing = (options.schedule, options.timezone, options.missed_ticks)
    for other in REGISTRY.values():
        o = other.options
        same_event = o.event_name == options.event_name and o.tx_key != options.tx_key
        if (
            same_event
            and o.schedule is not None
            and (o.schedule, o.timezone, o.missed_ticks) != timing
        ):
            raise ValueError(
                f"@handler of {fn.__qualname__}: {options.event_name!r} ticks on another "
                f"schedule already ({o.tx_key}): give this schedule an event name of its own"
            )


def _check_path(fn: Callable[..., Any], payload_model: Any, option: str, path: str) -> None:
    """A key path names fields the payload model has, as far as the model tells (a dict or
    Any field may hold anything)."""
    model = payload_model
    for part in path.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        found = fields.get(part)
        if found is None:
            raise ValueError(
                f"@handler of {fn.__qualname__}: {option} {path!r}: {model.__name__} has no "
                f"field {part!r} (it has {', '.join(sorted(fields)) or 'none'})"
            )
        model = _model_in(found.annotation)


def _model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (``Customer``, ``Customer | None``), if any."""
    if isinstance(annotation, type):
        return annotation
    models_in = [a for a in get_args(annotation) if isinstance(a, type) and a is not type(None)]
    return models_in[0] if len(models_in) == 1 else None


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
