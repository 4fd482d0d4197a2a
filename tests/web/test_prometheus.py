"""A real Prometheus server scrapes the web actor and answers with what it reported."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.web import FakeDaemon, serve_web, value
from ttamond import __version__

PROMETHEUS = shutil.which("prometheus")
DEADLINE = 30.0

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian package `prometheus`)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrometheusServer:
    """A Prometheus process on loopback with its own config and storage under tmp."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, target: str) -> None:
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: ttamond\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={config}",
                 f"--storage.tsdb.path={self.folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    async def query(self, client: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
        """The instant vector for `promql`; [] while Prometheus is not up yet."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"prometheus exited {self.process.returncode}:\n{self.tail()}")
        try:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.TransportError:
            return []
        if response.status_code != 200:
            return []
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    async def wait_for(self, client: httpx.AsyncClient, promql: str, expected: float,
                       ) -> dict[str, str]:
        """Poll until `promql` gives one series with `expected`; return its labels."""
        deadline = trio.current_time() + DEADLINE
        seen: list[dict[str, Any]] = []
        while trio.current_time() < deadline:
            seen = await self.query(client, promql)
            if len(seen) == 1 and float(seen[0]["value"][1]) == expected:
                labels: dict[str, str] = seen[0]["metric"]
                return labels
            await trio.sleep(0.2)
        raise AssertionError(f"{promql}: wanted {expected}, last saw {seen}\n{self.tail()}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path)
    yield server
    server.stop()


async def test_prometheus_scrapes_the_latest_values(prometheus: PrometheusServer) -> None:
    daemon = FakeDaemon([
        value("host_memory_available_bytes", 123_456_789.0, unit="bytes"),
        value("host_net_received_bytes_total", 42.0, "counter", "bytes", interface="eth0"),
        value("tta.player-sessions", 5.0, source="client", **{"component-name": 'the "ai"'}),
    ])
    async with serve_web(daemon) as actor, httpx.AsyncClient() as client:
        prometheus.start(f"127.0.0.1:{actor.port}")

        await prometheus.wait_for(client, "host_memory_available_bytes", 123_456_789.0)
        assert await prometheus.wait_for(
            client, "host_net_received_bytes_total", 42.0
        ) == {"__name__": "host_net_received_bytes_total", "interface": "eth0",
              "instance": f"127.0.0.1:{actor.port}", "job": "ttamond"}
        sessions = await prometheus.wait_for(client, "tta_player_sessions", 5.0)
        assert sessions["component_name"] == 'the "ai"'
        await prometheus.wait_for(client, f'ttamond_build_info{{version="{__version__}"}}', 1.0)
        await prometheus.wait_for(client, 'up{job="ttamond"}', 1.0)

        # A new latest value reaches Prometheus at the next scrape.
        daemon.values[0] = value("host_memory_available_bytes", 99.0, unit="bytes")
        await prometheus.wait_for(client, "host_memory_available_bytes", 99.0)
        await prometheus.wait_for(client, 'sum(ttamond_exposition_skipped_series)', 0.0)
