"""The Celery app: ``celery -A workers worker`` runs the handlers in ``TIDINGS_HANDLERS``
(the ``handlers`` package by default) on the environments in ``TIDINGS_ENVIRONMENTS``."""

from config import settings
from tidings.celery_app import create_celery

app = create_celery(settings)
