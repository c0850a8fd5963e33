"""Ids: of records, of claims, and the time-ordered keys of events."""

import itertools
import secrets
import uuid

from tidings.clock import now_ms

#: Hex digits in a record's ``_id`` (events and transactions), as the Event API shows them.
RECORD_ID_LENGTH = 24


def new_id() -> str:
    """32 random hex digits."""
    return uuid.uuid4().hex


def new_record_id() -> str:
    return new_id()[:RECORD_ID_LENGTH]


_sequence = itertools.count()


#: An event key's last hex digits, which choose its partition (tidings/store/keys.py).
PARTITION_DIGITS = 4
PARTITION_TAILS = 16**PARTITION_DIGITS


def new_event_key(beside: str | None = None, partition: tuple[int, int] | None = None) -> str:
    """32 lowercase hex digits that sort in the order this process made them, so that
    events stored in the same millisecond (a batch) are listed in the order emitted. The
    last four are random; or those of the key `beside`, so that both keys are in the same
    partition (a handler's follow-ups are stored with its result); or chosen to put the key
    in `partition` (p of n)."""
    if beside:
        tail = int(beside[-PARTITION_DIGITS:], 16)
    else:
        tail = secrets.randbelow(PARTITION_TAILS)
        if partition:
            p, n = partition
            tail = tail - tail % n + p
            if tail >= PARTITION_TAILS:
                tail -= n
    return f"{now_ms():012x}{next(_sequence) & 0xFFFF:04x}{secrets.token_hex(6)}{tail:04x}"
