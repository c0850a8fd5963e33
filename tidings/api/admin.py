"""The admin API: secret keys, behind TIDINGS_ADMIN_TOKEN."""

from fastapi import APIRouter, Depends, Request

from tidings import models
from tidings.api.deps import admin
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.errors import BadRequest
from tidings.services import StoreDep

#: 404 also while the admin API is disabled.
ADMIN_ERRORS = CREDENTIAL | errors(404)

router = APIRouter(prefix="/admin", dependencies=[Depends(admin)], responses=ADMIN_ERRORS)


@router.post("/keys", response_model=models.SecretKey, responses=JSON_BODY | errors(409))
async def create_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    """Create a secret key; its secret is in this answer and nowhere else."""
    return await store.create_key(body.name, body.env, body.owner)


@router.get("/keys", response_model=list[models.SecretKey], responses=errors(400, 422))
async def list_keys(
    request: Request, store: StoreDep, owner: models.Part | None = None
) -> list[models.SecretKey]:
    """Every key, or one owner's."""
    if len(request.query_params.getlist("owner")) > 1:
        raise BadRequest("give owner once")
    return await store.list_keys(owner)


@router.post("/keys/revoke", response_model=models.SecretKey, responses=JSON_BODY)
async def revoke_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    return await store.revoke_key(body.name, body.env, body.owner)
