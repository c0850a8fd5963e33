"""What the API's routes depend on: the caller behind a secret key, the admin token, and a
body read straight into its model. Every credential presented is checked through the
throttle on failed authentication."""

import hmac
import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from tidings import models
from tidings.auth import MISSING_SECRET, Caller
from tidings.errors import NotFound, Unauthorized
from tidings.services import SettingsDep, StoreDep, ThrottleDep
from tidings.throttle import client_address

SECRET_HEADER = "X-Buildable-Secret"
ADMIN_NEEDS_TOKEN = "admin endpoints need Authorization: Bearer <TIDINGS_ADMIN_TOKEN>"

secret_key = APIKeyHeader(
    name=SECRET_HEADER,
    scheme_name="SecretKey",
    description="A secret key: `tidings keys create`, or POST /admin/keys.",
    auto_error=False,
)
admin_token = HTTPBearer(
    scheme_name="AdminToken",
    description="TIDINGS_ADMIN_TOKEN; the admin API answers 404 while it is unset.",
    auto_error=False,
)


async def present_secret(secret: Annotated[str | None, Security(secret_key)]) -> str:
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
    token: Annotated[HTTPAuthorizationCredentials | None, Security(admin_token)],
) -> None:
    if not settings.admin_token:
        raise NotFound("the admin API is disabled: set TIDINGS_ADMIN_TOKEN to enable it")
    if token is None:
        raise Unauthorized(ADMIN_NEEDS_TOKEN)
    async with throttle.attempt(client_address(request)):
        if not hmac.compare_digest(token.credentials.encode(), settings.admin_token.encode()):
            raise Unauthorized(ADMIN_NEEDS_TOKEN)


RequestModel = TypeVar("RequestModel", bound=models.Request)


def parse_body(model: type[RequestModel], body: bytes) -> RequestModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


#: An empty body, as `json_body` reads it.
NO_BODY = object()


def json_body(body: bytes) -> Any:
    """A body read as FastAPI reads the JSON body of a route's model, for a route that
    reads its own and must answer alike: malformed JSON is refused at once (400)."""
    if not body:
        return NO_BODY
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}
        raise RequestValidationError([error]) from None
    except Exception:  # not UTF-8, or nested too deep
        raise HTTPException(400, "There was an error parsing the body") from None


def body_model(model: type[RequestModel], body: Any) -> RequestModel:
    """A `json_body` read into its model, as FastAPI validates a route's body."""
    if body is NO_BODY:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
        raise RequestValidationError([missing])
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
