"""Re-runs: failed transactions put back in the workers' hands, one or a filter's worth."""

from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.errors import Conflict, NotFound
from tidings.store import keys, records
from tidings.store.connection import StorePart
from tidings.work import Scope, WorkItem

#: A bulk re-run goes in pages of this many, so that Redis serves others in between.
RERUN_PAGE = 500


class Reruns(StorePart):
    """Re-runs of failed transactions."""

    async def rerun(
        self, scope: Scope, key: str, tx_key: str, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Put a failed transaction back in the workers' hands; its work item and queue."""
        return await self._rerun(scope, actor, lease_ms, "one", key, tx_key)

    async def rerun_failed(
        self, scope: Scope, r: models.RerunFailedRequest, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Every failed transaction of a handler among a filter's events, re-run."""
        combo = keys.combo(r.platform, r.label, r.eventName)
        since = "-inf" if r.since is None else r.since
        until = "+inf" if r.until is None else r.until
        items: list[tuple[WorkItem, str]] = []
        while len(items) < models.MAX_RERUN:  # in pages, so that Redis serves others in between
            page = await self._rerun(
                scope, actor, lease_ms, "failed", r.txKey, combo, since, until, RERUN_PAGE
            )
            items += page
            if len(page) < RERUN_PAGE:
                break
        return items

    async def _rerun(
        self, scope: Scope, actor: str, lease_ms: int, *what: Any
    ) -> list[tuple[WorkItem, str]]:
        answer = await self._answer(
            "reruns.rerun", keys.scope_prefix(scope), now_ms(), actor, lease_ms, *what
        )
        if answer["status"] == "not_found":
            raise NotFound(f"no transaction {what[2]!r} on event {what[1]!r}")
        if answer["status"] == "conflict":
            raise Conflict(
                f"cannot re-run transaction {what[2]!r} on event {what[1]!r}: {answer['why']}"
            )
        return [records.work(item, attempt=1) for item in answer["rerun"]]
