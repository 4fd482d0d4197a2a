"""The blocking half of the control protocol the client speaks: where, how, and its errors."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

PROTOCOL_VERSION = 1
SOCKET_VARIABLE = "TTAMOND_SOCKET"
MAX_REPLY_BYTES = 64 * 1024 * 1024
"""A reply longer than this is a broken peer, not a result."""


class ServiceUnavailable(Exception):
    """Nothing usable answers on the daemon's control socket."""


class ServiceError(Exception):
    """The daemon answered with an error reply; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ReplyError(msgspec.Struct, frozen=True):
    """The `error` object of an error reply."""

    code: str = "error"
    message: str = ""


class Reply(msgspec.Struct, frozen=True):
    """One reply line."""

    ok: bool
    result: Any = None
    error: ReplyError | None = None
    id: int | str | None = None
    version: int = PROTOCOL_VERSION


reply_decoder = msgspec.json.Decoder(Reply)
_encoder = msgspec.json.Encoder()


def default_socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$TTAMOND_SOCKET` when set, else where a daemon on its default config listens."""
    env = os.environ if environ is None else environ
    if named := env.get(SOCKET_VARIABLE):
        return Path(named).expanduser()
    # Imported here, not at the top: only a Monitor without an explicit path pays for
    # the config module, and the rule stays the daemon's own rather than a copy of it.
    from ttamond.config import PathsConfig
    from ttamond.paths import resolve_paths

    return resolve_paths(PathsConfig(), environ=env).control_socket


def resolve_socket_path(path: str | os.PathLike[str] | None) -> Path:
    """The explicit path, else the default one."""
    return default_socket_path() if path is None else Path(path)


def result_of(line: bytes, request_id: int | None = None) -> Any:
    """The result of a reply line; raises ServiceError for an error reply and
    ServiceUnavailable for a line that is not a reply (or answers another request)."""
    try:
        reply = reply_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ServiceUnavailable(f"the daemon sent a malformed reply: {exc}") from None
    if not reply.ok and (reply.id is None or reply.id == request_id):
        # id None: an error the daemon could not tie to a request line (one too long
        # to read, a connection over the limit); it answers the request just sent.
        error = reply.error or ReplyError()
        raise ServiceError(error.code, error.message)
    if request_id is not None and reply.id != request_id:
        raise ServiceUnavailable(f"reply to request {reply.id!r} while waiting for {request_id}")
    if not reply.ok:
        error = reply.error or ReplyError()
        raise ServiceError(error.code, error.message)
    return reply.result


def request_line(command: str, args_json: bytes, request_id: int) -> bytes:
    """One encoded request line around already encoded arguments."""
    return (b'{"version":%d,"command":%b,"args":%b,"id":%d}\n'
            % (PROTOCOL_VERSION, _encoder.encode(command), args_json, request_id))


class Connection:
    """One blocking connection to the control socket, kept open between requests.

    Every failure closes it and raises ServiceUnavailable; the next request reconnects.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._pending = b""
        self._next_id = 0

    @property
    def is_open(self) -> bool:
        """Whether a socket is connected now."""
        return self._socket is not None

    def connect(self) -> None:
        """Open the socket now unless it is open; raises ServiceUnavailable."""
        try:
            self._open()
        except OSError as exc:
            raise ServiceUnavailable(_describe(exc, self.path, self.timeout)) from None

    def request(self, command: str, args: Mapping[str, Any] | None = None) -> Any:
        """Send one command with `args`; return its result."""
        return self.request_encoded(command, _encoder.encode(dict(args or {})))

    def request_encoded(self, command: str, args_json: bytes) -> Any:
        """Send one command whose arguments are already JSON; return its result.

        A connection kept from an earlier request may have died with a daemon that
        restarted since: that one gets a single retry on a fresh connection.
        """
        self._next_id += 1
        line = request_line(command, args_json, self._next_id)
        reused = self._socket is not None
        try:
            reply = self._exchange(line)
        except ConnectionError as exc:
            self.close()
            if not reused:
                raise ServiceUnavailable(_describe(exc, self.path, self.timeout)) from None
            try:
                reply = self._exchange(line)
            except OSError as again:
                self.close()
                raise ServiceUnavailable(_describe(again, self.path, self.timeout)) from None
        except OSError as exc:
            self.close()
            raise ServiceUnavailable(_describe(exc, self.path, self.timeout)) from None
        try:
            return result_of(reply, self._next_id)
        except ServiceUnavailable:
            self.close()
            raise

    def _exchange(self, line: bytes) -> bytes:
        sock = self._open()
        sock.sendall(line)
        return self._read_line(sock)

    def close(self) -> None:
        """Close the socket, if open."""
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._pending = b""

    def _open(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.path))
            except BaseException:
                sock.close()
                raise
            self._socket = sock
        return self._socket

    def _read_line(self, sock: socket.socket) -> bytes:
        chunks = [self._pending]
        size = len(self._pending)
        newline = self._pending.find(b"\n")
        while newline < 0:
            chunk = sock.recv(262144)
            if not chunk:
                raise ConnectionResetError("the daemon closed the connection")
            newline = chunk.find(b"\n")
            if newline >= 0:
                newline += size
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise OSError(f"reply exceeds {MAX_REPLY_BYTES} bytes")
        data = b"".join(chunks)
        self._pending = data[newline + 1:]
        return data[:newline]


def request_once(path: Path, command: str, args: Mapping[str, Any] | None = None, *,
                 timeout: float) -> Any:
    """Open a connection, send one command, close it, return the result."""
    connection = Connection(path, timeout=timeout)
    try:
        return connection.request(command, args)
    finally:
        connection.close()


def _describe(exc: OSError, path: Path, timeout: float) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no control socket at {path}: is ttamond running?"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing answers on {path} (a stale socket: is ttamond running?)"
    if isinstance(exc, PermissionError):
        return f"permission denied on {path}: join the daemon's group"
    if isinstance(exc, TimeoutError):
        return f"no reply on {path} within {timeout:g} s"
    return f"cannot talk to {path}: {exc.strerror or exc}"
