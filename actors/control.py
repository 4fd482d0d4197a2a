"""The control actor: serves the control socket's line protocol to local clients."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import trio

from ttamond.control import Handler, RawHandler, answer, error_reply, prepare_socket_path

log = logging.getLogger(__name__)


class ControlActor:
    """Listens on a Unix socket (stale socket removed, mode set before serving) and
    answers each request line with one reply line. A bad request costs its sender an
    error reply, never the connection; a client over the connection limit is told so."""

    def __init__(
        self,
        path: Path,
        handlers: Mapping[str, Handler | RawHandler],
        *,
        mode: int = 0o660,
        max_request_bytes: int = 1024 * 1024,
        max_connections: int = 64,
    ) -> None:
        self.path = path
        self.handlers = handlers
        self.mode = mode
        self.max_request_bytes = max_request_bytes
        self._slots = trio.CapacityLimiter(max_connections)
        self.requests = 0
        self.rejected_connections = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; the socket file is removed on the way out."""
        prepare_socket_path(self.path)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await sock.bind(str(self.path))
            self.path.chmod(self.mode)
            sock.listen(64)
            listener = trio.SocketListener(sock)
        except BaseException:
            sock.close()
            raise
        try:
            async with listener, trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    stream = await listener.accept()
                    nursery.start_soon(self._serve, stream)
        finally:
            self.path.unlink(missing_ok=True)

    async def _serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                self._slots.acquire_nowait()
            except trio.WouldBlock:
                self.rejected_connections += 1
                await stream.send_all(error_reply("busy", "too many control connections"))
                return
            try:
                await self._converse(stream)
            except trio.BrokenResourceError:
                log.debug("control client went away mid-reply")
            finally:
                self._slots.release()

    async def _converse(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        discarding = False
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data
            while (newline := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
                if discarding:
                    discarding = False
                    continue
                if len(line) > self.max_request_bytes:
                    await stream.send_all(self._too_large())
                elif line.strip():
                    self.requests += 1
                    await stream.send_all(await answer(line, self.handlers))
            if len(buffer) > self.max_request_bytes and not discarding:
                await stream.send_all(self._too_large())
                discarding = True
            if discarding:
                buffer.clear()

    def _too_large(self) -> bytes:
        return error_reply(
            "request_too_large",
            f"request exceeds {self.max_request_bytes} bytes (control.max_request_bytes);"
            " skipped to the next line",
        )
