"""The dashboard at /ui: see, search and re-run events and transactions in a browser.

Server-rendered Jinja2 pages with autoescaping on: payloads are user data, rendered only
as text. ``static/app.js`` polls for new rows and refreshes an event while it runs; no
other script runs (the Content-Security-Policy allows no inline script).

Signing in with a secret key opens a session in Redis (``Store.open_session``); the
browser holds only its random id, in an HttpOnly, SameSite=Strict cookie, and the secret
key is checked again on every request. Every POST carries a CSRF token: the session's, or
on the sign-in form one from a cookie of its own.

One module per area, each a router: ``auth`` (signing in and out), ``events`` (the stream
and an event), ``handlers`` (handlers and re-runs), ``connections`` (inbound webhook
endpoints and their last requests) and ``assets`` (static files); ``pages``
holds what they share (rendering, sessions, forms) and ``filters`` the stream's filter.
"""

from fastapi import APIRouter

from tidings.ui import assets, auth, connections, events, handlers
from tidings.ui.pages import PREFIX

router = APIRouter()
for area in (auth, events, handlers, connections, assets):
    router.include_router(area.router)

__all__ = ["PREFIX", "router"]
