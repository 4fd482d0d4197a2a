"""The Redis check against a real redis-server started on loopback for each test."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from tests.probes.checks.servers import free_port, serve_tcp
from ttamond.probes.checks import check_redis
from ttamond.probes.checks.redis import parse_info


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


StartRedis = Callable[..., RedisServer]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Starts redis-server on a free loopback port with extra options, without
    persistence; returns once it accepts connections. Each is stopped at teardown."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    servers: list[RedisServer] = []

    def start(*options: str) -> RedisServer:
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp_path), *options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        server = RedisServer(port, process)
        servers.append(server)
        # Its log goes to stdout; this line means the port is open.
        for line in process.stdout or ():
            if "Ready to accept connections" in line:
                return server
        raise RuntimeError(f"redis-server exited with status {process.wait()} before it "
                           "was ready")

    yield start
    for server in servers:
        server.stop()


async def redis_call(port: int, *command: str) -> bytes:
    """Send one command on a connection of its own; the first reply line."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        encoded = b"*%d\r\n" % len(command) + b"".join(
            b"$%d\r\n%s\r\n" % (len(part), part.encode()) for part in command)
        await stream.send_all(encoded)
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += await stream.receive_some(4096)
        return reply.split(b"\r\n")[0]


async def test_a_running_server_is_ok_with_its_figures(start_redis: StartRedis) -> None:
    server = start_redis("--maxmemory", "100mb")
    result = await check_redis("127.0.0.1", server.port, timeout=5)
    assert result.status == "ok"
    assert re.fullmatch(rf"redis \d+\.\d+\.\d+ at 127\.0\.0\.1:{server.port} answered PING in "
                        r"\d+ ms", result.message)
    values = result.values
    assert set(values) == {"latency_ms", "uptime_seconds", "connected_clients",
                           "used_memory_bytes", "maxmemory_bytes", "memory_used_ratio"}
    assert values["connected_clients"] >= 1
    assert values["maxmemory_bytes"] == 100 * 1024 * 1024
    assert 0 < values["memory_used_ratio"] == values["used_memory_bytes"] / (100 << 20)


async def test_without_maxmemory_no_ratio_is_given(start_redis: StartRedis) -> None:
    server = start_redis()
    result = await check_redis("127.0.0.1", server.port, timeout=5, memory_warn_ratio=0.5)
    assert result.status == "ok"
    assert result.values["maxmemory_bytes"] == 0
    assert "memory_used_ratio" not in result.values


async def test_memory_limits_grade_the_used_ratio(start_redis: StartRedis) -> None:
    server = start_redis("--maxmemory", "100mb")
    result = await check_redis("127.0.0.1", server.port, timeout=5, memory_warn_ratio=0.001,
                               memory_crit_ratio=0.99)
    assert result.status == "warn"
    assert result.message.startswith(f"redis at 127.0.0.1:{server.port} uses ")
    assert result.message.endswith(" of maxmemory (warn at 0.1%)")


async def test_a_stopped_server_is_crit_connection_refused(start_redis: StartRedis) -> None:
    server = start_redis()
    server.stop()
    result = await check_redis("127.0.0.1", server.port, timeout=5)
    assert (result.status, result.message) == (
        "crit", f"connection refused on 127.0.0.1:{server.port}")
    assert result.values == {}


async def test_a_paused_server_times_out_crit(start_redis: StartRedis) -> None:
    server = start_redis()
    # Holds every client's commands, ours included, for 1.5 s: a real slow answer.
    assert await redis_call(server.port, "CLIENT", "PAUSE", "1500", "ALL") == b"+OK"
    started = trio.current_time()
    result = await check_redis("127.0.0.1", server.port, timeout=0.5)
    assert trio.current_time() - started < 1.4
    assert (result.status, result.message) == (
        "crit", f"timed out after 0.5 s on redis at 127.0.0.1:{server.port}")


async def test_the_right_password_is_ok(start_redis: StartRedis) -> None:
    server = start_redis("--requirepass", "open sesame")
    result = await check_redis("127.0.0.1", server.port, timeout=5, password="open sesame")
    assert result.status == "ok"
    assert "uptime_seconds" in result.values


async def test_a_missing_password_is_crit_with_the_servers_words(start_redis: StartRedis) -> None:
    server = start_redis("--requirepass", "open sesame")
    result = await check_redis("127.0.0.1", server.port, timeout=5)
    assert (result.status, result.message) == (
        "crit", f"redis at 127.0.0.1:{server.port} answered PING with NOAUTH Authentication "
        "required.")


async def test_a_wrong_password_is_crit_with_the_servers_words(start_redis: StartRedis) -> None:
    server = start_redis("--requirepass", "open sesame")
    result = await check_redis("127.0.0.1", server.port, timeout=5, password="guess")
    assert result.status == "crit"
    assert result.message.startswith(f"redis at 127.0.0.1:{server.port} refused AUTH: "
                                     "WRONGPASS")
    assert "guess" not in result.message


async def test_latency_limits_grade_the_round_trip(start_redis: StartRedis) -> None:
    server = start_redis()
    result = await check_redis("127.0.0.1", server.port, timeout=5, latency_warn_ms=0,
                               latency_crit_ms=10_000)
    assert result.status == "warn"
    assert result.message.endswith(" ms (warn at 0 ms)")


async def test_a_server_that_is_not_redis_is_crit(nursery: trio.Nursery) -> None:
    async def greet(stream: trio.SocketStream) -> None:
        await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n")

    port = await serve_tcp(nursery, greet)
    result = await check_redis("127.0.0.1", port, timeout=5)
    assert (result.status, result.message) == (
        "crit", f"not a Redis server at 127.0.0.1:{port}: it sent b'SSH-2.0-OpenSSH_9.6'")


def test_info_lines_are_read_without_headers() -> None:
    text = b"# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\n\r\n# Clients\r\n"
    assert parse_info(text) == {"redis_version": "7.0.15", "uptime_in_seconds": "12"}
