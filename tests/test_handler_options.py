"""A handler's options are one model (tidings.models.HandlerOptions): checked when the
handler is decorated, registered with its subscription, shown by /handlers and the
dashboard."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from test_ui import run, sign_in

from tidings import Message, handler
from tidings.handlers import REGISTRY
from tidings.models import HandlerOptions


class Customer(BaseModel):
    id: str
    country: str = "DE"


class Order(BaseModel):
    id: int
    customer: Customer
    extra: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """Handlers decorated here leave the registry as they found it."""
    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)


def decorate(
    fn: Callable[..., Any] | None = None, tx_key: str = "options-test", **options: Any
) -> None:
    def typed(event: Message[Order]) -> None: ...

    handler("order.paid", tx_key=tx_key, **options)(fn or typed)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"retries": 3}, "retries"),  # a misspelt option is no option
        ({"rate": "0/s"}, "at least one run per s"),
        ({"rate": "10/x"}, "runs per unit"),
        ({"rate": "ten/s"}, "runs per unit"),
        ({"concurrency": 0}, "greater than or equal to 1"),
        ({"max_retries": -1}, "greater than or equal to 0"),
        ({"backoff": 0}, "greater than 0"),
        ({"concurrency_key": "customer.id"}, "concurrency_key goes with concurrency"),
        ({"rate_key": "customer.id"}, "rate_key goes with rate"),
        ({"timezone": "Europe/Paris"}, "timezone goes with schedule"),
        ({"concurrency": 1, "concurrency_key": "customer..id"}, "pattern"),
        ({"concurrency": 1, "concurrency_key": "customer.idd"}, "Customer has no field 'idd'"),
        ({"rate": "5/m", "rate_key": "buyer"}, "Order has no field 'buyer'"),
        ({"schedule": "61 * * * *"}, "bad cron expression"),
        ({"schedule": "* * *"}, "bad cron expression"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"missed_ticks": "all", "schedule": "0 9 * * *"}, "run-last"),
        ({"platform": "no.dots"}, "pattern"),
        ({"schedule": "0 9 * * *", "platform": "custom"}, "leave platform out"),
    ],
)
def test_an_option_that_cannot_work_is_refused_when_the_handler_is_decorated(
    options: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValueError, match="@handler of") as refused:
        decorate(**options)
    assert said in str(refused.value)
    assert "options-test" not in REGISTRY


def test_key_paths_are_checked_as_far_as_the_payload_model_tells() -> None:
    decorate(concurrency=1, concurrency_key="customer.id", rate="10/s", rate_key="extra.a.b")
    options = REGISTRY["options-test"].options
    assert options.key_paths == {"concurrency_key": "customer.id", "rate_key": "extra.a.b"}

    def untyped(event: Message[Any]) -> None: ...

    decorate(untyped, tx_key="options-untyped", concurrency=2, concurrency_key="any.path")
    assert REGISTRY["options-untyped"].options.concurrency_key == "any.path"


def test_options_are_one_model_with_camel_case_json() -> None:
    decorate(max_retries=5, rate="100/m", schedule="0 9 * * 1-5", timezone="Europe/Paris")
    options = REGISTRY["options-test"].options
    assert isinstance(options, HandlerOptions)
    dumped = options.model_dump()
    assert dumped["txKey"] == "options-test" and dumped["maxRetries"] == 5
    assert dumped["missedTicks"] == "run-last" and dumped["rate"] == "100/m"
    assert HandlerOptions.model_validate(dumped) == options


def test_handlers_and_the_dashboard_show_every_option(
    api: TestClient, headers: dict[str, str], redis_url: str
) -> None:
    decorate(
        concurrency=2,
        concurrency_key="customer.id",
        rate="10/s",
        debounce=5,
        debounce_key="customer.id",
        debounce_max=60,
        schedule="*/5 * * * *",
    )
    subscription = REGISTRY["options-test"].subscription
    run(lambda store: store.subscribe([subscription], ["test"]), redis_url)

    [shown] = api.get("/handlers", headers=headers).json()
    assert shown["options"] == {
        "txKey": "options-test",
        "eventName": "order.paid",
        "platform": "schedule",  # a scheduled handler acts on its ticks
        "label": None,
        "queue": "tidings",
        "since": None,
        "maxRetries": 3,
        "backoff": 1.0,
        "concurrency": 2,
        "concurrencyKey": "customer.id",
        "rate": "10/s",
        "rateKey": None,
        "debounce": 5.0,
        "debounceKey": "customer.id",
        "debounceMax": 60.0,
        "schedule": "*/5 * * * *",
        "timezone": "UTC",
        "missedTicks": "run-last",
    }
    sign_in(api, headers["X-Buildable-Secret"])
    row = api.get("/ui/handlers").text.split('data-tx-key="options-test"')[1].split("</tr>")[0]
    for said in (
        "3 retries",
        "at most 2 at once per customer.id",
        "rate 10/s",
        "debounce 5 s per customer.id, at most 60 s",
        "*/5 * * * *",
    ):
        assert said in row


def test_a_change_of_options_alone_needs_no_backfill(redis_url: str, redis_client: Any) -> None:
    decorate(rate="10/s")
    first = REGISTRY["options-test"].subscription
    decorate(rate="20/s")
    changed = REGISTRY["options-test"].subscription
    assert first.routing() == changed.routing() and first != changed
    run(lambda store: store.subscribe([first], ["test"]), redis_url)
    assert run(lambda store: store.subscribe([changed], ["test"]), redis_url) == []


def test_a_schedule_ticks_from_the_platform_schedule_and_owns_its_event_name() -> None:
    decorate(schedule="0 9 * * *")
    assert REGISTRY["options-test"].subscription.platform == "schedule"
    decorate(tx_key="same-ticks", schedule="0 9 * * *")  # another handler of the same ticks
    with pytest.raises(ValueError, match="ticks on another schedule already"):
        decorate(tx_key="other-ticks", schedule="0 10 * * *")
