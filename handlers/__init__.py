"""This deployment's handlers. The worker imports this package; add modules and import
them here."""

from handlers import users

__all__ = ["users"]
