"""The web actor: serves the Starlette app over HTTP with hypercorn on trio."""

from __future__ import annotations

import errno
import logging
import os
import socket
from functools import partial
from pathlib import Path
from typing import cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.typing import Framework
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

BACKLOG = 128


def parse_bind(bind: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets: `[::1]:9471`) as (host, port).

    Raises ValueError with a line a person can act on.
    """
    host, sep, port_text = bind.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address without brackets is ambiguous
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(
            f"web bind {bind!r}: expected host:port, e.g. 127.0.0.1:9471 or [::1]:9471"
        )
    return host, int(port_text)


class WebActor:
    """Serves an ASGI app on `bind` (host:port; port 0 picks a free one).

    The socket is bound and listening before `run` reports started, and `port` then
    holds the bound port. A bind that fails (port in use, no such address) raises
    OSError naming the address. hypercorn logs only warnings and errors (to
    `ttamond.web.server`), and one access line per request only with `access_log`.
    Cancelling `run` stops the server at once; `shutdown()` stops it gracefully,
    letting requests in flight finish for up to `graceful_timeout` seconds.
    """

    def __init__(
        self,
        bind: str,
        app: ASGIApp,
        *,
        access_log: bool = False,
        graceful_timeout: float = 2.0,
        unix_socket: Path | None = None,
    ) -> None:
        self.bind = bind
        self.unix_socket = unix_socket
        self.host, self.requested_port = parse_bind(bind)
        self.app = app
        self.access_log = access_log
        self.graceful_timeout = graceful_timeout
        self.port: int | None = None
        self._shutdown = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or shut down. Raises OSError when it cannot listen."""
        sock = await self._listen()
        port = int(sock.getsockname()[1])
        # Bound here for a clean error and the port up front; hypercorn adopts the
        # descriptors through fd:// and trio closes them when serving ends.
        config = self._config(sock.detach())
        if self.unix_socket is not None:
            try:
                config.bind.append(f"fd://{_listen_unix(self.unix_socket).detach()}")
            except OSError:
                os.close(int(config.bind[0].removeprefix("fd://")))
                raise
        # hypercorn types scopes as TypedDicts, Starlette as plain mappings: the same
        # ASGI callable, two spellings.
        app = cast(Framework, self.app)
        try:
            async with trio.open_nursery() as nursery:
                # Shielded until hypercorn has adopted the descriptor (its start-up only
                # runs the app's lifespan and makes the listeners): a cancel in between
                # would leave a listening socket that nobody closes.
                with trio.CancelScope(shield=True):
                    await nursery.start(
                        partial(serve, app, config, shutdown_trigger=self._shutdown.wait)
                    )
                self.port = port
                log.info("web: serving on http://%s%s", _join(self.host, port),
                         f" and {self.unix_socket}" if self.unix_socket else "")
                task_status.started()
        finally:
            self.port = None
            if self.unix_socket is not None:
                self.unix_socket.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Stop accepting connections and finish requests in flight; `run` then returns."""
        self._shutdown.set()

    async def _listen(self) -> socket.socket:
        try:
            infos = await trio.socket.getaddrinfo(self.host, self.requested_port,
                                                  type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise OSError(exc.errno, f"web: cannot listen on {self.bind}: {exc.strerror}") from exc
        family, type_, proto, _, address = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = " (another process holds it; change [web] bind in ttamond.toml)"
            raise OSError(exc.errno,
                          f"web: cannot listen on {self.bind}: {exc.strerror}{hint}") from exc
        return sock

    def _config(self, fd: int) -> HypercornConfig:
        config = HypercornConfig()
        config.bind = [f"fd://{fd}"]
        config.backlog = BACKLOG
        config.graceful_timeout = self.graceful_timeout
        config.accesslog = logging.getLogger("ttamond.web.access") if self.access_log else None
        server_log = logging.getLogger("ttamond.web.server")
        # hypercorn's own info lines ("Running on ... (CTRL + C to quit)") are noise here.
        server_log.setLevel(logging.WARNING)
        config.errorlog = server_log
        return config


def _listen_unix(path: Path) -> socket.socket:
    """A listening Unix socket at `path` (mode 0660: the owner and its group), replacing
    a stale socket file but nothing else. Raises OSError naming the path."""
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        path.chmod(0o660)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"web: cannot listen on {path}: {exc.strerror}") from exc
    return sock


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
