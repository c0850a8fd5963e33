"""HTTP in: the Event API (../shared/spec/SEMANTICS.md) on top of the store.

One module per area, each a router: ``events`` (emit, query, an event, full names),
``transactions`` (init, transact, update), ``handlers`` (handlers and re-runs), ``admin``
(secret keys) and ``health``. ``app`` builds the application from them; ``deps`` holds
what their routes depend on (the caller, the admin token, the body) and ``errors`` turns
every error into the contract's error body in one place.
"""

from tidings.api.app import create_app
from tidings.api.deps import SECRET_HEADER

__all__ = ["SECRET_HEADER", "create_app"]
