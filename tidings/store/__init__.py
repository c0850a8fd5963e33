"""The store: events, transactions, their indexes, subscriptions and secret keys, in Redis.

Every write that touches more than one key is one Lua script, so it is atomic: concurrent
claims of one transaction let exactly one through, and a request that fails writes
nothing. Reads of a page are one script too, so a page and its total agree.

``Store`` is every part below on one Redis connection; each part is a module, its Lua
scripts beside it:

- ``keys``: every Redis key name (``keys.lua`` in Lua), and the map of what each holds
- ``secret_keys``: secret keys and the dashboard's sessions
- ``events``: emit, one event, /query
- ``transactions``: /init, /transact, /update; workers' claims, leases, retries, results
- ``subscriptions``: handlers' subscriptions, backfill and recovery
- ``due``: what waits for its time (delayed events, retries, runs a rate put off)
- ``workers``: heartbeats, and how each handler is doing
- ``reruns``: failed transactions run again
- ``flow``: rate and concurrency limits of handlers, across workers
- ``records``: records as Redis holds them, decoded into named models
- ``connection``: the Redis client and the scripts every part shares
"""

from tidings.store.due import Due
from tidings.store.events import Events
from tidings.store.flow import Flow
from tidings.store.reruns import Reruns
from tidings.store.secret_keys import SecretKeys
from tidings.store.subscriptions import Subscriptions
from tidings.store.transactions import Transactions
from tidings.store.workers import Workers


class Store(Workers, Transactions, Due, Events, Subscriptions, SecretKeys, Reruns, Flow):
    """All reads and writes of tidings' data. Methods that act for a caller take its scope."""
