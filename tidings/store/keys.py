"""Every Redis key tidings uses is built here (and mirrored, name for name, in keys.lua).

Layout version 2. Keys that one command or one MULTI uses together share a hash tag
(``{...}``), so that each family lives in one slot of a Redis Cluster.

Global keys::

    tidings:schema                   string  the version of this layout (schema.py)
    tidings:scopes                   set     "{owner}|{env}" of every scope that has events
    tidings:{secrets}                hash    "{owner}/{env}/{name}" -> sha256, every key ever made
    tidings:{secrets}:{sha256}       hash    a secret key: name, env, owner, createdAt, revokedAt
    tidings:session:{id}             hash    a dashboard sign-in: the sha256 of its secret, a
                                             CSRF token, createdAt; it expires
    tidings:auth-failures:{address}  string  failed authentications from a client address in
                                             the current window; it expires with the window
    tidings:{env:E}:subs:{eventName} hash    txKey -> JSON Subscription of a handler
    tidings:{env:E}:subscribed       hash    txKey -> eventName of every handler subscribed in E
    tidings:{env:E}:subscribed-at    hash    txKey -> when a process first subscribed it (ms)
    tidings:{env:E}:subs-version     string  counts the changes to E's subscriptions
    tidings:{workers}                zset    worker name -> last heartbeat (ms)
    tidings:{workers}:{name}         string  JSON WorkerBeat: a worker's last heartbeat
    tidings:{metrics}:{name}         hash    JSON label values (and bucket) -> the sum of every
                                             process's counts (tidings/metrics.py)
    tidings:{connections}            set     the id of every webhook connection ever made
    tidings:{connections}:{id}       hash    a connection (tidings/webhooks): platform, label,
                                             env, owner, createdAt, revokedAt, its options
                                             (JSON) and its signing secret
    tidings:{connections}:{id}:deliveries
                                     list    its last LOG_SIZE requests taken, newest first
                                             (JSON DeliveryRecord)
    tidings:{connections}:{id}:rejections
                                     list    its last LOG_SIZE requests refused, likewise

An owner's events in one environment are spread over ``TIDINGS_PARTITIONS`` partitions by
event key (``partition_of``). Every key of a partition starts with its prefix
``tidings:{owner|env|p}``, whose hash tag puts them in one slot; a script gets the
partition's ``meta`` key and builds the others from it::

    {part}:meta            hash    seq: the next sequence number; last: the newest createdAt;
                                   low: the first seq not yet cleaned up; subs: the
                                   subscriptions version its emits have seen
    {part}:log:{chunk}     string  22 bytes per seq: createdAt (6, big-endian ms) and the
                                   event's key (16 bytes)
    {part}:rec             hash    event key (16 bytes) -> the event with its transactions
                                   (records.py: header, meta, body)
    {part}:{list}:{chunk}  string  a sorted list of 2-byte offsets (seq mod CHUNK) of the
                                   chunk's events, one list per
        c:{combo}                    name combo (not "*": every seq is in it)
        a:{txKey}|{combo}            combo, events with a txKey transaction (any state)
        s:{state}|{txKey}|{fullName} full name (or "*"), events whose txKey transaction is
                                     in that state
    {part}:lists           set     every list name above, to delete a chunk's
    {part}:txnames:{txKey} set     the full names of events with a txKey transaction
    {part}:outstanding     zset    event key -> when recovery looks next at an event still
                                   awaiting a subscribed handler
    {part}:leases          zset    event key + txKey -> lease expiry (ms) of transactions
                                   workers are running
    {part}:recovered       zset    the same members -> when recovery handed out one whose
                                   lease had lapsed (its next claim may take it over)
    {part}:due             zset    what waits for its time -> when it is due (ms): an event
                                   key (a delayed event: its handlers start then), or an
                                   event key + txKey (a retry, a run held back by a rate)
    {part}:idem:{key}      string  the key of the event first stored with an idempotency key

A chunk is CHUNK sequence numbers. A ``combo`` names which parts of the full name a query
filters on: ``*`` for none, else ``p=…``, ``l=…``, ``n=…`` joined by ``|`` in that order.
Names never contain ``|``.

Flow control (``flow.py``): a limit is a handler's rate or concurrency in one owner and
environment, for one value of its key path (``null`` without one). Its keys share the hash
tag of its ``{limit}`` prefix, ``tidings:{flow:{kind}|{owner}|{env}|{txKey}|{value}}``, and
every script takes them in KEYS::

    {limit}:tat        string  rate: when the next run may start (ms, GCRA's theoretical
                               arrival time); expires once past
    {limit}:booked     zset    rate: runs over the rate ("{owner}|{env}|{key}|{txKey}|
                               {attempt}") -> when each may start (ms)
    {limit}:debounce   hash    debounce: the burst's last run (as above), when its first
                               event came and when the last run is due (ms)
    {limit}:slots      zset    concurrency: runs holding a slot (a run's token, or a run as
                               above for a slot kept for it) -> when the slot lapses (ms)
    {limit}:waiting    zset    concurrency: runs waiting for a slot -> when they came (ms)
    tidings:{flow}:waiting
                       hash    {limit} -> txKey of every concurrency limit with runs waiting
                               (workers hand out those whose slots lapsed)
    tidings:{flow}:booked
                       zset    {limit} -> when its last booking lapses (ms), of every rate
                               limit with runs booked (so that /handlers finds them)
    tidings:{flow:tick|{owner}|{env}|{eventName}}
                       string  the last tick (ms) of the schedule that emits eventName,
                               claimed by the one worker that emits it
"""

import zlib

from tidings.work import Scope

ROOT = "tidings"
SCHEMA = f"{ROOT}:schema"
SCOPES = f"{ROOT}:scopes"
SECRETS = f"{ROOT}:{{secrets}}"
WORKERS = f"{ROOT}:{{workers}}"
CONNECTIONS = f"{ROOT}:{{connections}}"
#: Sequence numbers per chunk of the log and of the lists.
CHUNK = 65536
#: Bytes of an event key in Redis (32 hex digits).
EVENT_KEY_BYTES = 16


def secret(digest: str) -> str:
    return f"{SECRETS}:{digest}"


def session(session_id: str) -> str:
    return f"{ROOT}:session:{session_id}"


def auth_failures(address: str) -> str:
    return f"{ROOT}:auth-failures:{address}"


def environment(env: str) -> str:
    """The prefix of an environment's subscription keys (one slot)."""
    return f"{ROOT}:{{env:{env}}}"


def subscriptions(env: str, event_name: str) -> str:
    return f"{environment(env)}:subs:{event_name}"


def subscribed(env: str) -> str:
    return f"{environment(env)}:subscribed"


def subscribed_at(env: str) -> str:
    return f"{environment(env)}:subscribed-at"


def subscriptions_version(env: str) -> str:
    return f"{environment(env)}:subs-version"


def worker(name: str) -> str:
    return f"{WORKERS}:{name}"


def connection(connection_id: str) -> str:
    return f"{CONNECTIONS}:{connection_id}"


def connection_deliveries(connection_id: str) -> str:
    return f"{connection(connection_id)}:deliveries"


def connection_rejections(connection_id: str) -> str:
    return f"{connection(connection_id)}:rejections"


def metric(name: str) -> str:
    return f"{ROOT}:{{metrics}}:{name}"


def scope_member(scope: Scope) -> str:
    """A scope, as the scopes set names it."""
    return f"{scope.owner}|{scope.env}"


# Partitions


def partition_of(key: str, partitions: int) -> int:
    """The partition of an event key: its last four hex digits are random."""
    return int(key[-4:], 16) % partitions


def idempotency_partition(idempotency_key: str, partitions: int) -> int:
    return zlib.crc32(idempotency_key.encode()) % partitions


def partition(scope: Scope, p: int) -> str:
    """A partition's prefix, the hash tag of all its keys."""
    return f"{ROOT}:{{{scope.owner}|{scope.env}|{p}}}"


def meta(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:meta"


def log(scope: Scope, p: int, chunk: int) -> str:
    return f"{partition(scope, p)}:log:{chunk}"


def records(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:rec"


def lists(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:lists"


def combo_list(combo: str) -> str:
    return f"c:{combo}"


def any_list(tx_key: str, combo: str) -> str:
    return f"a:{tx_key}|{combo}"


def state_list(state: str, tx_key: str, full_name: str) -> str:
    return f"s:{state}|{tx_key}|{full_name}"


def list_chunk(scope: Scope, p: int, list_name: str, chunk: int) -> str:
    return f"{partition(scope, p)}:{list_name}:{chunk}"


def tx_names(scope: Scope, p: int, tx_key: str) -> str:
    return f"{partition(scope, p)}:txnames:{tx_key}"


def outstanding(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:outstanding"


def leases(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:leases"


def recovered(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:recovered"


def due(scope: Scope, p: int) -> str:
    return f"{partition(scope, p)}:due"


def idempotency(scope: Scope, p: int, idempotency_key: str) -> str:
    return f"{partition(scope, p)}:idem:{idempotency_key}"


def lease_member(key: str, tx_key: str) -> bytes:
    """A transaction, as the leases and recovered sets name it."""
    return bytes.fromhex(key) + tx_key.encode()


def combo(platform: str | None, label: str | None, event_name: str | None) -> str:
    parts = [
        f"{tag}={value}"
        for tag, value in (("p", platform), ("l", label), ("n", event_name))
        if value
    ]
    return "|".join(parts) or "*"


def combos(platform: str, label: str, event_name: str) -> list[str]:
    """The eight combos an event of this full name is found by."""
    return [
        combo(p, lb, n)
        for p in (None, platform)
        for lb in (None, label)
        for n in (None, event_name)
    ]


# Flow control


FLOW_WAITING = f"{ROOT}:{{flow}}:waiting"
FLOW_BOOKED = f"{ROOT}:{{flow}}:booked"


def flow_limit(kind: str, scope: Scope, tx_key: str, value: str) -> str:
    """The prefix of a limit's keys: ``kind`` is "rate", "concurrency" or "debounce"; ``value`` the
    JSON of its key path's value in the payload ("null" without a key path)."""
    return f"{ROOT}:{{flow:{kind}|{scope.owner}|{scope.env}|{tx_key}|{value}}}"


def flow_limit_parts(limit: str) -> tuple[str, Scope, str, str]:
    """What a limit was built from: its kind, scope, txKey and value (which alone may hold
    "|" or "}")."""
    kind, owner, env, tx_key, value = limit[len(f"{ROOT}:{{flow:") : -1].split("|", 4)
    return kind, Scope(owner, env), tx_key, value


def flow_tat(limit: str) -> str:
    return f"{limit}:tat"


def flow_booked(limit: str) -> str:
    return f"{limit}:booked"


def flow_debounce(limit: str) -> str:
    return f"{limit}:debounce"


def flow_slots(limit: str) -> str:
    return f"{limit}:slots"


def flow_waiting(limit: str) -> str:
    return f"{limit}:waiting"


def flow_tick(scope: Scope, event_name: str) -> str:
    return f"{ROOT}:{{flow:tick|{scope.owner}|{scope.env}|{event_name}}}"
