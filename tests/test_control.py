"""The control socket over a real Unix socket: protocol, bad input, stale sockets."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from ttamond.actors.control import ControlActor
from ttamond.control import CommandError, ControlUnavailable, Handler, prepare_socket_path, request


async def _echo(args: dict[str, Any]) -> Any:
    return {"echo": args}


async def _refuse(args: dict[str, Any]) -> Any:
    raise CommandError("bad_request", "refuse: no")


async def _bug(args: dict[str, Any]) -> Any:
    raise ZeroDivisionError("division by zero")


HANDLERS: dict[str, Handler] = {"echo": _echo, "refuse": _refuse, "bug": _bug}


class Client:
    """A raw line client on a trio socket stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def reply(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    async def ask(self, data: bytes) -> dict[str, Any]:
        await self.send(data)
        return await self.reply()


async def _serve(nursery: trio.Nursery, path: Path, **options: Any) -> ControlActor:
    actor = ControlActor(path, HANDLERS, **options)
    await nursery.start(actor.run)
    return actor


async def _connect(path: Path) -> Client:
    return Client(await trio.open_unix_socket(str(path)))


async def test_requests_and_bad_input_on_one_connection(short_tmp: Path) -> None:
    path = short_tmp / "c.sock"
    async with trio.open_nursery() as nursery:
        await _serve(nursery, path)
        assert path.stat().st_mode & 0o777 == 0o660
        client = await _connect(path)

        ok = await client.ask(b'{"version": 1, "command": "echo", "args": {"a": 1}, "id": 7}\n')
        assert ok == {"version": 1, "id": 7, "ok": True, "result": {"echo": {"a": 1}}}

        bad_json = await client.ask(b"{nope\n")
        assert bad_json["ok"] is False
        assert bad_json["error"]["code"] == "bad_request"
        assert bad_json["error"]["message"].startswith("malformed request: JSON is malformed")

        missing = await client.ask(b'{"version": 1}\n')
        assert missing["error"]["message"] == (
            "malformed request: Object missing required field `command`"
        )

        unknown = await client.ask(b'{"version": 1, "command": "nope", "id": "x"}\n')
        assert unknown["id"] == "x"
        assert unknown["error"] == {"code": "unknown_command",
                                    "message": "unknown command 'nope' (known: bug, echo, refuse)"}

        version = await client.ask(b'{"version": 9, "command": "echo"}\n')
        assert version["error"]["code"] == "unsupported_version"

        extra = await client.ask(b'{"version": 1, "command": "echo", "bogus": 1}\n')
        assert "unknown field `bogus`" in extra["error"]["message"]

        refused = await client.ask(b'{"version": 1, "command": "refuse"}\n')
        assert refused["error"] == {"code": "bad_request", "message": "refuse: no"}

        bug = await client.ask(b'{"version": 1, "command": "bug"}\n')
        assert bug["error"] == {"code": "internal_error",
                                "message": "ZeroDivisionError: division by zero"}

        # Two requests in one write, and one split across writes, are both answered.
        await client.send(b'{"version":1,"command":"echo","id":1}\n{"version":1,"command":"ec')
        assert (await client.reply())["id"] == 1
        await client.send(b'ho","id":2}\n')
        assert (await client.reply())["id"] == 2

        # Blank lines are ignored; binary garbage is an error, not a crash.
        assert (await client.ask(b'\n\xff\xfe\x00\n'))["error"]["code"] == "bad_request"
        assert (await client.ask(b'{"version":1,"command":"echo","id":3}\n'))["id"] == 3
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_overlong_request_is_refused_and_the_connection_survives(short_tmp: Path) -> None:
    path = short_tmp / "c.sock"
    async with trio.open_nursery() as nursery:
        await _serve(nursery, path, max_request_bytes=1000)
        client = await _connect(path)
        too_long = await client.ask(b"x" * 5000)
        assert too_long["error"]["code"] == "request_too_large"
        await client.send(b"y" * 3000 + b"\n")
        assert (await client.ask(b'{"version":1,"command":"echo","id":4}\n'))["id"] == 4
        nursery.cancel_scope.cancel()


async def test_connection_limit(short_tmp: Path) -> None:
    path = short_tmp / "c.sock"
    async with trio.open_nursery() as nursery:
        actor = await _serve(nursery, path, max_connections=1)
        first = await _connect(path)
        assert (await first.ask(b'{"version":1,"command":"echo","id":1}\n'))["ok"]
        second = await _connect(path)
        assert (await second.reply())["error"]["code"] == "busy"
        assert actor.rejected_connections == 1
        nursery.cancel_scope.cancel()


async def test_stale_socket_is_replaced_and_a_live_one_refused(short_tmp: Path) -> None:
    path = short_tmp / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a kill -9 leaves behind
    async with trio.open_nursery() as nursery:
        await _serve(nursery, path)
        with pytest.raises(OSError, match=r"another ttamond is answering on .*c\.sock"):
            prepare_socket_path(path)
        reply = await trio.to_thread.run_sync(request, path, "echo", {"b": 2})
        assert reply == {"echo": {"b": 2}}
        with pytest.raises(CommandError, match="refuse: no"):
            await trio.to_thread.run_sync(request, path, "refuse")
        nursery.cancel_scope.cancel()


def test_something_else_in_the_way_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    path.write_text("precious")
    with pytest.raises(OSError, match=r"exists and is not a socket; not removing it"):
        prepare_socket_path(path)
    assert path.read_text() == "precious"


def test_client_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ControlUnavailable, match=r"no control socket at .*: is ttamond running\?"):
        request(tmp_path / "none.sock", "status")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))
    stale.close()
    with pytest.raises(ControlUnavailable, match=r"nothing answers on .*stale\.sock"):
        request(tmp_path / "stale.sock", "status")
