"""Every Redis key tidings uses is built here (and mirrored, name for name, in keys.lua).

Global keys::

    tidings:schema               string  the version of this layout (tidings/store/schema.py)
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
    tidings:connections          set   the id of every webhook connection ever made
    tidings:connection:{id}      hash  a connection (tidings/webhooks): platform, label, env,
                                       owner, createdAt, revokedAt, its options (JSON) and
                                       its signing secret
    tidings:connection:{id}:deliveries
                                 list  its last LOG_SIZE requests taken, newest first (JSON
                                       DeliveryRecord)
    tidings:connection:{id}:rejections
                                 list  its last LOG_SIZE requests refused, likewise
    tidings:metric:{name}        hash  JSON label values (and bucket) -> the sum of every
                                       process's counts (tidings/metrics.py)

Per scope, where a scope's prefix is ``tidings:{owner}:{env}``::

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

Flow control (``flow.py``): a limit is a handler's rate or concurrency in one owner and
environment, for one value of its key path (``null`` without one). Its keys share the hash
tag of its ``{limit}`` prefix, ``tidings:{flow:{kind}|{owner}|{env}|{txKey}|{value}}``, and
every script takes them in KEYS::

    {limit}:tat        string  rate: when the next run may start (ms, GCRA's theoretical
                               arrival time); expires once past
    {limit}:booked     zset    rate: runs over the rate ("{owner}|{env}|{key}|{txKey}|
                               {attempt}") -> when each may start (ms)
    {limit}:slots      zset    concurrency: runs holding a slot (a run's token, or a run as
                               above for a slot kept for it) -> when the slot lapses (ms)
    {limit}:waiting    zset    concurrency: runs waiting for a slot -> when they came (ms)
    tidings:flow:waiting  hash  {limit} -> txKey of every concurrency limit with runs waiting
                               (workers hand out those whose slots lapsed)
    tidings:{flow:tick|{owner}|{env}|{eventName}}
                       string  the last tick (ms) of the schedule that emits eventName,
                               claimed by the one worker that emits it

A ``combo`` names which parts of the full name a query filters on: ``*`` for none, else
``p=…``, ``l=…``, ``n=…`` joined by ``|`` in that order. Every event is written to the eight
combos its own name makes, so each /query reads one sorted set. Names never contain ``|``.
Every per-event key expires with its event (PEXPIREAT); index members older than the
retention are trimmed on every write and read.
"""

from tidings.work import Scope

ROOT = "tidings"
SCHEMA = f"{ROOT}:schema"
SECRETS = f"{ROOT}:secrets"
WORKERS = f"{ROOT}:workers"
CONNECTIONS = f"{ROOT}:connections"


def secret(digest: str) -> str:
    return f"{ROOT}:secret:{digest}"


def session(session_id: str) -> str:
    return f"{ROOT}:session:{session_id}"


def auth_failures(address: str) -> str:
    return f"{ROOT}:auth-failures:{address}"


def subscriptions(env: str, event_name: str) -> str:
    return f"{ROOT}:subs:{env}:{event_name}"


def subscribed(env: str) -> str:
    return f"{ROOT}:subscribed:{env}"


def subscribed_at(env: str) -> str:
    return f"{ROOT}:subscribed-at:{env}"


def worker(name: str) -> str:
    return f"{ROOT}:worker:{name}"


def connection(connection_id: str) -> str:
    return f"{ROOT}:connection:{connection_id}"


def connection_deliveries(connection_id: str) -> str:
    return f"{connection(connection_id)}:deliveries"


def connection_rejections(connection_id: str) -> str:
    return f"{connection(connection_id)}:rejections"


def metric(name: str) -> str:
    return f"{ROOT}:metric:{name}"


# Per environment, so that one environment's backlog never hides another's work.


def outstanding(env: str) -> str:
    return f"{ROOT}:outstanding:{env}"


def leases(env: str) -> str:
    return f"{ROOT}:leases:{env}"


def recovered(env: str) -> str:
    return f"{ROOT}:recovered:{env}"


def scope_member(owner: str, env: str, key: str) -> str:
    """An event, as the outstanding sets name it."""
    return f"{owner}|{env}|{key}"


def lease_member(owner: str, env: str, key: str, tx_key: str) -> str:
    """A transaction, as the leases and recovered sets name it."""
    return f"{scope_member(owner, env, key)}|{tx_key}"


# Per scope


def scope_prefix(scope: Scope) -> str:
    return f"{ROOT}:{scope.owner}:{scope.env}"


def event(scope: Scope, key: str) -> str:
    return f"{scope_prefix(scope)}:ev:{key}"


def event_txs(scope: Scope, key: str) -> str:
    return f"{event(scope, key)}:txs"


def event_expected(scope: Scope, key: str) -> str:
    return f"{event(scope, key)}:expected"


def transaction(scope: Scope, key: str, tx_key: str) -> str:
    return f"{scope_prefix(scope)}:tx:{key}|{tx_key}"


def combo(platform: str | None, label: str | None, event_name: str | None) -> str:
    parts = [
        f"{tag}={value}"
        for tag, value in (("p", platform), ("l", label), ("n", event_name))
        if value
    ]
    return "|".join(parts) or "*"


def index(scope: Scope, combo: str) -> str:
    return f"{scope_prefix(scope)}:idx|{combo}"


def tx_index(scope: Scope, state: str, tx_key: str, combo: str) -> str:
    return f"{scope_prefix(scope)}:txidx|{state}|{tx_key}|{combo}"


def missing_index(scope: Scope, tx_key: str, combo: str) -> str:
    return f"{scope_prefix(scope)}:miss|{tx_key}|{combo}"


def missing_registry(scope: Scope, combo: str) -> str:
    return f"{scope_prefix(scope)}:missreg|{combo}"


def missing_kept(scope: Scope) -> str:
    return f"{scope_prefix(scope)}:missing-kept"


def idempotency(scope: Scope, idempotency_key: str) -> str:
    return f"{scope_prefix(scope)}:idem:{idempotency_key}"


# Flow control


FLOW_WAITING = f"{ROOT}:flow:waiting"


def flow_limit(kind: str, scope: Scope, tx_key: str, value: str) -> str:
    """The prefix of a limit's keys: ``kind`` is "rate" or "concurrency"; ``value`` the
    JSON of its key path's value in the payload ("null" without a key path)."""
    return f"{ROOT}:{{flow:{kind}|{scope.owner}|{scope.env}|{tx_key}|{value}}}"


def flow_tat(limit: str) -> str:
    return f"{limit}:tat"


def flow_booked(limit: str) -> str:
    return f"{limit}:booked"


def flow_slots(limit: str) -> str:
    return f"{limit}:slots"


def flow_waiting(limit: str) -> str:
    return f"{limit}:waiting"


def flow_tick(scope: Scope, event_name: str) -> str:
    return f"{ROOT}:{{flow:tick|{scope.owner}|{scope.env}|{event_name}}}"
