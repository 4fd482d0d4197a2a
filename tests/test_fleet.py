"""A fleet on loopback: two ttamond daemons ("hosts"), a real Prometheus scraping both,
and two real Alertmanagers clustered with each other, notifying one webhook receiver.

Alertmanagers in a cluster share silences and the notification log, not alerts, so
every daemon posts to every Alertmanager; the cluster then notifies each alert once.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alertmanager import ALERTMANAGER, Alertmanager
from tests.daemon_process import FAST_CONFIG, DaemonProcess, until
from tests.probes.checks.servers import free_port
from tests.webhook import Receiver
from ttamond.control import request

PROMETHEUS = shutil.which("prometheus")
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"

pytestmark = pytest.mark.skipif(
    ALERTMANAGER is None or PROMETHEUS is None,
    reason="needs prometheus and prometheus-alertmanager (Debian packages of those names)")

AM_CONFIG = """\
route:
  receiver: hook
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{hook}"
        send_resolved: true
"""

DAEMON = """
[alerts]
instance = "{instance}"
evaluate_every = 0.2

[[alerts.rules]]
kind = "metric"
name = "MemoryInUse"
series = "host_memory_percent"
aggregate = "last"
window = 30.0
threshold = {threshold}
annotations = {{ summary = "memory at {{{{ $value }}}}%" }}

[[notify.channels]]
kind = "log"
name = "log"

[[notify.channels]]
kind = "alertmanager"
name = "fleet"
urls = [{urls}]
resend_every = 1.0
backoff_initial = 0.2
backoff_max = 1.0
"""


class Prometheus:
    """Prometheus scraping the given targets every second."""

    def __init__(self, folder: Path, targets: list[str]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: ttamond\n    static_configs: [{{targets: {targets!r}}}]\n")
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={config}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder)

    def query(self, promql: str) -> dict[str, Any]:
        """The API's answer, or {} while Prometheus is not ready yet."""
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-2000:]}")
        try:
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        except httpx.TransportError:
            return {}
        if answer.status_code == 503:
            return {}  # listening, but the TSDB is still opening ("Service Unavailable")
        reply: dict[str, Any] = answer.json()
        return reply

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def cluster(tmp_path: Path, receiver: Receiver) -> Iterator[list[Alertmanager]]:
    ports = [free_port(), free_port()]
    members: list[Alertmanager] = []
    try:
        for index, port in enumerate(ports):
            folder = tmp_path / f"am{index}"
            folder.mkdir()
            members.append(Alertmanager(folder, config=AM_CONFIG.format(hook=receiver.url),
                                        cluster_port=port,
                                        peers=tuple(p for p in ports if p != port)))
        for member in members:
            member.wait_ready()
        until(lambda: all(m.peers_now() == 2 for m in members), "the cluster to form")
        yield members
    finally:
        for member in members:
            member.stop()


def daemon_config(root: Path, instance: str, cluster: list[Alertmanager],
                  threshold: float) -> str:
    urls = ", ".join(f'"{member.url}"' for member in cluster)
    return (FAST_CONFIG.format(state=root / "state", run=root / "run", interval=0.5)
            + DAEMON.format(instance=instance, threshold=threshold, urls=urls))


def test_two_hosts_on_prometheus_and_a_clustered_alertmanager(
        tmp_path: Path, receiver: Receiver, cluster: list[Alertmanager]) -> None:
    hosts: dict[str, DaemonProcess] = {}
    for name in ("host-a", "host-b"):
        root = tmp_path / name
        root.mkdir()
        hosts[name] = DaemonProcess(root, config_text=daemon_config(root, name, cluster, 0))
    prometheus: Prometheus | None = None
    try:
        for host in hosts.values():
            host.start_ready()
        web = {name: host.status()["web"]["url"].removeprefix("http://").rstrip("/")
               for name, host in hosts.items()}
        (tmp_path / "prom").mkdir()
        prometheus = Prometheus(tmp_path / "prom", sorted(web.values()))

        # Both targets up, with the values each daemon reports (the first sample is
        # queryable some seconds after start: poll).
        def both_up() -> bool:
            result = prometheus.query('up{job="ttamond"}') if prometheus else {}
            values = result.get("data", {}).get("result", [])
            return len(values) == 2 and all(v["value"][1] == "1" for v in values)

        until(both_up, "both targets up in Prometheus", timeout=60)
        def memory() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = prometheus.query("host_memory_percent").get(
                "data", {}).get("result", []) if prometheus else []
            return found if len(found) == 2 else []

        scraped = {r["metric"]["instance"]: float(r["value"][1])
                   for r in until(memory, "host_memory_percent from both hosts")}
        assert sorted(scraped) == sorted(web.values())
        assert all(0 < value <= 100 for value in scraped.values())
        # The shipped dashboard's queries are valid PromQL for this Prometheus.
        dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert prometheus.query(target["expr"]).get("status") == "success", target

        # Each host's alert is in both Alertmanagers, and reaches the webhook once.
        def alerted(member: Alertmanager) -> bool:
            return {a["labels"]["instance"] for a in member.alerts_now()
                    if a["labels"]["alertname"] == "MemoryInUse"} == {"host-a", "host-b"}

        def heard(status: str, name: str) -> Callable[[], int]:
            return lambda: receiver.notified(status, "MemoryInUse", name)

        for member in cluster:
            until(partial(alerted, member), f"both alerts in {member.url}")
        for name in hosts:
            until(heard("firing", name), f"the webhook to hear of {name}")
        time.sleep(3.0)  # more than the peer timeout: a duplicate would have come by now
        assert [receiver.notified("firing", "MemoryInUse", n) for n in hosts] == [1, 1]

        # One Alertmanager down: a new alert still arrives, through the other.
        cluster[1].stop()
        raised = request(hosts["host-a"].socket_path, "trigger_alert", {
            "name": "DiskSwapping", "severity": "warning", "summary": "swap in use"})
        assert raised["state"] == "firing"
        until(lambda: receiver.notified("firing", "DiskSwapping", "host-a"),
              "the new alert through the remaining Alertmanager")
        stats = request(hosts["host-a"].socket_path, "alerts_stats")
        assert stats["channels"]["fleet"]["sent"] >= 1

        # Resolving (a reload with a threshold memory never reaches) notifies once.
        for host in hosts.values():
            host.config.write_text(daemon_config(host.root, host.root.name, cluster, 1000))
            host.signal(signal.SIGHUP)
        for name in hosts:
            until(heard("resolved", name), f"the resolution of {name}")
        time.sleep(2.0)
        assert [receiver.notified("resolved", "MemoryInUse", n) for n in hosts] == [1, 1]
    finally:
        if prometheus is not None:
            prometheus.stop()
        for host in hosts.values():
            if host.process is not None and host.process.poll() is None:
                host.signal(signal.SIGTERM)
                host.wait()
