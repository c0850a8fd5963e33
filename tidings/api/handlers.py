"""Handlers: the ones subscribed in the caller's environment, and re-runs of their failed
transactions."""

from fastapi import APIRouter

from tidings import models
from tidings.api.deps import Authenticated
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.dispatch import Dispatcher
from tidings.services import DispatcherDep, SettingsDep, StoreDep
from tidings.work import WorkItem

router = APIRouter(responses=CREDENTIAL)


@router.get("/handlers", response_model=list[models.HandlerView])
async def handlers(who: Authenticated, store: StoreDep) -> list[models.HandlerView]:
    """Every handler subscribed in the caller's environment, with its counts there."""
    return await store.handlers(who.scope)


@router.post(
    "/events/{key}/rerun", response_model=models.Rerun, responses=JSON_BODY | errors(404, 409)
)
async def rerun(
    key: str,
    body: models.RerunRequest,
    who: Authenticated,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> models.Rerun:
    """Re-run a failed transaction through the workers; its old attempts stay in its
    history."""
    lease_ms = settings.lease_ms
    items = await store.rerun(who.scope, key, body.txKey, actor=who.name, lease_ms=lease_ms)
    return rerun_answer(dispatcher, items)


@router.post("/rerun", response_model=models.Rerun, responses=JSON_BODY)
async def rerun_failed(
    body: models.RerunFailedRequest,
    who: Authenticated,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> models.Rerun:
    """Re-run every failed transaction of a handler (txKey) among a filter's events."""
    items = await store.rerun_failed(who.scope, body, actor=who.name, lease_ms=settings.lease_ms)
    return rerun_answer(dispatcher, items)


def rerun_answer(dispatcher: Dispatcher, items: list[tuple[WorkItem, str]]) -> models.Rerun:
    dispatcher.send(items)
    return models.Rerun(rerun=[(item.key, item.tx_key) for item, _ in items])
