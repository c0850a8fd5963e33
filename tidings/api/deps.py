"""What the API's routes depend on: the caller behind a secret key, the admin token, and a
body read straight into its model."""

import hmac
from typing import Annotated, TypeVar

from fastapi import Depends, Header
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tidings import models
from tidings.errors import NotFound, Unauthorized
from tidings.services import SettingsDep, StoreDep
from tidings.store import MISSING_SECRET, Caller

SECRET_HEADER = "X-Buildable-Secret"

SecretHeader = Annotated[str | None, Header(alias=SECRET_HEADER)]


async def present_secret(secret: SecretHeader = None) -> str:
    """A secret was sent (checked before the body is looked at); its check is later."""
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    return secret


async def caller(store: StoreDep, secret: SecretHeader = None) -> Caller:
    return await store.authenticate(secret)


PresentSecret = Annotated[str, Depends(present_secret)]
Authenticated = Annotated[Caller, Depends(caller)]


async def admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    if not settings.admin_token:
        raise NotFound("the admin API is disabled: set TIDINGS_ADMIN_TOKEN to enable it")
    expected = f"Bearer {settings.admin_token}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Unauthorized("admin endpoints need Authorization: Bearer <TIDINGS_ADMIN_TOKEN>")


RequestModel = TypeVar("RequestModel", bound=models.Request)


def parse_body(model: type[RequestModel], body: bytes) -> RequestModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
