"""Flow control: rate, concurrency and debounce limits that hold across every worker.

A limit (``keys.flow_limit``) is a handler's rate or concurrency in one owner and
environment, for one value of its key path. Each script takes its limit's keys in KEYS
(one hash tag), so that a limit lives in one slot of a Redis Cluster.

- Rate: GCRA in ``flow.rate.lua``; a run over the rate is booked a start time.
- Debounce: ``flow.debounce.lua`` keeps a burst's last run, which starts when it is due.
- Schedules: the worker that claims a tick (``tick``) emits it.
- Concurrency: a slot is a sorted-set entry leased like a transaction (a dead worker's
  slot lapses); runs over the limit wait in a sorted set in the order they came, and
  whoever frees a slot (``release``, or ``wake`` for lapsed ones) hands it to the first
  of them, which the caller publishes.
- Runs held back (``held_back``, for /handlers): the limits with runs waiting or booked are
  noted in two registries (``keys.FLOW_WAITING``, ``keys.FLOW_BOOKED``), so that a read
  looks at those limits alone, never over the keyspace.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from tidings import models
from tidings.clock import now_ms
from tidings.store import keys, records
from tidings.store.connection import StorePart
from tidings.store.records import text
from tidings.work import Scope

#: A run booked under a rate that comes back this much before its time still starts (its
#: put-back message was timed by a worker's clock, the booking by Redis's).
EARLY_MS = 20


@dataclass(frozen=True)
class RateAnswer:
    #: ok: start now; wait: booked, come back in ``wait_ms``; early: booked already, for
    #: later (a copy of a run that waits).
    status: Literal["ok", "wait", "early"]
    wait_ms: int


@dataclass(frozen=True)
class DebounceAnswer:
    #: go: start now; wait: the burst's last run, due in ``wait_ms``.
    status: Literal["go", "wait"]
    wait_ms: int
    #: The run it replaced as the burst's last, which never starts, or None.
    superseded: str | None


@dataclass(frozen=True)
class SlotAnswer:
    #: ok: the run holds a slot under its token; wait: it waits for one.
    status: Literal["ok", "wait"]
    #: Runs given a slot meanwhile, to publish.
    promoted: list[str]


class Flow(StorePart):
    """Rate and concurrency limits."""

    async def _flow(self, script: str, keys_: list[str], *args: Any) -> dict[str, Any]:
        answer = await self._script(script)(keys=keys_, args=[str(a) for a in args])
        return records.fields(answer)

    async def rate(self, limit: str, run: str, interval_ms: float, stale_ms: int) -> RateAnswer:
        """May ``run`` start now under the rate of ``limit``? (See flow.rate.lua.)"""
        answer = await self._flow(
            "flow.rate",
            [keys.flow_tat(limit), keys.flow_booked(limit)],
            run,
            interval_ms,
            EARLY_MS,
            stale_ms,
        )
        status, wait_ms = answer["status"], int(answer["wait"])
        if status == "wait":
            await self._note_booked(limit, now_ms() + wait_ms + stale_ms)
        return RateAnswer(status, wait_ms)

    async def _note_booked(self, limit: str, lapses_at: int) -> None:
        """Runs are booked under ``limit`` until ``lapses_at`` at the latest (after their
        time, a booking whose run did not come is dropped); and the limits whose bookings
        have all lapsed are forgotten."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.FLOW_BOOKED, {limit: lapses_at}, gt=True)
            pipe.zremrangebyscore(keys.FLOW_BOOKED, "-inf", f"({now_ms()}")
            await pipe.execute()

    async def debounce(
        self, limit: str, run: str, period_ms: int, most_ms: int | None, keep_ms: int
    ) -> DebounceAnswer:
        """May ``run`` start now under the debounce of ``limit``? (See flow.debounce.lua.)"""
        answer = await self._flow(
            "flow.debounce",
            [keys.flow_debounce(limit)],
            run,
            period_ms,
            "" if most_ms is None else most_ms,
            EARLY_MS,
            keep_ms,
        )
        superseded = text(answer["superseded"]) or None
        return DebounceAnswer(answer["status"], int(answer["wait"]), superseded)

    async def acquire(
        self, limit: str, run: str, token: str, *, slots: int, lease_ms: int
    ) -> SlotAnswer:
        """A slot of ``limit`` for ``run`` under ``token``, or its place in the line."""
        now = now_ms()
        answer = await self._flow(
            "flow.acquire",
            [keys.flow_slots(limit), keys.flow_waiting(limit)],
            run,
            token,
            now,
            now + lease_ms,
            slots,
            self.ttl_seconds * 1000,
        )
        return SlotAnswer(answer["status"], list(answer["promoted"]))

    async def note_waiting(self, limit: str, tx_key: str) -> None:
        """Runs wait under ``limit``: ``wake`` looks at it until none does."""
        await self.redis.hset(keys.FLOW_WAITING, limit, tx_key)

    async def release(self, limit: str, token: str, *, slots: int, lease_ms: int) -> list[str]:
        """Give a slot back; the runs given a slot in its place, to publish."""
        promoted, _ = await self._release(limit, token, slots, lease_ms)
        return promoted

    async def _release(
        self, limit: str, token: str, slots: int, lease_ms: int
    ) -> tuple[list[str], int]:
        now = now_ms()
        answer = await self._flow(
            "flow.release",
            [keys.flow_slots(limit), keys.flow_waiting(limit)],
            token,
            now,
            slots,
            now + lease_ms,
        )
        return list(answer["promoted"]), int(answer["waiting"])

    async def keep(self, limit: str, token: str, run: str, until_ms: int) -> None:
        """Keep a held slot for ``run``, which comes back for it by ``until_ms``."""
        await self._script("flow.keep")(keys=[keys.flow_slots(limit)], args=[token, run, until_ms])

    async def renew_slots(self, held: list[tuple[str, str]], lease_ms: int) -> None:
        """Renew the slots (limit, token) of runs still running."""
        if held:
            until = now_ms() + lease_ms
            calls = [[keys.flow_slots(limit), token, until] for limit, token in held]
            await self._run_many("flow.renew", calls)

    async def wake(self, slots_of: dict[str, int], lease_ms: int) -> list[str]:
        """Hand the lapsed slots of limits with runs waiting to the first of them. Looks at
        the limits of the handlers named in ``slots_of`` (txKey -> its concurrency)."""
        promoted: list[str] = []
        for limit, tx_key in (await self.redis.hgetall(keys.FLOW_WAITING)).items():
            slots = slots_of.get(tx_key)
            if slots is None:
                continue
            given, waiting = await self._release(limit, "", slots, lease_ms)
            promoted += given
            if not waiting:
                await self.redis.hdel(keys.FLOW_WAITING, limit)
        return promoted

    async def held_back(
        self, scope: Scope, tx_keys: Collection[str]
    ) -> dict[str, list[models.HeldBack]]:
        """The runs of these handlers (txKeys) that their limits hold back in the scope, by
        handler, most runs first: per limit, how many wait for a slot (and since when the
        first does), or how many are booked (and when the next starts). Reads the limits
        in the registries (of every scope) and two commands per limit of these handlers."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hkeys(keys.FLOW_WAITING)
            pipe.zrange(keys.FLOW_BOOKED, now_ms(), "+inf", byscore=True)
            waiting, booked = await pipe.execute()
        limits = []
        for runs_of, noted in ((keys.flow_waiting, waiting), (keys.flow_booked, booked)):
            for limit in noted:
                kind, of, tx_key, value = keys.flow_limit_parts(limit)
                if of == scope and tx_key in tx_keys:
                    limits.append((kind, tx_key, value, runs_of(limit)))
        if not limits:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for *_, runs in limits:
                pipe.zcard(runs)
                pipe.zrange(runs, 0, 0, withscores=True)
            answers = await pipe.execute()
        found: dict[str, list[models.HeldBack]] = {}
        for (kind, tx_key, value, _), count, first in zip(
            limits, answers[::2], answers[1::2], strict=True
        ):
            if not count:
                continue
            at = int(first[0][1]) if first else None  # its score: when it came, or may start
            found.setdefault(tx_key, []).append(
                models.HeldBack(
                    reason=kind,
                    keyValue=value,
                    runs=count,
                    waitingSince=at if kind == "concurrency" else None,
                    nextStartAt=at if kind == "rate" else None,
                )
            )
        for held in found.values():
            held.sort(key=lambda h: (-h.runs, h.reason, h.keyValue))
        return found

    async def tick(
        self, scope: Scope, event_name: str, tick_ms: int, *, record_only: bool = False
    ) -> Literal["first", "fire", "skip", "done"]:
        """Claim a tick of the schedule that emits ``event_name`` (see flow.tick.lua)."""
        answer = await self._flow(
            "flow.tick", [keys.flow_tick(scope, event_name)], tick_ms, int(record_only)
        )
        status: Literal["first", "fire", "skip", "done"] = answer["status"]
        return status
