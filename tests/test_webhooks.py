"""Connections and their endpoints over the API in-process, the command line and the
dashboard: what is refused and why, what is stored of a request, what is never shown.
tests/test_webhook_platforms.py takes each platform end to end with real processes."""

import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from conftest import stored_event_keys
from fastapi.testclient import TestClient
from test_ui import sign_in
from webhook_senders import SENDERS, Sent

from tidings.api import create_app
from tidings.settings import Settings
from tidings.store import keys
from tidings.work import Scope

ADMIN = {"Authorization": "Bearer admin-secret"}
Snapshot = Callable[[], dict[str, object]]


def create(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"platform": "stripe", "label": "payments", "env": "test", **fields}
    answer = api.post("/admin/connections", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    connection: dict[str, Any] = answer.json()
    return connection


def post(api: TestClient, connection: dict[str, Any], sent: Sent, path: str = "") -> Any:
    return api.post(f"/webhooks/{connection['id']}{path}", content=sent.body, headers=sent.headers)


def rejections(client: redis.Redis, connection: dict[str, Any]) -> list[dict[str, Any]]:
    found = client.lrange(keys.connection_rejections(connection["id"]), 0, -1)
    return [json.loads(r) for r in found]


def events(client: redis.Redis, owner: str = "default", env: str = "test") -> list[str]:
    return stored_event_keys(client, Scope(owner, env))


STRIPE = SENDERS["stripe"]


@pytest.fixture
def stripe(api: TestClient) -> dict[str, Any]:
    return create(api, signingSecret=STRIPE.secret)


# The admin API


def test_a_connection_is_made_listed_given_a_new_secret_and_revoked(
    api: TestClient, redis_client: redis.Redis
) -> None:
    made = create(api, owner="acme", env="live")
    assert len(made["id"]) == 32 and made["url"] == f"http://testserver/webhooks/{made['id']}"
    assert (made["platform"], made["label"], made["env"], made["owner"]) == (
        "stripe",
        "payments",
        "live",
        "acme",
    )
    assert made["hasSigningSecret"] is False and made["revokedAt"] is None
    other = create(api, platform="github", label="repo", signingSecret="s3cret")
    listed = api.get("/admin/connections", headers=ADMIN).json()
    assert [c["id"] for c in listed] == [made["id"], other["id"]]  # by owner, env, creation
    assert [c["id"] for c in api.get("/admin/connections?owner=acme", headers=ADMIN).json()] == [
        made["id"]
    ]
    given = api.post(
        "/admin/connections/update",
        json={"id": made["id"], "signingSecret": "whsec_1"},
        headers=ADMIN,
    )
    assert given.status_code == 200 and given.json()["hasSigningSecret"] is True
    revoked = api.post("/admin/connections/revoke", json={"id": made["id"]}, headers=ADMIN)
    assert type(revoked.json()["revokedAt"]) is int
    again = api.post("/admin/connections/revoke", json={"id": made["id"]}, headers=ADMIN)
    assert again.json()["revokedAt"] == revoked.json()["revokedAt"]
    late = api.post(
        "/admin/connections/update",
        json={"id": made["id"], "signingSecret": "whsec_2"},
        headers=ADMIN,
    )
    assert late.status_code == 409
    everything = json.dumps(api.get("/admin/connections", headers=ADMIN).json())
    assert "s3cret" not in everything and "whsec_1" not in everything


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"platform": "paypal"}, "unknown platform 'paypal'"),
        ({"eventName": "order.created"}, "eventName: only for the custom platform"),
        ({"platform": "custom"}, "give the event's name"),
        ({"platform": "custom", "eventName": "a", "eventNameField": "b"}, "give the event's name"),
        ({"platform": "custom", "eventName": "a", "signingSecret": "s"}, "needs the header"),
        ({"platform": "custom", "eventName": "a", "signaturePrefix": "x"}, "need its header"),
        ({"platform": "standard-webhooks", "signingSecret": "whsec_!!"}, "whsec_ and base64"),
        ({"label": "has space"}, "label"),
        ({"platform": "custom", "eventName": "has space"}, "eventName"),
        ({"platform": "custom", "eventNameField": "a..b"}, "eventNameField"),
        ({"platform": "custom", "eventName": "a", "signatureHeader": "X Sig"}, "signatureHeader"),
        ({"env": "prod"}, "env"),
    ],
)
def test_a_connection_that_cannot_work_is_refused_and_nothing_is_written(
    api: TestClient, snapshot: Snapshot, fields: dict[str, Any], message: str
) -> None:
    before = snapshot()
    body = {"platform": "stripe", "label": "payments", "env": "test", **fields}
    answer = api.post("/admin/connections", json=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["message"]
    assert snapshot() == before


def test_the_admin_api_needs_the_admin_token(api: TestClient, snapshot: Snapshot) -> None:
    before = snapshot()
    body = {"platform": "stripe", "label": "payments", "env": "test"}
    assert api.post("/admin/connections", json=body).status_code == 401
    assert api.get("/admin/connections").status_code == 401
    assert snapshot() == before


# The endpoint


def test_unknown_and_revoked_endpoints_store_nothing(
    api: TestClient, stripe: dict[str, Any], snapshot: Snapshot
) -> None:
    api.post("/admin/connections/revoke", json={"id": stripe["id"]}, headers=ADMIN)
    before = snapshot()
    sent = STRIPE.send("evt_1")
    unknown = api.post("/webhooks/0123456789abcdef0123456789abcdef", content=sent.body)
    assert unknown.status_code == 404
    gone = post(api, stripe, sent)
    assert gone.status_code == 410, gone.text
    assert gone.json()["message"].endswith("has been revoked")
    assert snapshot() == before
    assert api.get(f"/webhooks/{stripe['id']}").status_code == 405


def test_a_connection_without_its_signing_secret_takes_nothing_until_given_it(
    api: TestClient, redis_client: redis.Redis
) -> None:
    connection = create(api)
    sent = STRIPE.send("evt_1")
    refused = post(api, connection, sent)
    assert refused.status_code == 401
    assert "no signing secret yet" in refused.json()["message"]
    assert events(redis_client) == []
    body = {"id": connection["id"], "signingSecret": STRIPE.secret}
    assert api.post("/admin/connections/update", json=body, headers=ADMIN).status_code == 200
    taken = post(api, connection, sent)  # the platform's retry
    assert taken.status_code == 200, taken.text
    assert events(redis_client) == [taken.json()["key"]]


def test_stored_headers_leave_out_hop_by_hop_headers_credentials_and_signatures(
    api: TestClient, stripe: dict[str, Any], headers: dict[str, str]
) -> None:
    sent = STRIPE.send("evt_1")
    extra = {
        "Authorization": "Bearer x",
        "Cookie": "a=b",
        "X-Buildable-Secret": "sk_test_x",
        "Proxy-Authorization": "Basic eA==",
        "Proxy-Anything": "x",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Upgrade": "h2c",
        "Connection": "keep-alive, X-Named-Hop",
        "X-Named-Hop": "x",
        "X-Kept": "yes",
    }
    answer = api.post(
        f"/webhooks/{stripe['id']}?a=1&b=2&b=3&empty=",
        content=sent.body,
        headers={**sent.headers, **extra},
    )
    assert answer.status_code == 200, answer.text
    event = api.get(f"/events/{answer.json()['key']}", headers=headers).json()
    assert event["headers"]["x-kept"] == "yes"
    assert event["headers"]["content-type"] == "application/json; charset=utf-8"
    kept = {name.lower() for name in extra} & set(event["headers"])
    assert kept == {"x-kept"}
    assert "stripe-signature" not in event["headers"]
    assert event["query"] == {"a": "1", "b": ["2", "3"], "empty": ""}
    assert event["ownership"]["clientId"] == "payments"
    assert event["history"][0]["updatedBy"] == "stripe.payments"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"not json", 400, "the body is not JSON"),
        (b'{"id": "evt_1"}', 422, "Stripe sends its events with a 'type' text field"),
        (b'{"id": "evt_1", "type": "has space"}', 422, "cannot be an event's name"),
        (b'{"id": "evt_1", "type": "' + b"x" * 201 + b'"}', 422, "cannot be an event's name"),
    ],
    ids=["not json", "no type", "a space", "too long"],
)
def test_a_signed_body_that_is_no_event_is_refused_logged_and_not_stored(
    api: TestClient,
    stripe: dict[str, Any],
    snapshot: Snapshot,
    redis_client: redis.Redis,
    body: bytes,
    status: int,
    message: str,
) -> None:
    log_key = keys.connection_rejections(stripe["id"])
    before = {k: v for k, v in snapshot().items() if k != log_key}
    signed = Sent(body, STRIPE.sign(body, "evt_1", int(time.time()), STRIPE.secret))
    answer = post(api, stripe, signed)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]
    assert {k: v for k, v in snapshot().items() if k != log_key} == before
    [refused] = rejections(redis_client, stripe)
    assert (refused["status"], refused["message"]) == (status, answer.json()["message"])


def test_a_body_over_the_limit_is_413_and_nothing_is_stored(
    settings: Settings, snapshot: Snapshot
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1000})
    with TestClient(create_app(small)) as api:
        connection = create(api, platform="custom", eventName="big")
        before = snapshot()
        big = Sent(json.dumps({"fill": "x" * 2000}).encode(), {})
        assert post(api, connection, big).status_code == 413
        chunks = api.post(
            f"/webhooks/{connection['id']}", content=iter([b'{"fill": "', b"x" * 2000, b'"}'])
        )
        assert chunks.status_code == 413  # no Content-Length: counted as it comes
        assert snapshot() == before


def test_custom_takes_any_json_and_names_its_events_as_told(
    api: TestClient, redis_client: redis.Redis, headers: dict[str, str]
) -> None:
    fixed = create(api, platform="custom", label="forms", eventName="form.submitted")
    nested = create(api, platform="custom", label="crm", eventNameField="data.kind")
    plain = api.post(f"/webhooks/{fixed['id']}", content=b'{"name": "Ada"}')
    assert plain.status_code == 200, plain.text
    deep = api.post(f"/webhooks/{nested['id']}", content=b'{"data": {"kind": "lead.won"}}')
    assert deep.status_code == 200, deep.text
    missing = api.post(f"/webhooks/{nested['id']}", content=b'{"data": {"kind": 3}}')
    assert missing.status_code == 422
    names = [
        api.get(f"/events/{a.json()['key']}", headers=headers).json()["fullName"]
        for a in (plain, deep)
    ]
    assert names == ["custom.forms.form.submitted", "custom.crm.lead.won"]
    # Without an id header, every request is an event of its own.
    again = api.post(f"/webhooks/{fixed['id']}", content=b'{"name": "Ada"}')
    assert again.json()["duplicate"] is False
    assert len(events(redis_client)) == 3


def test_custom_base64_signatures(api: TestClient) -> None:
    connection = create(
        api,
        platform="custom",
        eventName="ping",
        signatureHeader="X-Sig",
        signatureEncoding="base64",
        signingSecret="k",
    )
    body = b'{"n": 1}'
    good = base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()
    hexed = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert post(api, connection, Sent(body, {"X-Sig": hexed})).status_code == 401
    assert post(api, connection, Sent(body, {"X-Sig": good})).status_code == 200


def test_github_form_encoded_deliveries_carry_their_json_in_payload(
    api: TestClient, headers: dict[str, str]
) -> None:
    github = SENDERS["github"]
    connection = create(api, platform="github", label="repo", signingSecret=github.secret)
    form = b"payload=%7B%22action%22%3A%22closed%22%2C%22number%22%3A2%7D"
    signed = github.sign(form, "d-1", 0, github.secret)
    signed["Content-Type"] = "application/x-www-form-urlencoded"
    answer = post(api, connection, Sent(form, signed))
    assert answer.status_code == 200, answer.text
    event = api.get(f"/events/{answer.json()['key']}", headers=headers).json()
    assert (event["eventName"], event["payload"]) == (
        "issues.closed",
        {"action": "closed", "number": 2},
    )


def test_a_github_event_without_an_action_is_named_by_its_header_alone(
    api: TestClient, headers: dict[str, str]
) -> None:
    github = SENDERS["github"]
    connection = create(api, platform="github", label="repo", signingSecret=github.secret)
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    signed = {**github.sign(body, "d-2", 0, github.secret), "X-GitHub-Event": "ping"}
    answer = post(api, connection, Sent(body, signed))
    assert answer.status_code == 200, answer.text
    assert api.get(f"/events/{answer.json()['key']}", headers=headers).json()["eventName"] == "ping"


def test_no_signing_secret_is_logged_or_shown(
    api: TestClient, caplog: pytest.LogCaptureFixture, cli: Callable[..., Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    connection = create(api, signingSecret=STRIPE.secret)
    wrong = post(api, connection, STRIPE.send("evt_1", secret="whsec_other"))
    right = post(api, connection, STRIPE.send("evt_1"))
    assert (wrong.status_code, right.status_code) == (401, 200)
    assert "refused a request to stripe.payments" in caplog.text
    listed = cli("connections", "list", "--json").stdout
    shown = [
        caplog.text,
        wrong.text,
        right.text,
        listed,
        api.get("/admin/connections", headers=ADMIN).text,
    ]
    assert not any(STRIPE.secret in text for text in shown)


# The command line


@pytest.fixture
def cli(redis_url: str, redis_client: redis.Redis) -> Iterator[Callable[..., Any]]:
    env = {**os.environ, "REDIS_URL": redis_url, "TIDINGS_PUBLIC_URL": "https://events.example.com"}

    def run(*args: str, **more_env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tidings.cli", *args]
        done = subprocess.run(
            command, env={**env, **more_env}, capture_output=True, text=True, timeout=30
        )
        return done

    yield run


def test_the_command_line_creates_lists_updates_and_revokes_connections(
    cli: Callable[..., Any], api: TestClient, redis_client: redis.Redis
) -> None:
    made = cli(
        "connections", "create", "--platform", "stripe", "--label", "payments", "--env", "test"
    )
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    connection_id = lines[-1]
    assert f"https://events.example.com/webhooks/{connection_id}" in made.stdout
    assert "no signing secret" in lines[0]
    custom = cli(
        "connections", "create", "--platform", "custom", "--label", "crm", "--env", "live",
        "--owner", "acme", "--event-name-field", "data.kind", "--id-header", "X-Id", "--json",
    )  # fmt: skip
    assert custom.returncode == 0, custom.stderr
    [line] = custom.stdout.splitlines()
    shown = json.loads(line)
    assert shown["url"] == f"https://events.example.com/webhooks/{shown['id']}"
    assert (shown["owner"], shown["env"], shown["eventNameField"], shown["idHeader"]) == (
        "acme",
        "live",
        "data.kind",
        "X-Id",
    )
    updated = cli(
        "connections", "update", connection_id, "--json", TIDINGS_SIGNING_SECRET=STRIPE.secret
    )
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["hasSigningSecret"] is True
    assert post(api, {"id": connection_id}, STRIPE.send("evt_1")).status_code == 200
    revoked = cli("connections", "revoke", connection_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    listed = [json.loads(line) for line in cli("connections", "list", "--json").stdout.splitlines()]
    assert {c["id"]: c["revokedAt"] is not None for c in listed} == {
        connection_id: True,
        shown["id"]: False,
    }
    acme = cli("connections", "list", "--owner", "acme").stdout
    assert shown["id"] in acme and connection_id not in acme


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["--platform", "paypal", "--label", "p", "--env", "test"], 2, "paypal"),
        (["--platform", "custom", "--label", "p", "--env", "test"], 1, "give the event's name"),
        (["--platform", "stripe", "--label", "has space", "--env", "test"], 2, "label"),
        (
            ["--platform", "stripe", "--label", "p", "--env", "test", "--event-name", "x"],
            1,
            "only for",
        ),
    ],
    ids=["unknown platform", "custom without a name", "bad label", "custom option"],
)
def test_refused_connections_exit_non_zero_and_write_nothing(
    cli: Callable[..., Any], snapshot: Snapshot, args: list[str], exit_code: int, message: str
) -> None:
    before = snapshot()
    done = cli("connections", "create", *args)
    assert done.returncode == exit_code, done.stderr
    assert message in done.stderr and done.stdout == ""
    assert snapshot() == before


# The dashboard


def test_the_connections_page_shows_each_endpoint_with_its_last_deliveries_and_rejections(
    api: TestClient, stripe: dict[str, Any], new_secret: Callable[..., str]
) -> None:
    elsewhere = create(api, platform="github", label="repo", env="live")
    taken = post(api, stripe, STRIPE.send("evt_1"), "?campaign=spring")
    post(api, stripe, STRIPE.send("evt_1"))  # a repeat
    post(api, stripe, STRIPE.send("evt_2", secret="whsec_wrong"))
    sign_in(api, new_secret("shop"))
    page = api.get("/ui/connections")
    assert page.status_code == 200
    html = page.text
    assert f"http://testserver/webhooks/{stripe['id']}" in html
    assert elsewhere["id"] not in html  # another environment's
    assert f"/ui/events/{taken.json()['key']}" in html
    assert "a repeat: stored before" in html
    assert "no v1 signature of Stripe-Signature matches the signing secret" in html
    assert STRIPE.secret not in html
    event = api.get(f"/ui/events/{taken.json()['key']}").text
    assert "stripe.payments.invoice.paid" in event
    assert "Stripe/1.0 (+https://stripe.com/docs/webhooks)" in event  # its headers
    assert "spring" in event  # and its query
