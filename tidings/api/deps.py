"""What the API's routes depend on: the caller behind a secret key, the admin token, and a
body read straight into its model. Every credential presented is checked through the
throttle on failed authentication."""

import hmac
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tidings import models
from tidings.errors import NotFound, Unauthorized
from tidings.services import SettingsDep, StoreDep, ThrottleDep
from tidings.store import MISSING_SECRET, Caller
from tidings.throttle import client_address

SECRET_HEADER = "X-Buildable-Secret"
ADMIN_NEEDS_TOKEN = "admin endpoints need Authorization: Bearer <TIDINGS_ADMIN_TOKEN>"

SecretHeader = Annotated[str | None, Header(alias=SECRET_HEADER)]


async def present_secret(secret: SecretHeader = None) -> str:
    """A secret was sent (checked before the body is looked at); its check is later."""
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    return secret


PresentSecret = Annotated[str, Depends(present_secret)]


async def caller(
    request: Request, secret: PresentSecret, store: StoreDep, throttle: ThrottleDep
) -> Caller:
    async with throttle.attempt(client_address(request)):
        return await store.authenticate(secret)


Authenticated = Annotated[Caller, Depends(caller)]


async def admin(
    request: Request,
    settings: SettingsDep,
    throttle: ThrottleDep,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if not settings.admin_token:
        raise NotFound("the admin API is disabled: set TIDINGS_ADMIN_TOKEN to enable it")
    if not authorization:
        raise Unauthorized(ADMIN_NEEDS_TOKEN)
    expected = f"Bearer {settings.admin_token}".encode()
    async with throttle.attempt(client_address(request)):
        if not hmac.compare_digest(authorization.encode(), expected):
            raise Unauthorized(ADMIN_NEEDS_TOKEN)


RequestModel = TypeVar("RequestModel", bound=models.Request)


def parse_body(model: type[RequestModel], body: bytes) -> RequestModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
