"""The async service client, under trio and asyncio, against real sockets and the real daemon."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.daemon_process import DaemonProcess
from ttamond.client import SERVICE_COMMANDS, MonitoringClient, ServiceError, ServiceUnavailable


def test_every_service_command_is_a_documented_method() -> None:
    methods = {name for name, member in inspect.getmembers(MonitoringClient)
               if inspect.iscoroutinefunction(member) and not name.startswith("_")}
    assert len(SERVICE_COMMANDS) == len(set(SERVICE_COMMANDS)) == 35
    assert methods == set(SERVICE_COMMANDS)
    for name in SERVICE_COMMANDS:
        method = getattr(MonitoringClient, name)
        assert method.__doc__, f"{name} has no docstring"
        assert f'self._call("{name}", args)' in inspect.getsource(method)


async def test_no_daemon_is_service_unavailable_under_trio(short_tmp: Path) -> None:
    client = MonitoringClient(short_tmp / "absent.sock")
    with pytest.raises(ServiceUnavailable, match=r"^no control socket at .*absent\.sock"):
        await client.get_system_status()


def test_no_daemon_is_service_unavailable_under_asyncio(short_tmp: Path) -> None:
    client = MonitoringClient(short_tmp / "absent.sock")
    with pytest.raises(ServiceUnavailable, match=r"^no control socket at .*absent\.sock"):
        asyncio.run(client.get_alert_metrics())


async def test_a_silent_daemon_is_service_unavailable_after_the_timeout(short_tmp: Path) -> None:
    path = short_tmp / "silent.sock"
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(str(path))
    listener.listen(1)
    with listener:
        client = MonitoringClient(path, timeout=0.2)
        with pytest.raises(ServiceUnavailable, match=r"no reply on .* within 0\.2 s"):
            await client.perform_health_check()


async def test_each_call_reaches_the_real_daemon_by_its_own_name(
    daemon: DaemonProcess,
) -> None:
    await trio.to_thread.run_sync(daemon.start_ready)
    client = MonitoringClient(daemon.socket_path)
    unknown = []
    for name in SERVICE_COMMANDS:
        try:
            await getattr(client, name)()
        except ServiceError as exc:
            # Bad arguments, nothing found, or a part not built yet: all answers from a
            # handler registered under this name. Only unknown_command would say not.
            if exc.code == "unknown_command":
                unknown.append(name)
    assert unknown == []


async def test_a_session_round_trip_through_the_real_daemon(daemon: DaemonProcess) -> None:
    await trio.to_thread.run_sync(daemon.start_ready)
    client = MonitoringClient(daemon.socket_path)
    session = await client.start_monitoring(component="narrative", environment="dev")
    assert (session["component"], session["state"]) == ("narrative", "active")
    status = await client.get_system_status()
    assert status["components"] == {"narrative": "active"}
    stopped = await client.stop_monitoring(session_id=session["session_id"], reason="done")
    assert (stopped["state"], stopped["reason"]) == ("stopped", "done")
    with pytest.raises(ServiceError, match=r"^not_found: no monitoring session 'nope'$"):
        await client.stop_monitoring(session_id="nope")
    created = await client.create_alert(name="ClientRaised", severity="critical",
                                        summary="raised by a component", component="narrative")
    assert (created["state"], created["priority"]) == ("firing", "P2")
    resolved = await client.resolve_alert(alert=created["fingerprint"])
    assert resolved["state"] == "resolved"
    with pytest.raises(ServiceError) as caught:
        await client.configure_alert_rules(rules=[])
    assert caught.value.code == "not_supported"


def test_the_real_daemon_answers_under_asyncio(daemon: DaemonProcess) -> None:
    daemon.start_ready()

    async def ask() -> Any:
        return await MonitoringClient(daemon.socket_path).get_system_status()

    assert asyncio.run(ask())["daemon"] == "running"
