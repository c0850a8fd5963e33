"""/metrics: the whole deployment's metrics, in Prometheus' text format."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tidings import metrics
from tidings.errors import Unauthorized
from tidings.services import SettingsDep, StoreDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(
    store: StoreDep, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    if settings.metrics_token:
        expected = f"Bearer {settings.metrics_token}"
        if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise Unauthorized("/metrics needs Authorization: Bearer <TIDINGS_METRICS_TOKEN>")
    registry = metrics.registry_of(await metrics.read(store))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
