"""A transaction's life: claim it (init), finish it (transact), or set its state (update)."""

from fastapi import APIRouter

from tidings import models
from tidings.api.deps import Authenticated
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.services import StoreDep

router = APIRouter(responses=CREDENTIAL)


@router.post("/init", response_model=models.Transaction, responses=JSON_BODY | errors(404, 409))
async def init(body: models.InitRequest, who: Authenticated, store: StoreDep) -> models.Transaction:
    """Claim a transaction: 409 if (key, txKey) exists already."""
    return await store.init(who.scope, body.key, body.txKey, actor=who.name)


@router.post("/transact", response_model=models.Transaction, responses=JSON_BODY | errors(404, 409))
async def transact(
    body: models.TransactRequest, who: Authenticated, store: StoreDep
) -> models.Transaction:
    """Finish a claimed transaction with its output and final state."""
    return await store.transact(
        who.scope, body.key, body.txKey, body.state, body.output, actor=who.name
    )


@router.post("/update", response_model=models.Event, responses=JSON_BODY | errors(404))
async def update(body: models.UpdateRequest, who: Authenticated, store: StoreDep) -> models.Event:
    """Set the state of the (key, txKey) transaction directly, creating it if needed."""
    return await store.update(
        who.scope, body.key, body.eventName, body.txKey, body.txState, actor=who.name
    )
