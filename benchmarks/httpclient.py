"""A minimal asyncio HTTP/1.1 client for load benchmarks: keep-alive GETs that cost the
client about 0.08 ms of CPU each (httpx costs about 0.6 ms, which on a 2-core machine
would show up as server latency)."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

BROWSER_CONNECTIONS = 6
"""Connections a browser opens to one host (HTTP/1.1): requests beyond wait their turn."""
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Reply:
    """One request as the client saw it. Status 0: no HTTP answer (error says why)."""

    path: str
    status: int
    seconds: float
    body: bytes = b""
    error: str = ""


class Connection:
    """One keep-alive connection. GET only, `Accept-Encoding: identity`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def is_open(self) -> bool:
        """Whether the connection can take another request."""
        return self._writer is not None

    async def get(self, target: str) -> Reply:
        """GET `target`; times the request from its first byte sent to the body's last
        byte read. A kept-alive connection the server closed meanwhile is opened again
        and the request sent again, timed from the new connection."""
        path = target.split("?", 1)[0]
        reused = self.is_open
        began = time.perf_counter()
        try:
            try:
                status, body = await asyncio.wait_for(self._exchange(target), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                self.close()
                began = time.perf_counter()
                status, body = await asyncio.wait_for(self._exchange(target), REQUEST_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:
            self.close()
            return Reply(path, 0, time.perf_counter() - began,
                         error=f"{type(exc).__name__}: {exc}"[:200])
        return Reply(path, status, time.perf_counter() - began, body)

    async def _exchange(self, target: str) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                             socket.TCP_NODELAY, 1)
        reader, writer = self._reader, self._writer
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     "Accept-Encoding: identity\r\nUser-Agent: ttamond-dashboard-bench\r\n"
                     "\r\n".encode("latin-1"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are sent to GETs here
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Browser:
    """One client: up to BROWSER_CONNECTIONS keep-alive connections to the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(BROWSER_CONNECTIONS)

    async def get(self, target: str) -> Reply:
        """GET over an idle connection, or a new one, once one of the slots is free."""
        async with self._slots:
            connection = self._idle.pop() if self._idle else Connection(self.host, self.port)
            reply = await connection.get(target)
            if connection.is_open:
                self._idle.append(connection)
            return reply

    def close(self) -> None:
        """Close every connection."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
