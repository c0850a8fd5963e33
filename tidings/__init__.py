"""tidings: a self-hosted event bus. Emit events over HTTP or from Python, handle them with
decorated functions on Celery workers, and query every handler run (a transaction)."""

from tidings.client import Client
from tidings.errors import TidingsError
from tidings.handlers import Message, Tick, handler
from tidings.worker import emit

__all__ = ["Client", "Message", "TidingsError", "Tick", "emit", "handler"]
