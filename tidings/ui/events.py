"""The stream of events, the rows a poll brings, and one event's page."""

from fastapi import Request
from fastapi.responses import Response

from tidings.errors import TidingsError
from tidings.services import StoreDep
from tidings.ui.filters import Filter, whole_number
from tidings.ui.pages import Signed, dashboard_router, render

#: The most new rows one poll of the stream brings.
POLL_SIZE = 100

router = dashboard_router()


@router.get("")
async def events(request: Request, session: Signed, store: StoreDep) -> Response:
    view = Filter(request.query_params)
    page, error = None, ""
    try:
        page = await store.query(session.caller.scope, view.query())
    except TidingsError as exc:
        error = exc.message
    rerun = request.query_params.get("rerun", "")
    return render(
        "events.html",
        session,
        view=view,
        page=page,
        error=error,
        rerun=whole_number(rerun),
    )


@router.get("/rows")
async def new_rows(request: Request, session: Signed, store: StoreDep) -> Response:
    """Rows newer than (after, afterKey), the newest shown, for the stream to prepend.

    The total comes in X-Total; X-More says that more arrived than one poll brings.
    """
    view = Filter(request.query_params)
    after = request.query_params.get("after", "")
    newest = (whole_number(after) or 0, request.query_params.get("afterKey", ""))
    scope, query = session.caller.scope, view.query(page=1)
    total = (await store.query(scope, query.model_copy(update={"pageSize": 1}))).total
    since = max(newest[0], query.since or 0)
    fresh = await store.query(
        scope, query.model_copy(update={"pageSize": POLL_SIZE, "since": since})
    )
    # An index orders events by createdAt, then by key (a sorted set's order of ties).
    rows = [event for event in fresh.rows if (event.createdAt, event.key) > newest]
    response = render("_rows.html", session, rows=rows)
    response.headers["X-Total"] = str(total)
    response.headers["X-More"] = "1" if len(rows) == POLL_SIZE else "0"
    return response


@router.get("/events/{key}")
async def event(request: Request, key: str, session: Signed, store: StoreDep) -> Response:
    found = await store.get_event(session.caller.scope, key)
    running = found.processing.hasFutureTransactions or any(
        tx.state == "processing" for tx in found.transactions
    )
    return render(
        "event.html",
        session,
        event=found,
        running=running,
        rerun=request.query_params.get("rerun", ""),
    )
