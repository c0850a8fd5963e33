"""The dashboard's static files; their URLs carry a digest of their content
(``pages.static_url``), so browsers may cache them for good."""

from fastapi.responses import FileResponse, Response

from tidings.errors import NotFound
from tidings.ui.pages import STATIC, dashboard_router

router = dashboard_router()


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(STATIC[name], headers={"Cache-Control": "max-age=31536000"})
