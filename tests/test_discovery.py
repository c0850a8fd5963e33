"""Handler discovery: every module of a handlers package is imported, and a worker says
which handlers it serves."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from worker_support import ROOT, Worker

from tidings.settings import Settings

HANDLER = """
from tidings import Message, handler


@handler("{event}", tx_key="{tx_key}", queue="{queue}")
def {name}(event: Message[dict]) -> str:
    return "{tx_key} ran"
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A handlers package whose __init__ imports nothing, with a module and a subpackage's
    module, each defining a handler."""
    root = tmp_path / "shop_handlers"
    (root / "billing").mkdir(parents=True)
    (root / "__init__.py").write_text('"""Imports none of its modules."""\n')
    (root / "billing" / "__init__.py").write_text("")
    (root / "orders.py").write_text(
        HANDLER.format(event="order.paid", tx_key="ship", queue="tidings", name="ship")
    )
    (root / "billing" / "invoices.py").write_text(
        HANDLER.format(event="order.paid", tx_key="invoice", queue="billing", name="invoice")
    )
    return tmp_path


@pytest.fixture
def worker(settings: Settings, package: Path, tmp_path: Path) -> Iterator[Worker]:
    env = {"TIDINGS_HANDLERS": "shop_handlers", "PYTHONPATH": f"{package}:{ROOT / 'tests'}"}
    started = Worker(settings.store_url, tmp_path / "worker.log", env).start()
    yield started
    started.kill()


def test_modules_a_handlers_package_does_not_import_are_served(
    http: httpx.Client, worker: Worker
) -> None:
    key = http.post("/emit", json={"event": "order.paid"}).json()["key"]
    deadline = time.monotonic() + 20
    while not (event := http.get(f"/events/{key}").json())["processing"]["isCompleted"]:
        assert time.monotonic() < deadline, f"timed out; the event is {event}"
        time.sleep(0.05)
    outputs = {t["txKey"]: t["output"] for t in event["transactions"]}
    assert outputs == {"ship": "ship ran", "invoice": "invoice ran"}
    log = worker.log_path.read_text()
    assert f"worker {worker.name} serves 2 handler(s) in test, live:" in log
    assert "  ship on custom.*.order.paid, queue tidings\n" in log
    assert "  invoice on custom.*.order.paid, queue billing\n" in log
