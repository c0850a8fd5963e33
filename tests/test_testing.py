"""tidings.testing.run_handler: a handler run without a broker, recorded as a worker would."""

from typing import Any

import pytest
from pydantic import BaseModel

from tidings import Message, handler
from tidings.settings import Settings
from tidings.testing import run_handler

attempts: list[int] = []


class Signup(BaseModel):
    email: str


@handler("testing.signup", tx_key="testing-welcome")
def welcome(event: Message[Signup]) -> dict[str, str]:
    return {"to": event.payload.email}


@handler("testing.flaky", tx_key="testing-flaky", max_retries=2, backoff=60)
def flaky(event: Message[Any]) -> int:
    attempts.append(event.attempt)
    if event.attempt < 3:
        raise RuntimeError(f"attempt {event.attempt}")
    return event.attempt


def test_a_handler_runs_and_its_transaction_is_recorded(settings: Settings) -> None:
    tx = run_handler(welcome, {"email": "ada@example.com"}, redis_url=settings.store_url)
    assert (tx.state, tx.output, tx.txKey) == (
        "finished",
        {"to": "ada@example.com"},
        "testing-welcome",
    )
    assert [h.enterState for h in tx.history] == ["processing", "finished"]


def test_retries_run_at_once_and_are_recorded(settings: Settings) -> None:
    attempts.clear()
    tx = run_handler(flaky, redis_url=settings.store_url)
    assert attempts == [1, 2, 3]
    assert (tx.state, tx.output, tx.attempts) == ("finished", 3, 3)
    assert sum("attempt 2 failed: RuntimeError" in (h.reason or "") for h in tx.history) == 1


def test_a_payload_that_does_not_fit_fails_the_transaction(settings: Settings) -> None:
    tx = run_handler(welcome, {"mail": "typo"}, redis_url=settings.store_url)
    assert tx.state == "failed"
    assert tx.output["error"]["type"] == "ValidationError"


def test_only_decorated_functions_can_be_run(settings: Settings) -> None:
    with pytest.raises(ValueError, match="not decorated"):
        run_handler(lambda event: None, redis_url=settings.store_url)
