"""Handlers for the dashboard screenshots (docs/screenshots.py): a shop's order flow, in
which a card is sometimes declined and a refund takes its time."""

import time
from typing import Any

from pydantic import BaseModel

from tidings import Message, handler


class Item(BaseModel):
    sku: str
    quantity: int


class Order(BaseModel):
    id: str
    total: float
    items: list[Item]


class CardDeclined(Exception):
    pass


@handler("order.paid", tx_key="reserve-stock")
def reserve_stock(event: Message[Order]) -> dict[str, Any]:
    return {"reserved": {item.sku: item.quantity for item in event.payload.items}}


@handler("order.paid", tx_key="capture-payment", max_retries=1, backoff=0.05)
def capture_payment(event: Message[Order]) -> dict[str, Any]:
    if event.payload.total > 500:
        raise CardDeclined(f"order {event.payload.id}: the issuer declined the card (limit)")
    return {"captured": event.payload.total, "currency": "EUR"}


@handler("invoice.created", tx_key="send-invoice")
def send_invoice(event: Message[dict[str, Any]]) -> dict[str, Any]:
    return {"sent": True, "to": event.payload["email"]}


@handler("refund.requested", tx_key="process-refund")
def process_refund(event: Message[dict[str, Any]]) -> dict[str, Any]:
    time.sleep(120)  # a slow bank: still processing when the screenshots are taken
    return {"refunded": event.payload["amount"]}
