"""A Python client for the Event API; every method raises ``TidingsError`` on an error answer."""

import time
from collections.abc import Iterator
from typing import Any

import httpx

from tidings import models
from tidings.errors import TidingsError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: How long `Client.wait` waits by default, in seconds.
DEFAULT_WAIT_SECONDS = 30.0
#: `Client.wait` asks again after this many seconds, doubling up to the longest.
FIRST_POLL_SECONDS = 0.05
LONGEST_POLL_SECONDS = 1.0


class Client:
    """Talks to a tidings server (or the original Event API) with one secret key."""

    def __init__(
        self,
        secret: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"X-Buildable-Secret": secret},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        answer = self._http.request(method, path, json=body, headers=headers)
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.is_error:
            message = data.get("message") if isinstance(data, dict) else None
            raise TidingsError(message or answer.text or answer.reason_phrase, answer.status_code)
        return data

    def emit(
        self,
        event: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        delay: int | None = None,
        deliver_at: int | None = None,
    ) -> str:
        """Emit an event; answers its key. Emitting again with the same ``idempotency_key``
        within 24 hours (a retry after a timeout, say) stores nothing new and answers the
        first event's key. With ``delay`` (ms) or ``deliver_at`` (epoch ms) the event is
        stored now and its handlers start then."""
        body: dict[str, Any] = {"event": event, "payload": {} if payload is None else payload}
        if delay is not None:
            body["delay"] = delay
        if deliver_at is not None:
            body["deliverAt"] = deliver_at
        headers = None if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        return str(self._call("POST", "/emit", body, headers)["key"])

    def emit_batch(
        self, events: list[tuple[str, Any]], *, idempotency_keys: list[str | None] | None = None
    ) -> list[str]:
        """Emit (name, payload) pairs all or nothing; answers their keys in order. The
        idempotency keys, if given, go with the events in order (None: that event has none),
        as ``emit``'s."""
        body_events = [{"event": name, "payload": payload} for name, payload in events]
        if idempotency_keys is not None:
            for event, key in zip(body_events, idempotency_keys, strict=True):
                if key is not None:
                    event["idempotencyKey"] = key
        return list(self._call("POST", "/emit/batch", {"events": body_events})["keys"])

    def query(
        self,
        *,
        event_name: str | None = None,
        platform: str | None = None,
        label: str | None = None,
        tx_key: str | None = None,
        tx_state: str | None = None,
        since: int | None = None,
        page: int = 1,
        page_size: int = models.DEFAULT_PAGE_SIZE,
    ) -> models.QueryPage:
        body = {
            "eventName": event_name,
            "platform": platform,
            "label": label,
            "txKey": tx_key,
            "txState": tx_state,
            "since": since,
            "page": page,
            "pageSize": page_size,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return models.QueryPage.model_validate(self._call("POST", "/query", body))

    def iter_events(self, **filters: Any) -> Iterator[models.Event]:
        """Every event that matches, oldest first, page after page."""
        filters.setdefault("page_size", 100)
        page = 1
        while True:
            result = self.query(**filters, page=page)
            yield from result.rows
            if page >= result.totalPages:
                return
            page += 1

    def get_event(self, key: str) -> models.EventWithTransactions:
        return models.EventWithTransactions.model_validate(self._call("GET", f"/events/{key}"))

    def wait(self, key: str, timeout: float = DEFAULT_WAIT_SECONDS) -> models.EventWithTransactions:
        """The event once its transactions have ended: none processing, and no subscribed
        handler still to start on it. Raises TimeoutError if that takes over `timeout` s."""
        deadline = time.monotonic() + timeout
        pause = FIRST_POLL_SECONDS
        while True:
            event = self.get_event(key)
            running = [tx.txKey for tx in event.transactions if tx.state == "processing"]
            if not running and not event.processing.hasFutureTransactions:
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                waiting = [f"processing: {', '.join(running)}"] if running else []
                if event.processing.hasFutureTransactions:
                    waiting.append("a subscribed handler has not ended a transaction on it")
                raise TimeoutError(
                    f"event {key}: its transactions had not ended after {timeout:g} s "
                    f"({'; '.join(waiting)})"
                )
            time.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_POLL_SECONDS)

    def update(self, key: str, event_name: str, tx_key: str, state: str) -> models.Event:
        body = {"key": key, "eventName": event_name, "txKey": tx_key, "txState": state}
        return models.Event.model_validate(self._call("POST", "/update", body))

    def init(self, key: str, tx_key: str) -> models.Transaction:
        """Claim a transaction; a TidingsError with status 409 if it exists already."""
        body = {"key": key, "txKey": tx_key}
        return models.Transaction.model_validate(self._call("POST", "/init", body))

    def transact(
        self, key: str, tx_key: str, output: Any = None, state: str = "finished"
    ) -> models.Transaction:
        body = {"key": key, "txKey": tx_key, "output": output, "state": state}
        return models.Transaction.model_validate(self._call("POST", "/transact", body))

    def full_event_name(
        self, event_name: str, platform: str | None = None, label: str | None = None
    ) -> str:
        body = {"eventName": event_name, "platform": platform, "label": label}
        body = {k: v for k, v in body.items() if v is not None}
        return str(self._call("POST", "/get-full-event-name", body)["fullName"])
