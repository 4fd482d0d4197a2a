"""The control actor: serves the control socket's line protocol to local clients."""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import trio

from ttamond.control import Handler, RawHandler, answer, error_reply, prepare_socket_path

log = logging.getLogger(__name__)


class ControlActor:
    """Listens on a Unix socket (stale socket removed, mode set before serving) and
    answers each request line with one reply line. A bad request costs its sender an
    error reply, never the connection; a client over the connection limit is told so.

    With `inherited` (a listening Unix stream socket from systemd's socket activation)
    it serves on that one instead: no bind, no chmod (SocketMode= decided), and neither
    the socket nor its path is removed when it stops, so a restarted actor serves on it
    again and clients keep their path while the daemon is down.
    """

    def __init__(
        self,
        path: Path,
        handlers: Mapping[str, Handler | RawHandler],
        *,
        mode: int = 0o660,
        max_request_bytes: int = 1024 * 1024,
        max_connections: int = 64,
        inherited: socket.socket | None = None,
    ) -> None:
        self.path = path
        self.handlers = handlers
        self.mode = mode
        self.max_request_bytes = max_request_bytes
        self.inherited = inherited
        self._slots = trio.CapacityLimiter(max_connections)
        self.requests = 0
        self.rejected_connections = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; a socket file it bound itself is removed on the way out.

        Raises OSError when the path is taken by a live daemon or by something other than
        a socket, or when an inherited socket is not a listening Unix stream socket.
        """
        if self.inherited is not None:
            listener = _serve_inherited(self.inherited)
            log.info("control: serving on the socket systemd passed (%s)",
                     self.inherited.getsockname() or "unnamed")
        else:
            listener = await self._bind()
        try:
            async with listener, trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    stream = await listener.accept()
                    nursery.start_soon(self._serve, stream)
        finally:
            if self.inherited is None:
                self.path.unlink(missing_ok=True)

    async def _bind(self) -> trio.SocketListener:
        prepare_socket_path(self.path)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await sock.bind(str(self.path))
            self.path.chmod(self.mode)
            sock.listen(64)
            return trio.SocketListener(sock)
        except PermissionError as exc:
            sock.close()
            raise PermissionError(exc.errno, _not_writable(self.path)) from None
        except BaseException:
            sock.close()
            raise

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


def _serve_inherited(inherited: socket.socket) -> trio.SocketListener:
    """A listener on a duplicate of `inherited`: closing the listener when the actor
    stops leaves the original open for the next run."""
    listening = inherited.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if inherited.family != socket.AF_UNIX or inherited.type != socket.SOCK_STREAM or not listening:
        # The control protocol has no authentication of its own: only a Unix socket,
        # guarded by its file mode, may carry it.
        raise OSError(errno.EINVAL, "the socket systemd passed is not a listening Unix stream "
                      "socket: give ttamond.socket a ListenStream= path")
    return trio.SocketListener(trio.socket.from_stdlib_socket(inherited.dup()))


def _not_writable(path: Path) -> str:
    # A shared socket volume created by another container is often root-owned: say
    # whose it is and who we are, which is what a person needs to fix it.
    try:
        owner = path.parent.stat()
        found = f"owned by uid {owner.st_uid} gid {owner.st_gid}, mode {owner.st_mode & 0o7777:o}"
    except OSError as exc:
        found = f"unreadable: {exc.strerror}"
    return (f"cannot create the control socket {path}: its folder is {found}, and ttamond"
            f" runs as uid {os.getuid()} gid {os.getgid()}")
