"""Handlers of the events tests/test_webhook_platforms.py sends, one per platform, each
subscribed to its platform and label as tests/webhook_senders.py names them. Each run is
counted in Redis, and its output is what the handler saw."""

import os
from typing import Any

import redis

from tidings import Message, handler

counter = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def seen(event: Message[Any]) -> dict[str, Any]:
    counter.incr(f"test:runs:{event.tx_key}:{event.event.key}")
    return {
        "fullName": event.event.fullName,
        "payload": event.payload,
        "headers": event.headers,
        "query": event.query,
    }


@handler("invoice.paid", platform="stripe", label="payments", tx_key="stripe-seen")
def stripe_seen(event: Message[Any]) -> dict[str, Any]:
    return seen(event)


@handler("issues.opened", platform="github", label="repo", tx_key="github-seen")
def github_seen(event: Message[Any]) -> dict[str, Any]:
    return seen(event)


@handler("orders/create", platform="shopify", label="shop", tx_key="shopify-seen")
def shopify_seen(event: Message[Any]) -> dict[str, Any]:
    return seen(event)


@handler(
    "contact.created", platform="standard-webhooks", label="svix", tx_key="standard-webhooks-seen"
)
def standard_webhooks_seen(event: Message[Any]) -> dict[str, Any]:
    return seen(event)


@handler("order.created", platform="custom", label="partner", tx_key="custom-seen")
def custom_seen(event: Message[Any]) -> dict[str, Any]:
    return seen(event)
