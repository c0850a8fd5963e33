"""Re-runs: failed transactions put back in the workers' hands, one or a filter's worth."""

from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.errors import Conflict, NotFound
from tidings.store import keys, records
from tidings.store.connection import StorePart
from tidings.store.records import text
from tidings.work import Scope, WorkItem

#: A bulk re-run goes in pages of this many, so that Redis serves others in between.
RERUN_PAGE = 100


class Reruns(StorePart):
    """Re-runs of failed transactions."""

    async def rerun(
        self, scope: Scope, key: str, tx_key: str, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Put a failed transaction back in the workers' hands; its work item and queue."""
        key16 = records.event_key_bytes(key)
        if key16 is None:
            raise NotFound(f"no transaction {tx_key!r} on event {key!r}")
        p = keys.partition_of(key, self.partitions)
        return await self._rerun(scope, p, tx_key, actor, lease_ms, "one", key16, tx_key)

    async def rerun_failed(
        self, scope: Scope, r: models.RerunFailedRequest, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Every failed transaction of a handler among a filter's events, re-run."""
        combo = keys.combo(r.platform, r.label, r.eventName)
        since = "" if r.since is None else r.since
        until = "" if r.until is None else r.until
        items: list[tuple[WorkItem, str]] = []
        for p in range(self.partitions):
            while len(items) < models.MAX_RERUN:  # in pages: Redis serves others in between
                page = await self._rerun(
                    scope,
                    p,
                    r.txKey,
                    actor,
                    lease_ms,
                    "failed",
                    r.txKey,
                    combo,
                    since,
                    until,
                    RERUN_PAGE,
                )
                items += page
                if len(page) < RERUN_PAGE:
                    break
        return items

    async def _rerun(
        self, scope: Scope, p: int, tx_key: str, actor: str, lease_ms: int, *what: Any
    ) -> list[tuple[WorkItem, str]]:
        # The event name a handler of this txKey subscribes to in the environment, and its
        # queue: only such a handler's transactions are re-run.
        name = await self.redis.hget(keys.subscribed(scope.env), tx_key) or ""
        spec = name and await self.redis.hget(keys.subscriptions(scope.env, name), tx_key)
        queue = models.Subscription.model_validate_json(spec).queue if spec else ""
        answer = await self._answer(
            "reruns.rerun",
            keys.meta(scope, p),
            now_ms(),
            actor,
            lease_ms,
            self.ttl_ms,
            name if queue else "",
            *what,
        )
        status = text(answer["status"])
        if status == "not_found":
            raise NotFound(f"no transaction {what[2]!r} on event {what[1].hex()!r}")
        if status == "conflict":
            raise Conflict(
                f"cannot re-run transaction {what[2]!r} on event {what[1].hex()!r}: "
                f"{text(answer['why'])}"
            )
        return [
            (WorkItem(scope.owner, scope.env, key16.hex(), tx_key, attempt=1), queue)
            for key16 in answer["rerun"]
        ]
