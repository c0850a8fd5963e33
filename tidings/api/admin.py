"""The admin API: secret keys, behind TIDINGS_ADMIN_TOKEN."""

from fastapi import APIRouter, Depends

from tidings import models
from tidings.api.deps import admin
from tidings.services import StoreDep

router = APIRouter(prefix="/admin", dependencies=[Depends(admin)])


@router.post("/keys", response_model=models.SecretKey)
async def create_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    """Create a secret key; its secret is in this answer and nowhere else."""
    return await store.create_key(body.name, body.env, body.owner)


@router.get("/keys", response_model=list[models.SecretKey])
async def list_keys(store: StoreDep, owner: str | None = None) -> list[models.SecretKey]:
    return await store.list_keys(owner)


@router.post("/keys/revoke", response_model=models.SecretKey)
async def revoke_key(body: models.CreateKeyRequest, store: StoreDep) -> models.SecretKey:
    return await store.revoke_key(body.name, body.env, body.owner)
