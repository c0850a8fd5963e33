"""The command line: ``tidings serve``, ``tidings dev`` and ``tidings keys ...``."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn

from tidings import models
from tidings.errors import TidingsError
from tidings.redis_server import redis_url
from tidings.settings import Settings
from tidings.store import Store

T = TypeVar("T")
ENVIRONMENTS = click.Choice(["test", "live"])


def with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    """Run one store action against REDIS_URL or the embedded Redis."""
    settings = Settings()

    async def run(url: str) -> T:
        store = Store.from_url(url, ttl_seconds=settings.ttl_seconds)
        try:
            return await action(store)
        finally:
            await store.close()

    with redis_url(settings.redis_url, settings.data_dir) as url:
        try:
            return asyncio.run(run(url))
        except TidingsError as exc:
            raise click.ClickException(exc.message) from None


@click.group()
def main() -> None:
    """tidings: a self-hosted event bus with Celery workers."""


def _serve(host: str, port: int, workers: int, banner: Callable[[str], None] | None = None) -> None:
    settings = Settings()
    with redis_url(settings.redis_url, settings.data_dir) as url:
        if banner:
            banner(url)
        uvicorn.run(
            "tidings.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning" if banner else "info",
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8000, envvar="PORT", show_default=True, help="Also read from $PORT."
)
@click.option("--workers", default=1, show_default=True, help="HTTP worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the Event API (on an embedded Redis if REDIS_URL is unset)."""
    _serve(host, port, workers)


@main.command()
@click.option("--port", default=8000, envvar="PORT", show_default=True)
def dev(port: int) -> None:
    """Local development: the API on an embedded Redis, with a test key ready to use."""
    secret_file = Path(Settings().data_dir) / "dev-secret"

    def banner(url: str) -> None:
        secret = secret_file.read_text().strip() if secret_file.exists() else ""
        if not secret or not _is_active(url, secret):
            created = with_store(lambda s: s.create_key(f"dev-{_stamp()}", "test"))
            assert created.secret is not None
            secret = created.secret
            secret_file.write_text(secret)
        click.echo(f"tidings is serving on http://127.0.0.1:{port} (Redis at {url})")
        click.echo(f"API docs: http://127.0.0.1:{port}/docs — try:\n")
        click.echo(
            f"  curl -s http://127.0.0.1:{port}/emit -H 'X-Buildable-Secret: {secret}' "
            "-H 'Content-Type: application/json' "
            """-d '{"event": "user.created", "payload": {"email": "ada@example.com"}}'\n"""
        )

    _serve("127.0.0.1", port, 1, banner)


def _stamp() -> str:
    import time

    return time.strftime("%Y%m%d%H%M%S")


def _is_active(url: str, secret: str) -> bool:
    async def check(store: Store) -> bool:
        try:
            await store.authenticate(secret)
            return True
        except TidingsError:
            return False

    return with_store(check)


@main.group()
def keys() -> None:
    """Create, list and revoke secret keys."""


def _print_key(key: models.SecretKey, as_json: bool) -> None:
    if as_json:
        click.echo(key.model_dump_json(exclude_none=True))
        return
    status = "revoked" if key.revokedAt else "active"
    click.echo(f"{key.owner}/{key.env}/{key.name}\t{status}")
    if key.secret:
        click.echo("The secret is shown once; keep it safe:")
        click.echo(key.secret)


@keys.command("create")
@click.option("--name", required=True, help="Also the label of the events it emits.")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--owner", default="default", show_default=True, help="The team it belongs to.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create_key(name: str, env: str, owner: str, as_json: bool) -> None:
    """Create a secret key; the secret is on the last line of output."""
    request = _validated(models.CreateKeyRequest, name=name, env=env, owner=owner)
    _print_key(
        with_store(lambda s: s.create_key(request.name, request.env, request.owner)), as_json
    )


@keys.command("list")
@click.option("--owner", default=None, help="Only this owner's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a line.")
def list_keys(owner: str | None, as_json: bool) -> None:
    """List secret keys (never their secrets)."""
    for key in with_store(lambda s: s.list_keys(owner)):
        _print_key(key, as_json)


@keys.command("revoke")
@click.argument("name")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--owner", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def revoke_key(name: str, env: str, owner: str, as_json: bool) -> None:
    """Revoke a secret key: requests with it get 401 from now on."""
    _print_key(with_store(lambda s: s.revoke_key(name, env, owner)), as_json)


def _validated(model: type[models.Request], **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


if __name__ == "__main__":
    main()
