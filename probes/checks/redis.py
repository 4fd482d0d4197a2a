"""Health check of a Redis server, speaking RESP over trio: AUTH, PING, then INFO figures."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks._network import CheckFailed, open_connection, place
from ttamond.probes.checks.result import (
    CheckResult,
    Findings,
    Thresholds,
    elapsed_ms,
    failed,
    percent,
    timed_out,
)

VALUES: dict[str, FieldInfo] = {
    "latency_ms": FieldInfo("gauge", "ms", (), "connect, AUTH and PING"),
    "uptime_seconds": FieldInfo("gauge", "seconds", (), "since the server started"),
    "connected_clients": FieldInfo("gauge", "", (), "client connections, this one included"),
    "used_memory_bytes": FieldInfo("gauge", "bytes", (), "memory allocated by the server"),
    "maxmemory_bytes": FieldInfo("gauge", "bytes", (), "configured limit; 0 = none"),
    "memory_used_ratio": FieldInfo(
        "gauge", "", (), "used_memory / maxmemory; absent without a limit"),
}
"""Present only when PING was answered; an INFO figure only when the server gave it."""

_INFO_FIELDS = {
    "uptime_in_seconds": "uptime_seconds",
    "connected_clients": "connected_clients",
    "used_memory": "used_memory_bytes",
    "maxmemory": "maxmemory_bytes",
}
_LINE_LIMIT = 1 << 20
_BULK_LIMIT = 16 << 20


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A RESP error reply ("-NOAUTH Authentication required.")."""

    text: str


Reply = str | int | bytes | None | ErrorReply | list["Reply"]


async def check_redis(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
    password: str | None = None,
    latency_warn_ms: float | None = None,
    latency_crit_ms: float | None = None,
    memory_warn_ratio: float | None = None,
    memory_crit_ratio: float | None = None,
) -> CheckResult:
    """AUTH with `password` when given, PING, then read INFO server, memory and clients.

    Crit when the server cannot be reached, refuses AUTH or PING (the message quotes
    its error, NOAUTH or WRONGPASS), answers anything but PONG, or all this takes
    longer than `timeout` seconds. Warn or crit when the latency or, with a maxmemory
    set, the used memory ratio reaches its limits; warn when INFO is refused.
    """
    where = place(host, port)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            return await _check(host, port, password, started, Thresholds(
                latency_warn_ms, latency_crit_ms), Thresholds(memory_warn_ratio,
                                                              memory_crit_ratio))
        except CheckFailed as exc:
            return failed(str(exc), latency_ms=elapsed_ms(started))
    return timed_out(timeout, f"redis at {where}")


async def _check(host: str, port: int, password: str | None, started: float,
                 latency: Thresholds, memory: Thresholds) -> CheckResult:
    where = place(host, port)
    stream = await open_connection(host, port)
    try:
        client = _Client(stream, where)
        if password is not None:
            reply = await client.call("AUTH", password)
            if isinstance(reply, ErrorReply):
                raise CheckFailed(f"redis at {where} refused AUTH: {reply.text}")
        reply = await client.call("PING")
        latency_ms = elapsed_ms(started)
        if isinstance(reply, ErrorReply):
            raise CheckFailed(f"redis at {where} answered PING with {reply.text}")
        if reply != "PONG":
            raise CheckFailed(f"redis at {where} answered PING with {reply!r}")
        findings = Findings()
        info: dict[str, str] = {}
        # Sections one at a time: several sections in one INFO needs Redis 7.
        for section in ("server", "memory", "clients"):
            reply = await client.call("INFO", section)
            if isinstance(reply, ErrorReply):
                findings.add("warn", f"redis at {where} refused INFO: {reply.text}")
                break
            if isinstance(reply, bytes):
                info.update(parse_info(reply))
    finally:
        await trio.aclose_forcefully(stream)
    values = {"latency_ms": latency_ms}
    for field, name in _INFO_FIELDS.items():
        if info.get(field, "").isdigit():
            values[name] = float(info[field])
    findings.grade(latency_ms, latency, f"redis at {where} took {latency_ms:.0f} ms", " ms")
    if values.get("maxmemory_bytes", 0) > 0 and "used_memory_bytes" in values:
        ratio = values["used_memory_bytes"] / values["maxmemory_bytes"]
        values["memory_used_ratio"] = ratio
        findings.grade(ratio, memory, f"redis at {where} uses {percent(ratio)} of maxmemory",
                       show=percent)
    server = f"redis {info['redis_version']}" if "redis_version" in info else "redis"
    return findings.result(latency_ms=latency_ms, values=values, ok_message=(
        f"{server} at {where} answered PING in {latency_ms:.0f} ms"))


def parse_info(text: bytes) -> dict[str, str]:
    """The key:value lines of an INFO reply; section headers and blank lines skipped."""
    fields: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines():
        key, colon, value = line.partition(":")
        if colon and not line.startswith("#"):
            fields[key] = value.strip()
    return fields


class _Client:
    """Just enough RESP2: a command out, its reply in."""

    def __init__(self, stream: trio.abc.Stream, where: str) -> None:
        self._stream = stream
        self._where = where
        self._buffer = bytearray()

    async def call(self, *command: str) -> Reply:
        """Send one command and read its reply. Raises CheckFailed when the connection
        breaks or what comes back is not RESP."""
        encoded = bytearray(b"*%d\r\n" % len(command))
        for argument in command:
            data = argument.encode()
            encoded += b"$%d\r\n%s\r\n" % (len(data), data)
        try:
            await self._stream.send_all(encoded)
            return await self._reply()
        except trio.BrokenResourceError as exc:
            raise CheckFailed(f"connection to redis at {self._where} broke: "
                              f"{exc.__cause__ or exc}") from exc

    async def _reply(self) -> Reply:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            return ErrorReply(rest.decode(errors="replace"))
        if kind == b":" and _is_integer(rest):
            return int(rest)
        if kind == b"$" and _is_integer(rest):
            size = int(rest)
            if size < 0:
                return None
            if size > _BULK_LIMIT:
                raise CheckFailed(f"redis at {self._where} sent a {size}-byte reply")
            return (await self._exactly(size + 2))[:-2]
        if kind == b"*" and _is_integer(rest):
            count = int(rest)
            return None if count < 0 else [await self._reply() for _ in range(count)]
        raise CheckFailed(f"not a Redis server at {self._where}: it sent {line[:40]!r}")

    async def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > _LINE_LIMIT:
                raise CheckFailed(f"not a Redis server at {self._where}: no line end in "
                                  f"{_LINE_LIMIT} bytes")
            await self._receive()
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    async def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._receive()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def _receive(self) -> None:
        data = await self._stream.receive_some(65536)
        if not data:
            raise CheckFailed(f"redis at {self._where} closed the connection")
        self._buffer += data


def _is_integer(text: bytes) -> bool:
    return text.removeprefix(b"-").isdigit()
