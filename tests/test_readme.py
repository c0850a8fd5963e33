"""The README's examples, run as written, so that none of them drifts from the code.

Every fenced block of README.md is one of these, said by an HTML comment just before it
(`<!-- readme-test: ... -->`) or, without one, by its language:

- ```sh and ```python blocks are the tour: run in order, as a reader in the project folder
  would, against a live stack (`tidings serve` on a free port, its Redis, a Celery worker
  running the project's `handlers`). Shell blocks run a command at a time in bash, with
  the virtualenv's bin on PATH, `$SECRET` set to a test key named `dev` (as `make dev`
  prints) and curl failing on an HTTP error; Python blocks run as scripts.
- `in FILE`: the block is a part of FILE, word for word (code the README says ships).
- `pytest`: a test file, run with the project's `pytest` as the README says.
- `serves`: starts a server; run in the background until the API answers and a handled
  event shows the worker runs, then stopped.
- `skip: why`.

Stand-ins: the README's `localhost:8000` is the test's server, and
`redis://127.0.0.1:6379/0` its Redis. A comment right after a shell command is its answer:
JSON, where `...` stands for fields or a value left out; the real answer must have what it
shows (an object without `...` exactly its fields). A comment right after a Python line that
prints is a line the script must print. A 32-digit hex key in a shown answer stands for
the key the real one has there, also in the lines after it and in the rest of that answer
(a URL that holds it). Before each step the test waits
until the events emitted so far have ended, as a reader is slower than a worker.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from worker_support import Worker

from tidings import Client
from tidings.redis_server import free_port
from tidings.store import keys

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
MARK = re.compile(r"<!-- readme-test: (.+) -->")
FENCE = "```"
EVENT_KEY = re.compile(r"[0-9a-f]{32}")
#: `...` where a field of a JSON object is left out: made a field that says so.
LEFT_OUT = re.compile(r"(?<=[{,])(\s*)\.\.\.(?=\s*[,}])")
MORE = "..."
ADMIN = {"Authorization": "Bearer admin-secret"}
#: How long one step may take, and how long its events may take to end, in seconds.
STEP_SECONDS = 60
#: How long the `serves` block's server may take to answer.
START_SECONDS = 60


@dataclass
class Block:
    line: int  # of the opening fence, counting from 1
    language: str
    text: str
    mark: str  # what the HTML comment before it says, or ""


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    blocks: list[Block] = []
    at = 0
    while at < len(lines):
        if not lines[at].startswith(FENCE):
            at += 1
            continue
        end = next(n for n in range(at + 1, len(lines)) if lines[n].startswith(FENCE))
        before = next((lines[n] for n in range(at - 1, -1, -1) if lines[n].strip()), "")
        mark = MARK.fullmatch(before.strip())
        blocks.append(
            Block(
                line=at + 1,
                language=lines[at][len(FENCE) :].strip(),
                text="\n".join(lines[at + 1 : end]) + "\n",
                mark=mark.group(1).strip() if mark else "",
            )
        )
        at = end + 1
    return blocks


BLOCKS = readme_blocks()
TOUR = [b for b in BLOCKS if not b.mark]


def marked(prefix: str) -> list[Block]:
    return [b for b in BLOCKS if b.mark.startswith(prefix)]


def ids(blocks: list[Block]) -> list[str]:
    return [f"README.md:{b.line}" for b in blocks]


# Shell blocks, a command at a time.


@dataclass
class Command:
    line: int
    text: str
    #: The answer the README shows, a comment line at a time ("" if none).
    answer: list[str] = field(default_factory=list)


def shell_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    after_command = False
    lines = block.text.splitlines()
    at = 0
    while at < len(lines):
        line = lines[at]
        number = block.line + 1 + at
        at += 1
        if not line.strip():
            after_command = False
        elif line.startswith("#"):
            if after_command:
                commands[-1].answer.append(line.removeprefix("#").removeprefix(" "))
        else:
            while line.endswith("\\") and at < len(lines):
                line = line[:-1] + lines[at]
                at += 1
            commands.append(Command(number, line))
            after_command = True
    return commands


def shown_answer(lines: list[str]) -> Any:
    """The answer a README comment shows, with `...` for fields left out made a field."""
    return json.loads(LEFT_OUT.sub(r'\1"...": "..."', "\n".join(lines)))


def differences(shown: Any, real: Any, keys: dict[str, str], where: str = "") -> list[str]:
    """How the real answer differs from the one shown; notes the keys the shown ones stand
    for in `keys`."""
    if shown == MORE:
        return []
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return [f"{where or 'the answer'}: {real!r} is not an object"]
        found = []
        if MORE not in shown and set(real) != set(shown):
            found.append(f"{where or 'the answer'}: fields {sorted(real)}, README {sorted(shown)}")
        for name, value in shown.items():
            if name == MORE:
                continue
            if name not in real:
                found.append(f"{where}.{name}: missing")
            else:
                found += differences(value, real[name], keys, f"{where}.{name}")
        return found
    if isinstance(shown, list):
        if not isinstance(real, list) or len(real) != len(shown):
            return [f"{where}: {real!r} is not a list of {len(shown)}"]
        found = []
        for n, (item, real_item) in enumerate(zip(shown, real, strict=True)):
            found += differences(item, real_item, keys, f"{where}[{n}]")
        return found
    if (
        isinstance(shown, str)
        and isinstance(real, str)
        and EVENT_KEY.fullmatch(shown)
        and EVENT_KEY.fullmatch(real)
        and keys.setdefault(shown, real) == real
    ):
        return []
    if isinstance(shown, str):
        for stand_in, key in keys.items():
            shown = shown.replace(stand_in, key)
    if shown == real and type(shown) is type(real):
        return []
    return [f"{where}: README shows {shown!r}, the real answer has {real!r}"]


def printed_line(shown: str, keys: dict[str, str]) -> re.Pattern[str]:
    """A line a Python block's comment says it prints, `...` matching anything."""
    for stand_in, real in keys.items():
        shown = shown.replace(stand_in, real)
    return re.compile(".*".join(map(re.escape, shown.split(MORE))))


# The stack: `tidings serve`, its Redis and a worker running the project's handlers.


@dataclass
class Stack:
    base_url: str
    redis_url: str
    secret: str
    #: The README's stand-in keys and the real ones they stand for.
    keys: dict[str, str] = field(default_factory=dict)
    #: Events emitted so far, waited for before each step.
    emitted: set[str] = field(default_factory=set)

    def substituted(self, text: str) -> str:
        host = self.base_url.removeprefix("http://")
        for stand_in, real in [
            ("localhost:8000", host),
            ("127.0.0.1:8000", host),
            ("redis://127.0.0.1:6379/0", self.redis_url),
            *self.keys.items(),
        ]:
            text = text.replace(stand_in, real)
        return text

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",  # as `. .venv/bin/activate` does
            "SECRET": self.secret,
            "REDIS_URL": self.redis_url,  # for the `tidings` commands
        }

    def settle(self) -> None:
        with Client(self.secret, self.base_url) as client:
            for key in self.emitted:
                client.wait(key, STEP_SECONDS)


def new_key(base_url: str, name: str) -> str:
    answer = httpx.post(f"{base_url}/admin/keys", json={"name": name, "env": "test"}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["secret"])


@pytest.fixture
def stack(live_server: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    worker = Worker(redis_url, tmp_path / "worker.log", {"TIDINGS_HANDLERS": "handlers"})
    worker.start()
    try:
        yield Stack(live_server, redis_url, new_key(live_server, "dev"))
    finally:
        worker.kill()


def run_shell(stack: Stack, block: Block, variables: list[str]) -> None:
    for command in shell_commands(block):
        stack.settle()
        text = stack.substituted(command.text)
        script = "\n".join(
            [
                "set -euo pipefail",
                'curl() { command curl --fail-with-body "$@"; }',
                *variables,
                text,
            ]
        )
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=STEP_SECONDS,
        )
        where = f"README.md:{command.line}: {text}"
        assert done.returncode == 0, f"{where}\n{done.stdout}{done.stderr}"
        if re.match(r"(export\s+)?\w+=\S*$", text):
            variables.append(text)
        stack.emitted.update(re.findall(r'"key":\s*"([0-9a-f]{32})"', done.stdout))
        if command.answer:
            try:
                real = json.loads(done.stdout)
            except ValueError:
                pytest.fail(f"{where}\nthe answer is not JSON: {done.stdout}")
            problems = differences(shown_answer(command.answer), real, stack.keys)
            assert not problems, f"{where}\n" + "\n".join(problems) + f"\n{done.stdout}"


def run_python(stack: Stack, block: Block, tmp_path: Path) -> None:
    stack.settle()
    script = tmp_path / f"readme_{block.line}.py"
    script.write_text(stack.substituted(block.text))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
    )
    where = f"README.md:{block.line}"
    assert done.returncode == 0, f"{where}\n{done.stdout}{done.stderr}"
    lines = block.text.splitlines()
    printed = done.stdout.splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        shown = line.strip()
        if shown.startswith("# ") and "print(" in before:
            wanted = printed_line(shown.removeprefix("# "), stack.keys)
            assert any(wanted.fullmatch(out) for out in printed), (
                f"{where}: printed no line like {shown!r}:\n{done.stdout}"
            )


# The tests


def test_every_block_is_run_or_says_why() -> None:
    assert TOUR, "the README has no tour"
    kinds = ("in ", "pytest", "serves", "skip: ")
    for block in BLOCKS:
        where = f"README.md:{block.line}"
        if block.mark:
            assert block.mark.startswith(kinds), f"{where}: unknown mark {block.mark!r}"
            assert block.mark != "skip: ", f"{where}: say why it is skipped"
        else:
            assert block.language in ("sh", "python"), f"{where}: run it, or mark it"


def test_the_tour_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    variables: list[str] = []  # shell variables the tour has set so far
    for block in TOUR:
        if block.language == "sh":
            run_shell(stack, block, variables)
        else:
            run_python(stack, block, tmp_path)
    assert stack.emitted and stack.keys, "the tour emitted nothing, or showed no answer"


@pytest.mark.parametrize("block", marked("in "), ids=ids(marked("in ")))
def test_code_the_readme_says_ships_is_in_its_file(block: Block) -> None:
    path = ROOT / block.mark.removeprefix("in ")
    assert block.text in path.read_text(), f"README.md:{block.line} differs from {path}"


@pytest.mark.parametrize("block", marked("pytest"), ids=ids(marked("pytest")))
def test_a_handler_test_passes_under_a_plain_pytest(block: Block, tmp_path: Path) -> None:
    """Saved as the README says and run with the project's `pytest` (not `python -m`, which
    would put the working folder on the import path), without REDIS_URL."""
    test_file = tmp_path / "test_from_readme.py"
    test_file.write_text(block.text)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [
            str(BIN / "pytest"),
            str(test_file),
            # As if it were in the project's tests folder: the project's settings.
            f"--rootdir={ROOT}",
            f"--config-file={ROOT / 'pyproject.toml'}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=ROOT,
        env={**env, "PATH": f"{BIN}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
    )
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("block", marked("serves"), ids=ids(marked("serves")))
def test_a_server_the_readme_starts_serves(
    block: Block, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", redis_url, secret="")
    log = tmp_path / "serves.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + stack.substituted(block.text)],
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
                "PORT": str(port),
                "TIDINGS_ADMIN_TOKEN": "admin-secret",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (answers(stack.base_url) and redis_client.zcard(keys.WORKERS)):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no API and worker:\n{log.read_text()}"
            time.sleep(0.1)
        with Client(new_key(stack.base_url, "dev"), stack.base_url) as client:
            key = client.emit("user.created", {"email": "ada@example.com"})
            [tx] = client.wait(key, STEP_SECONDS).transactions
        assert (tx.txKey, tx.state) == ("send-welcome-email", "finished"), log.read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health").status_code == 200
    except httpx.TransportError:
        return False
