"""The control socket: newline-delimited JSON over a Unix socket, server and client.

A request is one line: `{"version": 1, "command": "status", "args": {}, "id": 7}`.
The reply is one line: `{"version": 1, "id": 7, "ok": true, "result": ...}` or
`{"version": 1, "id": 7, "ok": false, "error": {"code": "...", "message": "..."}}`.
A malformed request gets an error reply; the connection stays open.

The client half uses only the standard library, so `ttamond status` starts fast.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

PROTOCOL_VERSION = 1

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
"""A command: takes the request's args, returns anything msgspec can encode as JSON."""

RawHandler = Callable[[msgspec.Raw], Awaitable[Any]]
"""A command that decodes its own args (typed, in one pass): ingestion."""


def raw_args(handler: RawHandler) -> RawHandler:
    """Mark `handler` as taking its args undecoded."""
    handler.raw_args = True  # type: ignore[attr-defined]
    return handler


class CommandError(Exception):
    """A request the daemon understood but refuses; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ControlUnavailable(Exception):
    """Nothing answers on the control socket."""


class Request(msgspec.Struct, forbid_unknown_fields=True):
    """One request line."""

    version: int
    command: str
    args: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))
    id: int | str | None = None


def _encode_extra(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_request_decoder = msgspec.json.Decoder(Request)
_args_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder(enc_hook=_encode_extra)


def error_reply(code: str, message: str, request_id: int | str | None = None) -> bytes:
    """An encoded error line."""
    reply = {"version": PROTOCOL_VERSION, "id": request_id, "ok": False,
             "error": {"code": code, "message": message}}
    return _encoder.encode(reply) + b"\n"


async def answer(line: bytes, handlers: Mapping[str, Handler | RawHandler]) -> bytes:
    """Decode one request line, run its command, and encode the reply line."""
    try:
        request = _request_decoder.decode(line)
    except msgspec.DecodeError as exc:
        return error_reply("bad_request", f"malformed request: {exc}", _peek_id(line))
    if request.version != PROTOCOL_VERSION:
        return error_reply(
            "unsupported_version",
            f"protocol version {request.version} is not supported (this daemon speaks "
            f"{PROTOCOL_VERSION})",
            request.id,
        )
    handler = handlers.get(request.command)
    if handler is None:
        known = ", ".join(sorted(handlers))
        return error_reply(
            "unknown_command", f"unknown command {request.command!r} (known: {known})", request.id
        )
    try:
        if getattr(handler, "raw_args", False):
            result = await handler(request.args)  # type: ignore[arg-type]
        else:
            try:
                args = _args_decoder.decode(request.args)
            except msgspec.DecodeError:
                raise CommandError("bad_request", "args must be a JSON object") from None
            result = await handler(args)  # type: ignore[arg-type]
        reply = {"version": PROTOCOL_VERSION, "id": request.id, "ok": True, "result": result}
        return _encoder.encode(reply) + b"\n"
    except CommandError as exc:
        return error_reply(exc.code, exc.message, request.id)
    except Exception as exc:
        # A bug in one command must not take the socket, or the daemon, down with it:
        # the caller gets the error, the log gets the traceback.
        log.exception("control command %r failed", request.command)
        return error_reply("internal_error", f"{type(exc).__name__}: {exc}", request.id)


def _peek_id(line: bytes) -> int | str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, int | str) else None


def prepare_socket_path(path: Path) -> None:
    """Make `path` free to bind: remove a stale socket left by a dead daemon.

    Raises OSError naming the problem when a live daemon answers there or when
    something other than a socket is in the way.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket; not removing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing stale control socket %s", path)
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another ttamond is answering on {path}")


def request(
    path: Path, command: str, args: Mapping[str, Any] | None = None, *, timeout: float = 5.0
) -> Any:
    """Send one command and return its result (blocking; standard library only).

    Raises ControlUnavailable when nothing answers, CommandError for an error reply.
    """
    line = json.dumps({"version": PROTOCOL_VERSION, "command": command,
                       "args": dict(args or {}), "id": 1}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(line)
            reply = _read_line(sock)
    except FileNotFoundError as exc:
        raise ControlUnavailable(f"no control socket at {path}: is ttamond running?") from exc
    except ConnectionRefusedError as exc:
        raise ControlUnavailable(
            f"nothing answers on {path} (a stale socket: is ttamond running?)"
        ) from exc
    except PermissionError as exc:
        raise ControlUnavailable(f"permission denied on {path}: join the daemon's group") from exc
    except TimeoutError as exc:
        raise ControlUnavailable(f"no reply on {path} within {timeout:g} s") from exc
    except OSError as exc:
        raise ControlUnavailable(f"cannot talk to {path}: {exc.strerror or exc}") from exc
    data = json.loads(reply)
    if not data.get("ok"):
        error = data.get("error") or {}
        raise CommandError(str(error.get("code", "error")), str(error.get("message", reply)))
    return data.get("result")


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "daemon closed the connection")
        chunks.append(chunk)
        if b"\n" in chunk:
            return b"".join(chunks).split(b"\n", 1)[0]

