"""`get_performance_summary` on the real daemon, and `ttamond report` reading the
database of a daemon that is running."""

from __future__ import annotations

import json

import pytest
import trio

from tests.daemon_process import DaemonProcess
from ttamond.client import MonitoringClient, ServiceError


async def test_the_performance_summary_through_the_service_call(daemon: DaemonProcess) -> None:
    await trio.to_thread.run_sync(daemon.start_ready)
    client = MonitoringClient(daemon.socket_path)
    await client.collect_ai_model_metrics(component="narrative", environment="dev", model="m1",
                                          inference_time_ms=250.0, success=False)
    # The host collector samples every 0.2 s; wait for a reading to be stored.
    with trio.fail_after(20):
        while True:
            summary = await client.get_performance_summary(since=600)
            if summary["resources"] and summary["overall"]["operations"]:
                break
            await trio.sleep(0.1)
    assert summary["until_ms"] - summary["since_ms"] == 600_000
    assert summary["overall"]["operations"] == 1
    assert summary["overall"]["response_avg_s"] == 0.25
    assert summary["overall"]["error_rate"] == 1.0
    assert [row["component"] for row in summary["operations"]] == ["narrative"]
    cpu = next(r for r in summary["resources"] if r["resource"] == "cpu")
    assert 0 <= cpu["avg_percent"] <= cpu["peak_percent"] <= 100

    default = await client.get_performance_summary()
    assert default["until_ms"] - default["since_ms"] == 86_400_000
    absolute = await client.get_performance_summary(since_ms=summary["since_ms"],
                                                    until_ms=summary["until_ms"])
    assert (absolute["since_ms"], absolute["until_ms"]) == (summary["since_ms"],
                                                            summary["until_ms"])
    with pytest.raises(ServiceError, match=r"^bad_request: 'since' must be a number of"
                                           r" seconds over 0$"):
        await client.get_performance_summary(since=-5)
    with pytest.raises(ServiceError, match=r"^bad_request: 'since_ms' must be before"):
        await client.get_performance_summary(since_ms=summary["until_ms"] + 1,
                                             until_ms=summary["until_ms"])

    # The report reads the same database while the daemon writes it.
    done = await trio.to_thread.run_sync(lambda: daemon.cli("report", "--since", "10m",
                                                            "--format", "json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["performance"]["overall"]["operations"] == 1
