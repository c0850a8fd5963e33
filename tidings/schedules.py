"""Cron schedules: reading an expression in a time zone, and the ticks it makes.

cronsim reads the five-field expressions (with ranges, steps, names, ``L``, ``W`` and ``#``)
and walks them in a zoneinfo time zone with daylight saving time handled as cron does: a
tick in the hour skipped in spring runs at the end of the gap, a tick in the hour repeated
in autumn runs once.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name (``Europe/Paris``); ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        why = f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'"
        raise ValueError(why) from None


def check(expression: str, timezone: str) -> str:
    """The expression, if cron reads it (ValueError, saying why, if not)."""
    try:
        CronSim(expression, datetime.now(zone(timezone)))
    except CronSimError as exc:
        raise ValueError(f"bad cron expression {expression!r}: {exc}") from None
    return expression


def explain(expression: str) -> str:
    """The expression in English ("At 09:00 on Monday through Friday")."""
    return str(CronSim(expression, datetime.now(UTC)).explain())


def ticks_after(expression: str, timezone: str, after_ms: int) -> Iterator[int]:
    """The ticks after a time (epoch ms, excluded), in order, as epoch ms."""
    start = datetime.fromtimestamp(after_ms / 1000, zone(timezone))
    for tick in CronSim(expression, start):
        yield int(tick.timestamp() * 1000)


def last_tick(expression: str, timezone: str, at_or_before_ms: int) -> int | None:
    """The latest tick at or before a time (epoch ms), or None if there is none."""
    # Walking back excludes where it starts: start a millisecond later.
    start = datetime.fromtimestamp((at_or_before_ms + 1) / 1000, zone(timezone))
    for tick in CronSim(expression, start, reverse=True):
        return int(tick.timestamp() * 1000)
    return None
