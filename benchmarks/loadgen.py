"""A lean HTTP/1.1 load generator: one keep-alive connection per worker, nothing else.

General-purpose clients (httpx) spend more CPU per request than the service under test on this
2-core machine and serialise on their connection pool at high concurrency, so they would measure
themselves. This sends pre-encoded bodies over asyncio streams and reads status and body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def post_all(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    headers: dict[str, str],
    expect: int = 202,
) -> tuple[float, list[float]]:
    """Post every body with `concurrency` workers; wall seconds taken and per-request latencies."""
    latencies: list[float] = []
    pending = list(reversed(bodies))

    async def worker() -> None:
        connection = Connection(host, port, headers)
        try:
            while pending:
                body = pending.pop()
                started = time.perf_counter()
                status, answer = await connection.post(path, body)
                latencies.append(time.perf_counter() - started)
                if status != expect:
                    raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies
