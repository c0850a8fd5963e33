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


def new_event_key() -> str:
    """32 lowercase hex digits that sort in the order this process made them, so that
    events stored in the same millisecond (a batch) are listed in the order emitted."""
    return f"{now_ms():012x}{next(_sequence) & 0xFFFF:04x}{secrets.token_hex(8)}"
