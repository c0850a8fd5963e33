"""What the dashboard's pages share: rendering, the route class that answers in HTML, the
signed-in session, forms with their CSRF token, and cookies."""

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from tidings.auth import Session
from tidings.clock import now_ms
from tidings.errors import (
    REDIS_UNREACHABLE,
    Forbidden,
    TidingsError,
    Unauthorized,
    redis_unreachable,
)
from tidings.services import StoreDep

log = logging.getLogger("tidings.ui")

PREFIX = "/ui"
SESSION_COOKIE = "tidings_session"
SIGN_IN_COOKIE = "tidings_sign_in"
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
                response = error_page(exc)
            except REDIS_UNREACHABLE as exc:
                log.warning("Redis unreachable answering %s: %s", request.url.path, exc)
                response = error_page(redis_unreachable())
            response.headers.update(SECURITY_HEADERS)
            return response

        return route


def error_page(error: TidingsError) -> Response:
    response = render("error.html", status=error.status_code, message=error.message)
    if error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


def dashboard_router() -> APIRouter:
    """A router for one area of the dashboard: under /ui, answering in HTML."""
    return APIRouter(prefix=PREFIX, route_class=UIRoute, include_in_schema=False)


# Sessions and forms


async def current_session(request: Request, store: StoreDep) -> Session:
    return await store.session(request.cookies.get(SESSION_COOKIE))


Signed = Annotated[Session, Depends(current_session)]


async def read_form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(errors="replace")))


def check_csrf(given: str | None, expected: str | None) -> None:
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is missing or out of date: reload the page")


async def posted_form(request: Request, session: Signed) -> dict[str, str]:
    form = await read_form(request)
    check_csrf(form.get("csrf"), session.csrf)
    return form


Form = Annotated[dict[str, str], Depends(posted_form)]


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
