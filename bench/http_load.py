"""A lean HTTP/1.1 load generator for the benchmarks: POST requests on a fixed schedule.

On a 2-core machine the load generator competes with the servers it measures: httpx costs
~1.9 ms of CPU per request here, this plain asyncio client (keep-alive connections, no
pipelining, Content-Length bodies only) about a fifth of that. The schedule is open-loop:
request i is due at start + i / rate whether or not earlier answers have come, each on a
free connection (a new one while fewer than ``connections`` are open); ``late`` records how
far behind its due time each went out, which shows whether the generator kept up.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HttpClient:
    def __init__(self, port: int, headers: dict[str, str], *, connections: int = 32) -> None:
        self.port = port
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.connections = connections
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.opened = 0

    async def _connection(self) -> Connection:
        if self.idle.empty() and self.opened < self.connections:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()

    async def post(self, path: str, body: bytes) -> bytes:
        """POST a JSON body; the answer's body. Anything but 200 raises."""
        reader, writer = await self._connection()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"POST {path} answered {status!r}: {answer!r}")
        self.idle.put_nowait((reader, writer))
        return answer

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


async def open_loop(rate: float, n: int, send: Callable[[int], Awaitable[None]]) -> list[float]:
    """send(i) for i in range(n), send i due at start + i / rate; answers how late (s)
    each went out. The first failed send stops the run."""
    sends: set[asyncio.Task[None]] = set()
    late: list[float] = []
    start = time.monotonic()
    for i in range(n):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        late.append(time.monotonic() - due)
        task = asyncio.create_task(send(i))
        sends.add(task)
        task.add_done_callback(sends.discard)
        for done in [t for t in sends if t.done() and t.exception()]:
            raise RuntimeError("a send failed") from done.exception()
    await asyncio.gather(*sends)
    return late
