"""The deployment's settings, read from the environment.

``REDIS_URL`` keeps the name PaaS add-ons set; everything else is prefixed ``TIDINGS_``.
Where ``REDIS_URL`` is unset, the command line starts an embedded Redis server.
"""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

THIRTY_DAYS = 30 * 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDINGS_", extra="ignore")

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TIDINGS_REDIS_URL")
    )
    #: Where the embedded Redis keeps its data when REDIS_URL is unset.
    data_dir: str = ".tidings"
    #: Retention of events and their transactions, in seconds.
    ttl_seconds: int = Field(default=THIRTY_DAYS, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_page_size: int = Field(default=1000, gt=0)
    max_batch_events: int = Field(default=1000, gt=0)
    #: Guards the /admin endpoints; they answer 404 while it is unset.
    admin_token: str | None = None
