"""Signing in with a secret key, and out."""

import secrets

from fastapi import Request
from fastapi.responses import Response

from tidings.auth import MISSING_SECRET
from tidings.errors import Unauthorized
from tidings.services import SettingsDep, StoreDep, ThrottleDep
from tidings.throttle import client_address
from tidings.ui.pages import (
    PREFIX,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Form,
    Signed,
    check_csrf,
    dashboard_router,
    read_form,
    redirect,
    render,
    set_cookie,
)

#: How long the sign-in form's CSRF cookie lasts, in seconds.
SIGN_IN_FORM_SECONDS = 3600

router = dashboard_router()


def next_page(value: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if value and value.startswith(PREFIX) and not value.startswith(f"{PREFIX}/login"):
        return value
    return PREFIX


def sign_in_form(request: Request, after: str | None, error: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    status = 401 if error else 200
    response = render("login.html", csrf=token, next=next_page(after), error=error, status=status)
    set_cookie(response, request, SIGN_IN_COOKIE, token, SIGN_IN_FORM_SECONDS)
    return response


@router.get("/login")
async def sign_in_page(request: Request) -> Response:
    return sign_in_form(request, request.query_params.get("next"))


@router.post("/login")
async def sign_in(
    request: Request, store: StoreDep, settings: SettingsDep, throttle: ThrottleDep
) -> Response:
    form = await read_form(request)
    check_csrf(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE))
    secret = form.get("secret", "").strip()
    try:
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        async with throttle.attempt(client_address(request)):
            session = await store.open_session(secret, ttl_seconds=settings.session_seconds)
    except Unauthorized as exc:
        return sign_in_form(request, form.get("next"), exc.message)
    response = redirect(next_page(form.get("next")))
    set_cookie(response, request, SESSION_COOKIE, session.id, settings.session_seconds)
    set_cookie(response, request, SIGN_IN_COOKIE, "", 0)
    return response


@router.post("/logout")
async def sign_out(request: Request, session: Signed, form: Form, store: StoreDep) -> Response:
    await store.close_session(session.id)
    response = redirect(f"{PREFIX}/login")
    set_cookie(response, request, SESSION_COOKIE, "", 0)
    return response
