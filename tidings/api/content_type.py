"""Every JSON endpoint reads its body as JSON, whatever Content-Type says.

/emit always has; FastAPI reads a body as JSON only under a JSON Content-Type, and
``curl -d`` sends ``application/x-www-form-urlencoded``. The dashboard (/ui) takes forms and
is left alone, as are webhooks (/webhooks), whose Content-Type is stored as it came.
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.ui import PREFIX as DASHBOARD
from tidings.webhooks import PREFIX as WEBHOOKS

JSON = b"application/json"


def is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == JSON or media_type.endswith(b"+json")


class BodiesAreJson:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith((DASHBOARD, WEBHOOKS)):
            headers = scope["headers"]
            content_type = next((v for n, v in headers if n == b"content-type"), None)
            if content_type is None or not is_json(content_type):
                others = [(name, value) for name, value in headers if name != b"content-type"]
                scope = {**scope, "headers": [*others, (b"content-type", JSON)]}
        await self.app(scope, receive, send)
