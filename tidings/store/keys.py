"""Every Redis key tidings uses is built here (and mirrored, name for name, in lua/common.lua).

Global keys::

    tidings:secret:{sha256}      hash  a secret key: name, env, owner, createdAt, revokedAt
    tidings:secrets              hash  "{owner}/{env}/{name}" -> sha256, every key ever made
    tidings:session:{id}         hash  a dashboard sign-in: the sha256 of its secret, a CSRF
                                       token, createdAt; it expires (TIDINGS_SESSION_SECONDS)
    tidings:auth-failures:{address}
                                 string failed authentications from a client address in the
                                       current window; it expires with the window
    tidings:subs:{env}:{eventName}
                                 hash  txKey -> JSON Subscription of a handler (from workers)
    tidings:workers              zset  worker name -> last heartbeat (ms)
    tidings:worker:{name}        string  JSON WorkerBeat: a worker's last heartbeat (its
                                       handlers, environments, queues and what it last took
                                       off each); expires once the worker is forgotten
    tidings:subscribed:{env}     hash  txKey -> eventName of every handler subscribed in env
    tidings:subscribed-at:{env}  hash  txKey -> when a process first subscribed it (ms)
    tidings:outstanding:{env}    zset  "{owner}|{env}|{key}" -> when recovery looks next at an
                                       event still awaiting a subscribed handler
    tidings:leases:{env}         zset  "{owner}|{env}|{key}|{txKey}" -> lease expiry (ms) of
                                       the transactions workers are running
    tidings:recovered:{env}      zset  the same members -> when recovery handed out one whose
                                       lease had lapsed (its next claim may take it over)
    tidings:metric:{name}        hash  JSON label values (and bucket) -> the sum of every
                                       process's counts (tidings/metrics.py)

Per scope, where a scope is ``tidings:{owner}:{env}``::

    {scope}:ev:{key}                 hash   the event: its fields, payload, headers and query as
                                            raw JSON, state, history, v and processing flags
    {scope}:ev:{key}:txs             hash   txKey -> state of each of the event's transactions
    {scope}:ev:{key}:expected        set    txKeys of the handlers subscribed when it was emitted
    {scope}:tx:{key}|{txKey}         hash   a transaction
    {scope}:idx|{combo}              zset   event key -> createdAt, for one name filter
    {scope}:txidx|{state}|{txKey}|{combo}
                                     zset   the same, for events whose txKey transaction is in
                                            that state ("any" for all states)
    {scope}:miss|{txKey}|{combo}     zset   events with no txKey transaction; kept only once a
                                            query asked for it
    {scope}:missreg|{combo}          set    the txKeys whose "miss" index is kept for a combo
    {scope}:missing-kept             set    "{txKey}|{combo}" of every kept "miss" index (at
                                            most 256 a scope; others are built per query)
    {scope}:idem:{idempotencyKey}    string the key of the event first stored with this
                                            idempotency key; expires after its time (at most
                                            the retention)

A ``combo`` names which parts of the full name a query filters on: ``*`` for none, else
``p=…``, ``l=…``, ``n=…`` joined by ``|`` in that order. Every event is written to the eight
combos its own name makes, so each /query reads one sorted set. Names never contain ``|``.
Every per-event key expires with its event (PEXPIREAT); index members older than the
retention are trimmed on every write and read.
"""

from dataclasses import dataclass

ROOT = "tidings"
SECRETS = f"{ROOT}:secrets"


def leases(env: str) -> str:
    return f"{ROOT}:leases:{env}"


def lease_member(owner: str, env: str, key: str, tx_key: str) -> str:
    return f"{owner}|{env}|{key}|{tx_key}"


def secret(digest: str) -> str:
    return f"{ROOT}:secret:{digest}"


def session(session_id: str) -> str:
    return f"{ROOT}:session:{session_id}"


def auth_failures(address: str) -> str:
    return f"{ROOT}:auth-failures:{address}"


WORKERS = f"{ROOT}:workers"


def subscribed(env: str) -> str:
    return f"{ROOT}:subscribed:{env}"


def subscribed_at(env: str) -> str:
    return f"{ROOT}:subscribed-at:{env}"


def worker(name: str) -> str:
    return f"{ROOT}:worker:{name}"


def metric(name: str) -> str:
    return f"{ROOT}:metric:{name}"


def subscriptions(env: str, event_name: str) -> str:
    return f"{ROOT}:subs:{env}:{event_name}"


def combo(platform: str | None, label: str | None, event_name: str | None) -> str:
    parts = [
        f"{tag}={value}"
        for tag, value in (("p", platform), ("l", label), ("n", event_name))
        if value
    ]
    return "|".join(parts) or "*"


@dataclass(frozen=True)
class Scope:
    """The events of one owner in one environment; no key reaches outside its scope."""

    owner: str
    env: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}:{self.owner}:{self.env}"

    def event(self, key: str) -> str:
        return f"{self.prefix}:ev:{key}"

    def event_txs(self, key: str) -> str:
        return f"{self.prefix}:ev:{key}:txs"

    def transaction(self, key: str, tx_key: str) -> str:
        return f"{self.prefix}:tx:{key}|{tx_key}"

    def index(self, combo: str) -> str:
        return f"{self.prefix}:idx|{combo}"

    def tx_index(self, state: str, tx_key: str, combo: str) -> str:
        return f"{self.prefix}:txidx|{state}|{tx_key}|{combo}"

    def missing_index(self, tx_key: str, combo: str) -> str:
        return f"{self.prefix}:miss|{tx_key}|{combo}"

    def idempotency(self, idempotency_key: str) -> str:
        return f"{self.prefix}:idem:{idempotency_key}"
