"""The deployment's settings, read from the environment.

``REDIS_URL`` keeps the name PaaS add-ons set; everything else is prefixed ``TIDINGS_``.
Where ``REDIS_URL`` is unset, the command line starts an embedded Redis server.
"""

from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidings.redis_tls import CertReqs, with_tls_options

THIRTY_DAYS = 30 * 24 * 3600
#: A worker's canary timeout spans at least this many of its canary intervals.
MIN_CANARY_INTERVALS = 3


class Settings(BaseSettings):
    # Errors never echo the input: REDIS_URL and the admin token hold secrets.
    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_", extra="ignore", hide_input_in_errors=True
    )

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TIDINGS_REDIS_URL")
    )
    #: How a rediss:// URL (store or broker) checks the server's certificate where its own
    #: ``ssl_cert_reqs`` does not say: for a PaaS whose add-on sets REDIS_URL itself.
    redis_ssl_cert_reqs: CertReqs = "required"
    #: Where the embedded Redis keeps its data when REDIS_URL is unset.
    data_dir: str = ".tidings"
    #: How many partitions each owner's events in an environment are spread over, by event
    #: key: one busy owner can use every node of a Redis Cluster.
    partitions: int = Field(default=1, ge=1, le=4096)
    #: REDIS_URL names a node of a Redis Cluster (the store then uses redis-py's cluster
    #: client; the broker must be TIDINGS_BROKER_URL).
    redis_cluster: bool = False
    #: Retention of events and their transactions, in seconds.
    ttl_seconds: int = Field(default=THIRTY_DAYS, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Guards the /admin endpoints; they answer 404 while it is unset.
    admin_token: str | None = None
    #: How long a dashboard sign-in lasts, in seconds.
    session_seconds: int = Field(default=8 * 3600, gt=0)

    #: Where webhook senders reach this API (https://events.example.com): the start of the
    #: endpoints' URLs that connections show. Unset: the address a request came to (the
    #: command line: http://localhost:8000).
    public_url: str | None = None

    #: Guards GET /metrics (Authorization: Bearer <token>); while unset it is open, like /health.
    metrics_token: str | None = None

    # Workers
    #: The Celery broker, when it is not REDIS_URL (e.g. amqp://... for RabbitMQ).
    broker_url: str | None = None
    #: Comma-separated environments this worker handles.
    environments: str = "test,live"
    #: Comma-separated owners whose events this worker's handlers act on (unset: all), so
    #: that teams sharing a deployment each run their own handlers on their own events.
    owners: str = ""
    #: Comma-separated modules that define handlers, imported by the worker.
    handlers: str = "handlers"
    #: How long a worker may run a transaction before another may claim it again.
    lease_seconds: float = Field(default=300, gt=0)
    #: How old an event must be before recovery re-dispatches handlers that never started.
    grace_seconds: float = Field(default=30, gt=0)
    #: How often each worker looks for lapsed leases and lost messages.
    recovery_interval_seconds: float = Field(default=5, gt=0)
    #: The most transactions one broker message carries.
    dispatch_batch: int = Field(default=100, gt=0)

    @model_validator(mode="after")
    def _explicit_tls_options(self) -> Self:
        """Every client of a rediss:// URL reads its certificate options from the URL alone."""
        if self.redis_url:
            self.redis_url = with_tls_options(self.redis_url, self.redis_ssl_cert_reqs)
        if self.broker_url:
            self.broker_url = with_tls_options(
                self.broker_url, self.redis_ssl_cert_reqs, name="TIDINGS_BROKER_URL"
            )
        return self

    @model_validator(mode="after")
    def _broker_beside_a_cluster(self) -> Self:
        if self.redis_cluster and not self.broker_url:
            raise ValueError(
                "TIDINGS_REDIS_CLUSTER=true needs TIDINGS_BROKER_URL: Celery's Redis transport "
                "does not speak Redis Cluster, so the broker must be a plain Redis (redis://...) "
                "or RabbitMQ (amqp://...)"
            )
        return self

    @property
    def environment_list(self) -> list[str]:
        return [env.strip() for env in self.environments.split(",") if env.strip()]

    @property
    def owner_list(self) -> list[str] | None:
        return [owner.strip() for owner in self.owners.split(",") if owner.strip()] or None

    @property
    def handler_modules(self) -> list[str]:
        return [name.strip() for name in self.handlers.split(",") if name.strip()]

    @property
    def store_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "REDIS_URL is not set: `tidings serve` and `tidings dev` start an embedded Redis"
            )
        return self.redis_url

    @property
    def broker(self) -> str:
        return self.broker_url or self.store_url

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    @property
    def grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    # Worker health: heartbeats and canaries (tidings/canary.py, tidings/health.py)
    #: How often each worker heartbeats and sends a canary through each queue it consumes.
    canary_interval_seconds: float = Field(default=2, gt=0)
    #: A queue that no worker took anything off for this long is unserved (/health answers
    #: 503), and a worker whose canary stays unanswered this long exits with code 1.
    canary_timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _canary_timeout_spans_intervals(self) -> "Settings":
        if self.canary_timeout_seconds < MIN_CANARY_INTERVALS * self.canary_interval_seconds:
            raise ValueError(
                f"TIDINGS_CANARY_TIMEOUT_SECONDS must be at least {MIN_CANARY_INTERVALS} times "
                "TIDINGS_CANARY_INTERVAL_SECONDS, so that a canary has time to come back"
            )
        return self
