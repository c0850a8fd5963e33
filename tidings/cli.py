"""The command line: ``tidings serve``, ``subscribe``, ``dev``, ``keys ...``,
``connections ...`` and more."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn
from redis.exceptions import RedisError

from tidings import models
from tidings.celery_app import create_celery, publish
from tidings.errors import TidingsError
from tidings.handlers import Handler, discover, subscriptions
from tidings.redis_server import NoDataFolder, redis_url
from tidings.settings import Settings
from tidings.store import Store
from tidings.webhooks.connections import (
    Connections,
    CreateConnectionRequest,
    awaiting_secret,
    public_url,
)
from tidings.webhooks.models import Connection
from tidings.webhooks.platforms import PLATFORMS
from tidings.work import Scope, WorkItem

T = TypeVar("T")
ENVIRONMENTS = click.Choice(["test", "live"])
#: After SIGTERM, how long `tidings serve` lets in-flight requests run before it cancels them,
#: runs the app's shutdown (publishing what the dispatcher holds) and exits: well within the
#: 30 s a PaaS such as Heroku gives a process before SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 20
#: What a PaaS (SIGTERM) or a terminal (SIGINT) stops `tidings serve` and `tidings dev` with.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: How `tidings dev` runs a worker: the Procfile's worker line, from the project folder.
WORKER_ARGS = ["-A", "workers", "worker", "--without-mingle", "--without-gossip"]
#: How long `tidings dev` lets its worker's running handlers finish (a warm shutdown) before
#: it kills the worker, so as never to leave it running without the Redis it stops.
DEV_WORKER_STOP_SECONDS = 30


def with_store(action: Callable[[Store], Awaitable[T]], url: str | None = None) -> T:
    """Run one store action against ``url``, REDIS_URL or the embedded Redis, once its data
    is known to be of this tidings' schema; the schema is recorded once the action is done
    (a refused one writes nothing)."""
    settings = Settings()

    async def run(url: str) -> T:
        store = Store.from_settings(settings.model_copy(update={"redis_url": url}))
        try:
            await store.check_schema(record=False)
            done = await action(store)
            await store.record_schema()
            return done
        finally:
            await store.close()

    with _command_redis(settings, url) as resolved:
        try:
            return asyncio.run(run(resolved))
        except TidingsError as exc:
            raise click.ClickException(exc.message) from None


@contextlib.contextmanager
def _command_redis(settings: Settings, url: str | None = None) -> Iterator[str]:
    """The Redis of a command other than `serve` and `dev`: ``url``, REDIS_URL or the
    project's embedded one; outside a project folder (no data folder) it says so and makes
    nothing."""
    try:
        with redis_url(url or settings.redis_url, settings.data_dir, create=False) as resolved:
            yield resolved
    except NoDataFolder as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """tidings: a self-hosted event bus with Celery workers."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8000, envvar="PORT", show_default=True, help="Also read from $PORT."
)
@click.option("--workers", default=1, show_default=True, help="HTTP worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the Event API (on an embedded Redis if REDIS_URL is unset)."""
    settings = Settings()
    with redis_url(settings.redis_url, settings.data_dir) as url:
        _check_redis(url)
        _subscribe_handlers(settings.model_copy(update={"redis_url": url}))
        _serve_api(host=host, port=port, workers=workers)


def _check_redis(url: str) -> None:
    """Before serving: Redis answers, and holds no data of another schema (with_store
    checks it), or the command stops here, saying what to do."""
    try:
        with_store(lambda store: store.ping(), url)
    except RedisError as exc:
        raise click.ClickException(f"could not reach Redis: {exc}") from None


def _serve_api(**options: Any) -> None:
    """Serve the API with uvicorn until SIGTERM or SIGINT, then return.

    uvicorn stops gracefully on either signal (in-flight requests answered, then the app's
    shutdown), and then raises it again for whoever handled it before. By default that would
    kill this process there, with exit code 143 and before an embedded Redis is stopped;
    here it ends the command normally instead, its clean-up done.
    """
    previous = {sig: signal.signal(sig, _exit_cleanly) for sig in STOP_SIGNALS}
    try:
        uvicorn.run(
            "tidings.api:create_app",
            factory=True,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **options,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@main.command()
@click.option("--port", default=8000, envvar="PORT", show_default=True)
@click.option("--worker/--no-worker", default=True, show_default=True, help="Run a worker too.")
def dev(port: int, worker: bool) -> None:
    """Local development: Redis (embedded unless REDIS_URL is set), the API and a worker,
    with a test key ready to use."""
    settings = Settings()
    with redis_url(settings.redis_url, settings.data_dir) as url:
        _check_redis(url)
        secret = _dev_secret(url, Path(settings.data_dir) / "dev-secret")
        # As `serve` does: events emitted before a worker is ready wait for its handlers.
        _subscribe_handlers(settings.model_copy(update={"redis_url": url}))
        process = None
        if worker:
            command = [sys.executable, "-m", "celery", *WORKER_ARGS, "--loglevel=info"]
            process = subprocess.Popen(command, env={**os.environ, "REDIS_URL": url})
        click.echo(f"\ntidings: API on http://127.0.0.1:{port} (docs at /docs), Redis at {url}")
        click.echo("Emit an event:\n")
        click.echo(
            f"  curl -s http://127.0.0.1:{port}/emit -H 'X-Buildable-Secret: {secret}' "
            "-H 'Content-Type: application/json' "
            """-d '{"event": "user.created", "payload": {"email": "ada@example.com"}}'\n"""
        )
        click.echo(
            f"then see its transactions: curl -s http://127.0.0.1:{port}/events/<key> "
            f"-H 'X-Buildable-Secret: {secret}'\n"
        )
        click.echo(f"or in the dashboard: http://127.0.0.1:{port}/ui, signed in with that key\n")
        try:
            _serve_api(host="127.0.0.1", port=port)
        finally:
            if process is not None:
                _stop_worker(process)


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Stop `tidings dev`'s worker: warmly, or, once DEV_WORKER_STOP_SECONDS are over (or at
    a second Ctrl+C), by SIGKILL (its pool processes die with it: Celery has them killed
    when their parent dies); either way it has ended when this returns."""
    process.terminate()
    try:
        process.wait(timeout=DEV_WORKER_STOP_SECONDS)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        click.echo(f"tidings: killing the worker (pid {process.pid}), its handlers unfinished")
        process.kill()
        process.wait()


def _dev_secret(url: str, secret_file: Path) -> str:
    """The secret of the "dev" test key, kept in the data dir; made anew if it is gone."""
    secret = secret_file.read_text().strip() if secret_file.exists() else ""

    async def ensure(store: Store) -> str:
        try:
            await store.authenticate(secret)
            return secret
        except TidingsError:
            created = await store.create_key("dev", "test")
            assert created.secret is not None
            return created.secret

    secret = with_store(ensure, url)
    secret_file.write_text(secret)
    return secret


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


@main.group()
def connections() -> None:
    """Create, list and revoke inbound webhook endpoints (POST /webhooks/{id})."""


def with_connections(action: Callable[[Connections], Awaitable[T]]) -> T:
    """Run one action on the connections, whose URLs start with TIDINGS_PUBLIC_URL."""
    base_url = public_url(Settings())
    return with_store(lambda store: action(Connections(store.redis, base_url)))


def _print_connection(connection: Connection, as_json: bool) -> None:
    if as_json:
        click.echo(connection.model_dump_json())
        return
    status = "revoked" if connection.revokedAt else "active"
    if connection.revokedAt is None and awaiting_secret(connection):
        status += ", no signing secret: it takes nothing yet"
    name = f"{connection.platform}.{connection.label}"
    click.echo(f"{connection.id}\t{connection.owner}/{connection.env}\t{name}\t{status}")
    click.echo(f"  {connection.url}")


@connections.command("create")
@click.option("--platform", type=click.Choice(list(PLATFORMS)), required=True)
@click.option("--label", required=True, help="Its events are <platform>.<label>.<eventName>.")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--owner", default="default", show_default=True, help="The team it belongs to.")
@click.option(
    "--signing-secret",
    envvar="TIDINGS_SIGNING_SECRET",
    help="The secret the platform signs with (also read from $TIDINGS_SIGNING_SECRET).",
)
@click.option("--event-name-field", help="custom: the body's field (a dotted path) naming it.")
@click.option("--event-name", help="custom: the one name of its events.")
@click.option("--signature-header", help="custom: the header an HMAC-SHA256 of the body is in.")
@click.option("--signature-encoding", type=click.Choice(["hex", "base64"]), help="custom.")
@click.option("--signature-prefix", help='custom: what comes before it, e.g. "sha256=".')
@click.option("--id-header", help="custom: the header with the sender's id of a delivery.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create_connection(as_json: bool, **options: str | None) -> None:
    """Create an inbound endpoint; its id is on the last line of output."""
    request = _validated(
        CreateConnectionRequest,
        **{_camel(name): value for name, value in options.items() if value is not None},
    )
    connection = with_connections(lambda book: book.create(request))
    _print_connection(connection, as_json)
    if not as_json:
        click.echo(f"Give {connection.platform} the endpoint above; this connection's id:")
        click.echo(connection.id)


def _camel(option: str) -> str:
    first, *rest = option.split("_")
    return first + "".join(word.title() for word in rest)


@connections.command("list")
@click.option("--owner", default=None, help="Only this owner's connections.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a line.")
def list_connections(owner: str | None, as_json: bool) -> None:
    """List connections (never their signing secrets)."""
    for connection in with_connections(lambda book: book.find(owner)):
        _print_connection(connection, as_json)


@connections.command("revoke")
@click.argument("connection_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
def revoke_connection(connection_id: str, as_json: bool) -> None:
    """Revoke a connection: its endpoint answers 410 Gone from now on."""
    _print_connection(with_connections(lambda book: book.revoke(connection_id)), as_json)


@connections.command("update")
@click.argument("connection_id", metavar="ID")
@click.option(
    "--signing-secret",
    envvar="TIDINGS_SIGNING_SECRET",
    required=True,
    help="The secret the platform signs with (also read from $TIDINGS_SIGNING_SECRET).",
)
@click.option("--json", "as_json", is_flag=True)
def update_connection(connection_id: str, signing_secret: str, as_json: bool) -> None:
    """Give a connection its signing secret (a platform may show it only once the endpoint
    exists), or a new one."""
    connection = with_connections(lambda book: book.set_secret(connection_id, signing_secret))
    _print_connection(connection, as_json)


@main.command()
@click.argument("key", required=False)
@click.option("--tx-key", required=True, help="The handler's txKey.")
@click.option("--failed", "all_failed", is_flag=True, help="All its failed transactions.")
@click.option("--event-name", default=None, help="With --failed: only events of this name.")
@click.option("--env", "env", type=ENVIRONMENTS, required=True)
@click.option("--owner", default="default", show_default=True)
def rerun(
    key: str | None, tx_key: str, all_failed: bool, event_name: str | None, env: str, owner: str
) -> None:
    """Re-run the failed transaction of handler TX_KEY on event KEY, or with --failed all of
    its failed transactions, through the workers."""
    if bool(key) == all_failed:
        raise click.UsageError("give an event KEY or --failed, not both")
    settings = Settings()
    scope = Scope(owner, env)
    if all_failed:
        request = _validated(models.RerunFailedRequest, txKey=tx_key, eventName=event_name)

        def action(store: Store) -> Awaitable[list[tuple[WorkItem, str]]]:
            return store.rerun_failed(scope, request, actor="cli", lease_ms=settings.lease_ms)
    else:

        def action(store: Store) -> Awaitable[list[tuple[WorkItem, str]]]:
            return store.rerun(scope, str(key), tx_key, actor="cli", lease_ms=settings.lease_ms)

    with _command_redis(settings) as url:
        items = with_store(action, url)
        celery = create_celery(
            settings.model_copy(update={"redis_url": url}), import_handlers=False
        )
        publish(celery, items, batch=settings.dispatch_batch)
    for item, _ in items:
        click.echo(f"{item.key}\t{item.tx_key}")
    click.echo(f"{len(items)} transaction(s) handed to the workers again", err=True)


@main.command()
@click.argument("tx_key")
@click.option("--env", "envs", type=ENVIRONMENTS, multiple=True, help="Default: test and live.")
def unsubscribe(tx_key: str, envs: tuple[str, ...]) -> None:
    """Forget handler TX_KEY after removing it from the code: events emitted from now on do
    not wait for it. Run it once every worker of the old code has stopped: a worker that
    still has it subscribes it again within a heartbeat."""
    environments = list(envs) or ["test", "live"]
    forgotten = with_store(lambda store: store.unsubscribe(tx_key, environments))
    if not forgotten:
        raise click.ClickException(f"no handler {tx_key!r} is subscribed in {environments}")
    click.echo(f"{tx_key} unsubscribed in {', '.join(forgotten)}")


@main.command()
def subscribe() -> None:
    """Register the handlers of TIDINGS_HANDLERS, as `tidings serve` and workers do when they
    start: events emitted from now on wait for them, whichever process starts first (run it
    in a Procfile's release phase)."""
    settings = Settings()
    with _command_redis(settings) as url:
        handlers = _subscribe_handlers(settings.model_copy(update={"redis_url": url}))
    for handler in handlers:
        click.echo(f"{handler.tx_key}\t{handler.event_name}\t{handler.queue}")


def _subscribe_handlers(settings: Settings) -> list[Handler]:
    """Import TIDINGS_HANDLERS from the current folder (as `celery -A` does), register their
    subscriptions, and hand the events they must catch up on to the workers."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        handlers = discover(settings.handler_modules)
    except ModuleNotFoundError as exc:
        if "handlers" not in settings.model_fields_set and exc.name == settings.handlers:
            # The default, in a folder without a handlers package: an API of its own.
            click.echo(f"tidings: no {exc.name!r} package here: no handlers registered", err=True)
            return []
        raise click.ClickException(
            f"TIDINGS_HANDLERS={settings.handlers!r}: {exc}. Run this from the project's "
            "folder, or set TIDINGS_HANDLERS= (empty) to register no handlers."
        ) from None
    subs = subscriptions(settings.owner_list)
    try:
        items = with_store(
            lambda store: store.subscribe(subs, settings.environment_list), settings.redis_url
        )
    except RedisError as exc:
        raise click.ClickException(f"could not register the handlers in Redis: {exc}") from None
    if items:
        publish(
            create_celery(settings, import_handlers=False), items, batch=settings.dispatch_batch
        )
    click.echo(
        f"tidings: {len(handlers)} handler(s) subscribed in {', '.join(settings.environment_list)}"
        f"; {len(items)} waiting transaction(s) handed to the workers",
        err=True,
    )
    return handlers


def _validated(model: type[models.Request], **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


if __name__ == "__main__":
    main()
