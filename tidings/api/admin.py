"""The admin API: secret keys and webhook connections, behind TIDINGS_ADMIN_TOKEN."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tidings import models
from tidings.api.deps import admin
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.errors import BadRequest
from tidings.services import SettingsDep, StoreDep
from tidings.webhooks.connections import Connections, CreateConnectionRequest, public_url
from tidings.webhooks.models import (
    Connection,
    ConnectionRequest,
    SigningSecretRequest,
)

#: 404 also while the admin API is disabled.
ADMIN_ERRORS = CREDENTIAL | errors(404)

router = APIRouter(prefix="/admin", dependencies=[Depends(admin)], responses=ADMIN_ERRORS)


def once(request: Request, name: str) -> None:
    if len(request.query_params.getlist(name)) > 1:
        raise BadRequest(f"give {name} once")


@router.post("/keys", response_model=models.SecretKey, responses=JSON_BODY | errors(409))
async def create_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    """Create a secret key; its secret is in this answer and nowhere else."""
    return await store.create_key(body.name, body.env, body.owner)


@router.get("/keys", response_model=list[models.SecretKey], responses=errors(400, 422))
async def list_keys(
    request: Request, store: StoreDep, owner: models.Part | None = None
) -> list[models.SecretKey]:
    """Every key, or one owner's."""
    once(request, "owner")
    return await store.list_keys(owner)


@router.post("/keys/revoke", response_model=models.SecretKey, responses=JSON_BODY)
async def revoke_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    return await store.revoke_key(body.name, body.env, body.owner)


# Webhook connections


async def connections(request: Request, store: StoreDep, settings: SettingsDep) -> Connections:
    return Connections(store.redis, public_url(settings, str(request.base_url)))


ConnectionsDep = Annotated[Connections, Depends(connections)]


@router.post("/connections", response_model=Connection, responses=JSON_BODY)
async def create_connection(body: CreateConnectionRequest, book: ConnectionsDep) -> Connection:
    """Create an inbound endpoint, ``POST /webhooks/{id}`` (its ``url``): what its platform
    sends there becomes events of that platform and ``label``, in ``owner``'s ``env``."""
    return await book.create(body)


@router.get("/connections", response_model=list[Connection], responses=errors(400, 422))
async def list_connections(
    request: Request, book: ConnectionsDep, owner: models.Part | None = None
) -> list[Connection]:
    """Every connection, or one owner's (never their signing secrets)."""
    once(request, "owner")
    return await book.find(owner)


@router.post("/connections/revoke", response_model=Connection, responses=JSON_BODY)
async def revoke_connection(body: ConnectionRequest, book: ConnectionsDep) -> Connection:
    """Its endpoint answers 410 Gone from now on."""
    return await book.revoke(body.id)


@router.post("/connections/update", response_model=Connection, responses=JSON_BODY | errors(409))
async def update_connection(body: SigningSecretRequest, book: ConnectionsDep) -> Connection:
    """Give a connection its signing secret (a platform may show it only once the endpoint
    exists), or a new one."""
    return await book.set_secret(body.id, body.signingSecret)
