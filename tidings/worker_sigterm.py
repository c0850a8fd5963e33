"""A handler running in a worker's pool process outlives a SIGTERM sent to every process.

A PaaS stops a dyno or container by sending SIGTERM to every process in it, then SIGKILL
after a grace period (Heroku: 30 s). Celery's main process answers SIGTERM with a warm
shutdown that lets running tasks finish; but its prefork pool processes die of the same
SIGTERM at once, killing the handler mid-run (its transaction then waits for its lease to
lapse before another worker runs it again).

So a pool process that gets SIGTERM while a task runs waits a moment to see whether its main
process has begun a warm shutdown. If so, the SIGTERM was the PaaS's: the task goes on, and
the warm shutdown ends the process once it is done (a further SIGTERM ends it at once).
Otherwise it ends as it always did: that is how Celery's cold shutdown cancels a task, and
how anyone else stops a pool process. (Celery sets aside the SIGINT of a terminal's Ctrl+C
in pool processes for the same reason.)
"""

import logging
import multiprocessing
import os
import signal
import time
from types import FrameType
from typing import Any

from celery import signals

log = logging.getLogger("tidings.worker_sigterm")

#: How long a pool process waits for its main process's warm shutdown after a SIGTERM: the
#: main process receives the same signal at the same moment, so this is ample.
WARM_SHUTDOWN_WAIT_SECONDS = 2.0
POLL_SECONDS = 0.01

#: Set by the main process when its warm shutdown begins; shared with the pool processes it
#: forks, so it is made before them.
_warm_shutdown: Any = None
#: Whether this process is a pool process (tasks run apart from Celery's main process).
_in_pool_process = False
#: Celery's SIGTERM handler, while a task runs with this module's in its place.
_celery_handler: Any = None


def let_running_handlers_finish() -> None:
    """Connect the receivers below; called in the worker's main process as its app is made."""
    global _warm_shutdown
    _warm_shutdown = multiprocessing.RawValue("b", 0)
    signals.worker_shutting_down.connect(_main_process_stops, weak=False)
    signals.worker_process_init.connect(_pool_process_starts, weak=False)
    signals.task_prerun.connect(_task_starts, weak=False)
    signals.task_postrun.connect(_task_ends, weak=False)


def _main_process_stops(how: str = "", **_: Any) -> None:
    if how == "Warm":
        _warm_shutdown.value = 1


def _pool_process_starts(**_: Any) -> None:
    global _in_pool_process
    _in_pool_process = True


def _task_starts(**_: Any) -> None:
    global _celery_handler
    if _in_pool_process:  # the solo and threads pools run tasks in the main process
        _celery_handler = signal.signal(signal.SIGTERM, _sigterm_while_running)


def _task_ends(**_: Any) -> None:
    global _celery_handler
    if _celery_handler is not None:
        signal.signal(signal.SIGTERM, _celery_handler)
        _celery_handler = None


def _sigterm_while_running(signum: int, frame: FrameType | None) -> None:
    deadline = time.monotonic() + WARM_SHUTDOWN_WAIT_SECONDS
    while not _warm_shutdown.value and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if not _warm_shutdown.value:
        _stop_now(signum, frame)
        return
    log.warning("warm shutdown: the running handler goes on until it ends")
    signal.signal(signal.SIGTERM, _stop_now)


def _stop_now(signum: int, frame: FrameType | None) -> None:
    celery_handler = _celery_handler
    _task_ends()
    if callable(celery_handler):
        celery_handler(signum, frame)
    else:  # the default action: end the process
        os.kill(os.getpid(), signum)
