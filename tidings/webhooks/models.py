"""The shapes of connections and of what their endpoints answer, used by the admin API, the
command line, the dashboard and the receiving route alike."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from tidings.models import Name, Record, Request

#: A header name as HTTP allows it (a token), for the options that name one.
HeaderName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
]
#: A dot-separated path into a JSON body: "type", "data.event".
FieldPath = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Encoding = Literal["hex", "base64"]


def _unset(value: object) -> bool:
    return value is None


class ConnectionOptions(Request):
    """How a `custom` connection reads and checks what it receives; other platforms take none."""

    #: The event's name: a field of the JSON body (a dotted path) ...
    eventNameField: FieldPath | None = None
    #: ... or always this one.
    eventName: Name | None = None
    #: An HMAC-SHA256 of the body, keyed with the signing secret, comes in this header ...
    signatureHeader: HeaderName | None = None
    #: ... encoded so ...
    signatureEncoding: Encoding | None = None
    #: ... after this prefix (e.g. "sha256=").
    signaturePrefix: Annotated[str, StringConstraints(max_length=50)] | None = None
    #: The sender's id of a delivery, the same on every retry, comes in this header.
    idHeader: HeaderName | None = None


class ConnectionRequest(Request):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SigningSecretRequest(ConnectionRequest):
    signingSecret: Secret


class Connection(Record):
    """An inbound endpoint, ``POST /webhooks/{id}``: what arrives there becomes an event of
    its platform and label, in its owner's environment. Its signing secret is never shown."""

    id: str
    platform: str
    label: str
    env: str
    owner: str
    createdAt: int
    revokedAt: int | None = None
    hasSigningSecret: bool
    #: Where the platform sends: TIDINGS_PUBLIC_URL (or the address asked) + /webhooks/{id}.
    url: str
    eventNameField: str | None = Field(default=None, exclude_if=_unset)
    eventName: str | None = Field(default=None, exclude_if=_unset)
    signatureHeader: str | None = Field(default=None, exclude_if=_unset)
    signatureEncoding: Encoding | None = Field(default=None, exclude_if=_unset)
    signaturePrefix: str | None = Field(default=None, exclude_if=_unset)
    idHeader: str | None = Field(default=None, exclude_if=_unset)

    @property
    def options(self) -> ConnectionOptions:
        return ConnectionOptions.model_validate(
            self.model_dump(include=set(ConnectionOptions.model_fields), exclude_none=True)
        )


class DeliveryRecord(Record):
    """One request to a connection's endpoint, as its log keeps it."""

    at: int
    status: int
    #: The event it was stored as (or, for a repeat, the event stored the first time).
    key: str | None = None
    eventName: str | None = None
    duplicate: bool = False
    #: Why it was refused.
    message: str | None = None


class WebhookAccepted(Record):
    status: Literal["success"] = "success"
    key: str
    #: A repeat of a delivery already stored (the same provider id): nothing new was stored,
    #: and ``key`` is the event stored the first time.
    duplicate: bool
