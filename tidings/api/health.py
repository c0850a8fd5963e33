"""/health: whether this process can reach Redis."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings.api.errors import error_response
from tidings.services import StoreDep

router = APIRouter()


@router.get("/health")
async def health(store: StoreDep) -> JSONResponse:
    try:
        await store.ping()
    except Exception as exc:  # any failure to reach Redis is what this reports
        return error_response(503, f"redis unreachable: {exc}", redis="down")
    return JSONResponse({"status": "ok", "redis": "ok"})
