"""Inbound webhooks: connections turn what Stripe, GitHub, Shopify, a Standard Webhooks
sender or any JSON sender posts into events of that platform and a label.

``connections`` keeps them in Redis (their keys are in tidings/store/keys.py); ``platforms``
holds one module a platform, each checking its signature and naming its events;
``receive`` is the route, ``POST /webhooks/{id}``, that stores what arrives through the
store like ``/emit`` does.
"""

#: Where the endpoints are: POST {PREFIX}/{id}.
PREFIX = "/webhooks"
