"""This deployment's settings: one object, read from the environment (see tidings.settings)."""

from tidings.settings import Settings

settings = Settings()
