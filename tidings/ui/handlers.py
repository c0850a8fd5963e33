"""Handlers, and re-runs: one event's failed transaction, or a handler's failed ones."""

from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import Response

from tidings import models
from tidings.services import DispatcherDep, SettingsDep, StoreDep
from tidings.ui.filters import Filter, validated
from tidings.ui.pages import PREFIX, Form, Signed, dashboard_router, redirect, render

router = dashboard_router()


@router.get("/handlers")
async def handlers(session: Signed, store: StoreDep) -> Response:
    found = await store.handlers(session.caller.scope)
    return render("handlers.html", session, handlers=found)


@router.post("/events/{key}/rerun")
async def rerun(
    key: str,
    session: Signed,
    form: Form,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> Response:
    tx_key = form.get("txKey", "")
    items = await store.rerun(
        session.caller.scope, key, tx_key, actor=session.caller.name, lease_ms=settings.lease_ms
    )
    dispatcher.send(items)
    return redirect(f"{PREFIX}/events/{quote(key)}?{urlencode({'rerun': tx_key})}")


@router.get("/rerun")
async def confirm_rerun(request: Request, session: Signed, store: StoreDep) -> Response:
    view = Filter(request.query_params)
    wanted = validated(models.RerunFailedRequest, view.fields())
    failed = await store.query(
        session.caller.scope, view.query(txState="failed", page=1, pageSize=1)
    )
    return render(
        "rerun.html",
        session,
        view=view,
        tx_key=wanted.txKey,
        count=failed.total,
        limit=models.MAX_RERUN,
    )


@router.post("/rerun")
async def rerun_failed(
    session: Signed,
    form: Form,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> Response:
    view = Filter(form)
    items = await store.rerun_failed(
        session.caller.scope,
        validated(models.RerunFailedRequest, view.fields()),
        actor=session.caller.name,
        lease_ms=settings.lease_ms,
    )
    dispatcher.send(items)
    return redirect(view.link(txState="", rerun=len(items)))
