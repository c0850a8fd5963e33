"""The dashboard at /ui: see, search and re-run events and transactions in a browser.

Server-rendered Jinja2 pages with autoescaping on: payloads are user data, rendered only
as text. ``static/app.js`` polls for new rows and refreshes an event while it runs; no
other script runs (the Content-Security-Policy allows no inline script).

Signing in with a secret key opens a session in Redis (``Store.open_session``); the
browser holds only its random id, in an HttpOnly, SameSite=Strict cookie, and the secret
key is checked again on every request. Every POST carries a CSRF token: the session's, or
on the sign-in form one from a cookie of its own.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ValidationError

from tidings import models
from tidings.dispatch import Dispatcher
from tidings.errors import BadRequest, Forbidden, NotFound, TidingsError, Unauthorized
from tidings.settings import Settings
from tidings.store import MAX_RERUN, Session, Store, now_ms

PREFIX = "/ui"
SESSION_COOKIE = "tidings_session"
SIGN_IN_COOKIE = "tidings_sign_in"
PAGE_SIZE = 50
#: The most new rows one poll of the stream brings.
POLL_SIZE = 100
FILTERS = ("eventName", "platform", "label", "txKey", "txState", "since", "until")
TX_STATES = {
    "": "any",
    "processing": "processing",
    "finished": "finished",
    "failed": "failed",
    "does-not-exist": "no transaction yet",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

STATIC = {path.name: path for path in (Path(__file__).parent / "static").iterdir()}
#: A digest of each static file, in its URL: browsers may cache it for good.
STATIC_VERSIONS = {
    name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in STATIC.items()
}


# Formatting, for the templates.


def when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(ms: int | None, now: int) -> str:
    if ms is None:
        return "never"
    seconds = max(now - ms, 0) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def static_url(name: str) -> str:
    return f"{PREFIX}/static/{name}?v={STATIC_VERSIONS[name]}"


templates = Environment(
    loader=PackageLoader("tidings.ui", "templates"),
    autoescape=True,  # everything shown is escaped; no template marks user data |safe
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(when=when, pretty=pretty, number="{:,}".format)
templates.globals.update(ago=ago, static_url=static_url, TX_STATES=TX_STATES, PREFIX=PREFIX)


def render(
    template: str, session: Session | None = None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    html = templates.get_template(template).render(session=session, now=now_ms(), **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# Filters: what the stream shows, read from a query string or a form.

Model = TypeVar("Model", bound=BaseModel)


def parse_time(name: str, value: str) -> int:
    """Epoch milliseconds, or an ISO date and time (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: give a time like 2025-01-31T12:00 (UTC), or epoch ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def validated(model: type[Model], fields: Mapping[str, Any]) -> Model:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise BadRequest("; ".join(problems)) from None


class Filter:
    """The stream's filter as given (for forms and links) and parsed (for the store)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.raw = {name: params.get(name, "").strip() for name in FILTERS}
        self.page = int(params["page"]) if params.get("page", "").isdigit() else 1

    @property
    def active(self) -> dict[str, str]:
        return {name: value for name, value in self.raw.items() if value}

    def link(self, path: str = "", **changes: str | int) -> str:
        """A URL with this filter, changed; "" drops a field."""
        fields = {**self.active, **changes}
        query = urlencode({name: value for name, value in fields.items() if value != ""})
        return f"{PREFIX}{path}?{query}" if query else f"{PREFIX}{path}"

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = dict(self.active)
        for name in ("since", "until"):
            if name in fields:
                fields[name] = parse_time(name, fields[name])
        return fields

    def query(self, **changes: Any) -> models.QueryRequest:
        fields = {"page": self.page, "pageSize": PAGE_SIZE, "newestFirst": True}
        return validated(models.QueryRequest, {**fields, **self.fields(), **changes})

    @property
    def live(self) -> bool:
        """Whether new events belong on this page: the first, with no end to its time range."""
        return self.page == 1 and not self.raw["until"]


class UIRoute(APIRoute):
    """Answers in HTML: without a session, the sign-in page; a TidingsError, an error page.
    Every answer carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handle(request)
            except Unauthorized:
                after = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                wanted = f"?{urlencode({'next': after})}" if request.method == "GET" else ""
                response = redirect(f"{PREFIX}/login{wanted}")
            except TidingsError as exc:
                response = render("error.html", status=exc.status_code, message=exc.message)
            response.headers.update(SECURITY_HEADERS)
            return response

        return route


async def read_form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(errors="replace")))


def check_csrf(given: str | None, expected: str | None) -> None:
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is missing or out of date: reload the page")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """An HttpOnly, SameSite=Strict cookie for the dashboard's paths (max_age 0 clears it)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def next_page(value: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if value and value.startswith(PREFIX) and not value.startswith(f"{PREFIX}/login"):
        return value
    return PREFIX


def create_router(store: Store, settings: Settings, dispatch: Dispatcher) -> APIRouter:
    router = APIRouter(prefix=PREFIX, route_class=UIRoute, include_in_schema=False)

    async def current_session(request: Request) -> Session:
        return await store.session(request.cookies.get(SESSION_COOKIE))

    Signed = Annotated[Session, Depends(current_session)]

    async def posted_form(request: Request, session: Signed) -> dict[str, str]:
        form = await read_form(request)
        check_csrf(form.get("csrf"), session.csrf)
        return form

    Form = Annotated[dict[str, str], Depends(posted_form)]

    # Signing in and out

    @router.get("/login")
    async def sign_in_page(request: Request) -> Response:
        return sign_in_form(request, request.query_params.get("next"))

    def sign_in_form(request: Request, after: str | None, error: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        status = 401 if error else 200
        response = render(
            "login.html", csrf=token, next=next_page(after), error=error, status=status
        )
        set_cookie(response, request, SIGN_IN_COOKIE, token, 3600)
        return response

    @router.post("/login")
    async def sign_in(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE))
        try:
            session = await store.open_session(
                form.get("secret", "").strip(), ttl_seconds=settings.session_seconds
            )
        except Unauthorized as exc:
            return sign_in_form(request, form.get("next"), exc.message)
        response = redirect(next_page(form.get("next")))
        set_cookie(response, request, SESSION_COOKIE, session.id, settings.session_seconds)
        set_cookie(response, request, SIGN_IN_COOKIE, "", 0)
        return response

    @router.post("/logout")
    async def sign_out(request: Request, session: Signed, form: Form) -> Response:
        await store.close_session(session.id)
        response = redirect(f"{PREFIX}/login")
        set_cookie(response, request, SESSION_COOKIE, "", 0)
        return response

    # The stream

    @router.get("")
    async def events(request: Request, session: Signed) -> Response:
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
            rerun=int(rerun) if rerun.isdigit() else None,
        )

    @router.get("/rows")
    async def new_rows(request: Request, session: Signed) -> Response:
        """Rows newer than (after, afterKey), the newest shown, for the stream to prepend.

        The total comes in X-Total; X-More says that more arrived than one poll brings.
        """
        view = Filter(request.query_params)
        after = request.query_params.get("after", "")
        newest = (int(after) if after.isdigit() else 0, request.query_params.get("afterKey", ""))
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

    # An event

    @router.get("/events/{key}")
    async def event(request: Request, key: str, session: Signed) -> Response:
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

    @router.post("/events/{key}/rerun")
    async def rerun(key: str, session: Signed, form: Form) -> Response:
        tx_key = form.get("txKey", "")
        items = await store.rerun(
            session.caller.scope,
            key,
            tx_key,
            actor=session.caller.name,
            lease_ms=settings.lease_ms,
        )
        dispatch.send(items)
        return redirect(f"{PREFIX}/events/{quote(key)}?{urlencode({'rerun': tx_key})}")

    # Re-running a handler's failed transactions

    @router.get("/rerun")
    async def confirm_rerun(request: Request, session: Signed) -> Response:
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
            limit=MAX_RERUN,
        )

    @router.post("/rerun")
    async def rerun_failed(session: Signed, form: Form) -> Response:
        view = Filter(form)
        items = await store.rerun_failed(
            session.caller.scope,
            validated(models.RerunFailedRequest, view.fields()),
            actor=session.caller.name,
            lease_ms=settings.lease_ms,
        )
        dispatch.send(items)
        return redirect(view.link(txState="", rerun=len(items)))

    # Handlers

    @router.get("/handlers")
    async def handlers(session: Signed) -> Response:
        found = await store.handlers(session.caller.scope)
        return render("handlers.html", session, handlers=found)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise NotFound(f"no static file {name!r}")
        return FileResponse(STATIC[name], headers={"Cache-Control": "max-age=31536000"})

    return router
