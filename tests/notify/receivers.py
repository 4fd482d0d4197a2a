"""A real HTTP receiver on loopback that records what it is sent and answers as told."""

from __future__ import annotations

import http
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio


@dataclass(frozen=True)
class Received:
    """One request as the receiver read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers each request with the next of `statuses`, then `default`; with `hang`,
    never answers. Records every request it read."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)

    async def serve(self, nursery: trio.Nursery) -> str:
        """Serve on 127.0.0.1 until the nursery is cancelled; returns the base URL."""
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0,
                                                host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            body += chunk
        method, path, _ = request_line.split(" ", 2)
        self.requests.append(Received(method, path, headers, body))
        self.arrived.set()
        if self.hang:
            await trio.sleep_forever()
        status = self.statuses.pop(0) if self.statuses else self.default
        answer = b"" if status < 300 else f"answer {status} as told\n".encode()
        await stream.send_all(
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(answer)}\r\n"
            "Connection: close\r\n\r\n".encode() + answer)
        await stream.aclose()
