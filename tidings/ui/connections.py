"""Connections: each inbound webhook endpoint of the signed-in key's owner and environment,
with its URL and the requests it last took and refused."""

from fastapi import Request
from fastapi.responses import Response

from tidings.services import SettingsDep, StoreDep
from tidings.ui.pages import Signed, dashboard_router, render
from tidings.webhooks.connections import Connections, awaiting_secret, public_url

router = dashboard_router()


@router.get("/connections")
async def connections(
    request: Request, session: Signed, store: StoreDep, settings: SettingsDep
) -> Response:
    book = Connections(store.redis, public_url(settings, str(request.base_url)))
    found = await book.find(session.caller.owner, session.caller.env)
    logs = [await book.logs(connection.id) for connection in found]
    return render(
        "connections.html",
        session,
        connections=list(zip(found, logs, strict=True)),
        awaiting_secret=awaiting_secret,
    )
