"""The Docker probe and the Docker events actor against a real engine: podman serving the
Docker API on a Unix socket under a temporary folder (see tests/podman.py)."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
import trio
import trio.testing

from tests.podman import IMAGE, PodmanService, engine, own_engine, podman_root, shared_engine
from ttamond.actors.docker_events import DockerEventsActor
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.messages import MetricPoint, StoreEvent
from ttamond.probes.base import ProbeUnavailable
from ttamond.probes.docker import DEFAULT_URL, FIELDS, HEALTH, STATES, DockerProbe

# The engine fixtures live in tests/podman.py; importing them is how pytest finds them.
__all__ = ["engine", "own_engine", "podman_root", "shared_engine"]


def run_container(engine: PodmanService, name: str, *command: str, **options: Any) -> Any:
    """Create and start a container through the Docker API; returns the SDK's Container."""
    client = docker.DockerClient(base_url=engine.url)
    try:
        return client.containers.run(IMAGE, list(command), name=name, detach=True, **options)
    finally:
        client.close()


def of(points: list[MetricPoint], container: str) -> dict[tuple[str, str], float]:
    """The points of one container by (name, the state/health label or "")."""
    found: dict[tuple[str, str], float] = {}
    for point in points:
        labels = dict(point.labels)
        if labels.get("container") == container:
            found[(point.name, labels.get("state", labels.get("health", "")))] = point.value
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def test_a_running_container_shows_its_state_usage_and_labels(engine: PodmanService) -> None:
    busy = run_container(engine, "tt-busy", "sh", "-c", "while :; do :; done")
    idle = run_container(engine, "tt-idle", "sleep", "600")
    probe = DockerProbe(engine.url)
    first = probe.read()
    assert ("container_cpu_percent", "") not in of(first, "tt-busy")  # no previous sample yet
    time.sleep(0.5)  # not readiness: the window the CPU percentage is measured over
    points = probe.read()

    for point in points:
        field = FIELDS[point.name]
        assert tuple(sorted(key for key, _ in point.labels)) == tuple(sorted(field.labels))
        assert (point.kind, point.unit) == (field.kind, field.unit)
    labels = {dict(p.labels)["container"]: dict(p.labels) for p in points
              if p.name == "container_up"}
    assert labels["tt-busy"] == {"container": "tt-busy", "id": busy.id[:12], "image": IMAGE}
    assert labels["tt-idle"]["id"] == idle.id[:12]

    values = of(points, "tt-busy")
    assert values[("container_up", "")] == 1
    assert {state: values[("container_state", state)] for state in STATES} == {
        state: float(state == "running") for state in STATES}
    assert {health: values[("container_health", health)] for health in HEALTH} == {
        "healthy": 0, "unhealthy": 0, "starting": 0, "none": 1}
    assert ("container_healthy", "") not in values  # no health check
    assert values[("container_restarts_total", "")] == 0
    cpus = os.cpu_count() or 1
    assert 20 < values[("container_cpu_percent", "")] <= 100 * cpus + 10
    assert 0 <= of(points, "tt-idle")[("container_cpu_percent", "")] < 20
    assert 0 < values[("container_memory_used_bytes", "")] <= values[
        ("container_memory_limit_bytes", "")]
    assert values[("container_network_received_bytes_total", "")] >= 0
    assert values[("container_network_sent_bytes_total", "")] >= 0
    assert values[("container_block_read_bytes_total", "")] >= 0
    assert values[("container_block_written_bytes_total", "")] >= 0
    counts = {dict(p.labels)["state"]: p.value for p in points if p.name == "container_count"}
    assert set(counts) >= set(STATES) and counts["running"] == 2


def test_a_stopped_container_is_down_and_has_no_usage(engine: PodmanService) -> None:
    exited = run_container(engine, "tt-exited", "true")
    exited.wait(timeout=10)
    values = of(DockerProbe(engine.url).read(), "tt-exited")
    assert values[("container_up", "")] == 0
    assert values[("container_state", "exited")] == 1
    assert values[("container_state", "running")] == 0
    assert not any(name.startswith(("container_cpu", "container_memory", "container_network",
                                    "container_block")) for name, _ in values)


def test_restarts_and_health_come_from_the_engine(engine: PodmanService) -> None:
    client = docker.APIClient(base_url=engine.url)
    run_container(engine, "tt-crashing", "sh", "-c", "exit 1",
                  restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    wait_for(lambda: client.inspect_container("tt-crashing")["State"]["Status"] == "exited"
             and client.inspect_container("tt-crashing")["RestartCount"] == 2)
    run_container(engine, "tt-checked", "sleep", "600",
                  healthcheck={"test": ["CMD-SHELL", "test -e /tmp/ready"], "retries": 1})
    probe = DockerProbe(engine.url)
    assert of(probe.read(), "tt-checked")[("container_health", "starting")] == 1
    # No systemd timers here to run the check: run it as the timer would.
    assert engine.podman("healthcheck", "run", "tt-checked", check=False).returncode == 1
    values = of(probe.read(), "tt-checked")
    assert values[("container_health", "unhealthy")] == 1
    assert values[("container_healthy", "")] == 0
    assert of(probe.read(), "tt-crashing")[("container_restarts_total", "")] == 2
    client.close()


def test_an_unreachable_engine_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    with pytest.raises(ProbeUnavailable, match=re.escape(
            f"Docker engine unavailable at unix://{missing}: No such file or directory")):
        DockerProbe(f"unix://{missing}").read()
    with socket.socket(socket.AF_UNIX) as deaf:
        deaf.bind(str(tmp_path / "deaf.sock"))  # bound, never listening: refused
        with pytest.raises(ProbeUnavailable, match=re.escape(
                f"Docker engine unavailable at unix://{tmp_path}/deaf.sock: Connection refused")):
            DockerProbe(f"unix://{tmp_path}/deaf.sock").read()


def test_the_url_defaults_to_docker_host_then_the_docker_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/podman/podman.sock")
    assert DockerProbe().url == "unix:///run/podman/podman.sock"
    assert DockerProbe("tcp://127.0.0.1:2375").url == "tcp://127.0.0.1:2375"
    monkeypatch.delenv("DOCKER_HOST")
    assert DockerProbe().url == DEFAULT_URL == "unix:///var/run/docker.sock"


def test_an_engine_that_stops_is_unavailable_until_it_is_back(own_engine: PodmanService) -> None:
    run_container(own_engine, "tt-survivor", "sleep", "600")
    probe = DockerProbe(own_engine.url)
    assert of(probe.read(), "tt-survivor")[("container_up", "")] == 1
    own_engine.stop()
    with pytest.raises(ProbeUnavailable, match=re.escape(
            f"Docker engine unavailable at {own_engine.url}: No such file or directory")):
        probe.read()
    own_engine.start()
    assert of(probe.read(), "tt-survivor")[("container_up", "")] == 1


async def next_event(mailbox: Subscription[StoreEvent], container: str,
                     kind: str) -> dict[str, Any]:
    """The detail of the next event of `kind` about `container`, within 10 s."""
    with trio.fail_after(10):
        async for event in mailbox:
            detail: dict[str, Any] = json.loads(event.detail)
            if event.kind == kind and detail["container"] == container:
                return detail
    raise AssertionError("unreachable: the mailbox never ends")


def store_events(bus: Bus) -> Subscription[StoreEvent]:
    return bus.subscribe("events", (StoreEvent,), policy=Overflow.BLOCK, capacity=100)


async def test_a_container_that_exits_3_is_stored_as_a_die_with_exit_code_3(
    engine: PodmanService,
) -> None:
    bus = Bus()
    mailbox = store_events(bus)
    actor = DockerEventsActor(bus, engine.url)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        container = await trio.to_thread.run_sync(
            lambda: run_container(engine, "tt-three", "sh", "-c", "exit 3"))
        start = await next_event(mailbox, "tt-three", "container_start")
        die = await next_event(mailbox, "tt-three", "container_die")
        nursery.cancel_scope.cancel()
    assert start == {"container": "tt-three", "id": container.id[:12], "image": IMAGE}
    assert die == {**start, "exit_code": 3}


async def test_health_changes_are_stored_with_their_status(
    engine: PodmanService, tmp_path: Path,
) -> None:
    bus = Bus()
    mailbox = store_events(bus)

    async def check() -> None:
        # No systemd timers here to run the check: run it as the timer would.
        await trio.run_process(engine.podman_command("healthcheck", "run", "tt-sick"),
                               env=engine.env, check=False, capture_stdout=True)

    async with trio.open_nursery() as nursery:
        await nursery.start(DockerEventsActor(bus, engine.url).run)
        # The check looks for a file in a folder shared with the host, so the test can
        # make it pass without an exec (podman keeps an API exec's conmon for 5 minutes).
        await trio.to_thread.run_sync(lambda: run_container(
            engine, "tt-sick", "sleep", "600",
            volumes={str(tmp_path): {"bind": "/shared", "mode": "rw"}},
            healthcheck={"test": ["CMD-SHELL", "test -e /shared/ready"], "retries": 1}))
        await check()
        await check()  # unhealthy again: not a change, not stored
        (tmp_path / "ready").touch()
        await check()
        statuses: list[str] = []
        with trio.fail_after(10):
            while not statuses or statuses[-1] != "healthy":
                event = await mailbox.receive()
                detail = json.loads(event.detail)
                if event.kind == "container_health_status" and detail["container"] == "tt-sick":
                    statuses.append(detail["health"])
        nursery.cancel_scope.cancel()
    assert statuses == ["unhealthy", "healthy"]


async def test_the_actor_starts_without_an_engine_and_logs_that_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"unix://{tmp_path}/missing.sock"
    actor = DockerEventsActor(Bus(), url, unavailable_retry=60)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(250)  # five tries
        nursery.cancel_scope.cancel()
    assert actor.unavailable and actor.connections == 0
    assert [r.getMessage() for r in caplog.records if r.name.endswith("docker_events")] == [
        f"docker events: Docker engine unavailable at {url}: No such file or directory"
        " (retrying every 60 s)"]


async def test_cancelling_the_actor_ends_its_stream_thread(engine: PodmanService) -> None:
    actor = DockerEventsActor(Bus(), engine.url)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.sleep(0.1)  # not readiness: let the worker thread block on its read
            # The worker thread is waited for, not abandoned: this returns only because
            # cancelling closed the stream under it.
            nursery.cancel_scope.cancel()
    assert actor.connections == 1 and not actor.unavailable


async def test_the_actor_reconnects_and_catches_up_after_the_engine_stops(
    own_engine: PodmanService, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bus = Bus()
    mailbox = store_events(bus)
    actor = DockerEventsActor(bus, own_engine.url, unavailable_retry=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.to_thread.run_sync(own_engine.stop)
        # While the API is down the container still runs and dies (podman needs no
        # daemon); its events wait in podman's log.
        await trio.run_process(
            own_engine.podman_command("run", "--name", "tt-offline", IMAGE, "sh", "-c", "exit 7"),
            env=own_engine.env, check=False)
        await trio.sleep(0.5)  # not readiness: let a few reconnects fail while it is down
        await trio.to_thread.run_sync(own_engine.start)
        die = await next_event(mailbox, "tt-offline", "container_die")
        nursery.cancel_scope.cancel()
    assert die["exit_code"] == 7
    assert actor.connections == 2
    assert [r.getMessage() for r in caplog.records if r.name.endswith("docker_events")] == [
        f"docker events: lost the event stream from {own_engine.url} (retrying every 0.2 s)",
        f"docker events: following {own_engine.url} again",
    ]
