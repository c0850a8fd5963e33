"""Who a request comes from: the holder of a secret key (Caller) or a dashboard sign-in
(Session), and the messages that turn the others away (401)."""

from dataclasses import dataclass

from tidings.work import Scope

MISSING_SECRET = "missing secret key: send it in the X-Buildable-Secret header"
UNKNOWN_SECRET = "unknown secret key"
REVOKED_SECRET = "this secret key has been revoked"
NO_SESSION = "not signed in, or the session has expired"


@dataclass(frozen=True)
class Caller:
    """Who is calling, as their secret key says: the key's name is the label of what it emits."""

    name: str
    env: str
    owner: str

    @property
    def scope(self) -> Scope:
        return Scope(self.owner, self.env)


@dataclass(frozen=True)
class Session:
    """A dashboard sign-in: who it is, and the token its state-changing requests carry."""

    id: str
    caller: Caller
    csrf: str
