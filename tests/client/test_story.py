"""The issue's story end to end: a component using the client library reports samples,
an AI invocation and two exceptions from one code path; they form one group of two,
and after a resolve a third event regresses it. Then the same over real HTTP."""

from __future__ import annotations

import time

import httpx
import msgspec

from tests.client.conftest import MonitorFactory
from tests.daemon_process import DaemonProcess
from ttamond.client import stack_frames
from ttamond.control import request


def load_save_slot(player: int) -> None:
    slots: dict[str, int] = {}
    slots[f"slot-{player}"]  # raises KeyError: the code path under test


def raise_and_catch(player: int) -> KeyError:
    try:
        load_save_slot(player)
    except KeyError as exc:
        return exc
    raise AssertionError("load_save_slot did not raise")


def wait_for_groups(daemon: DaemonProcess, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        groups: list[dict[str, object]] = request(daemon.socket_path, "errors_list",
                                                  {"component": "narrative"})
        if sum(int(str(g["count"])) for g in groups) >= count or time.monotonic() > deadline:
            return groups
        time.sleep(0.05)


def test_client_library_story(daemon: DaemonProcess, make_monitor: MonitorFactory) -> None:
    daemon.start_ready()
    monitor = make_monitor("narrative", socket_path=daemon.socket_path, release="1.0.0")
    monitor.gauge("tta_active_players", 3, world="forest")
    with monitor.track_inference(model="llama-3-8b", operation="narrate") as call:
        call.tokens_in, call.tokens_out = 120, 380
    for player in (17, 4242):
        monitor.record_error(raise_and_catch(player))
    assert monitor.flush(timeout=10)

    groups = wait_for_groups(daemon, 2)
    assert len(groups) == 1, groups
    group = groups[0]
    assert group["count"] == 2 and group["error_type"] == "KeyError"
    assert group["title"] == "KeyError: '<str>'"
    detail = request(daemon.socket_path, "errors_show", {"group": group["id"]})
    functions = [frame["function"] for frame in detail["events"][0]["stack"]]
    assert functions[-2:] == ["raise_and_catch", "load_save_slot"]
    assert daemon.query("SELECT count(*) FROM series WHERE name = 'tta_ai_tokens_out'"
                        " AND labels LIKE '%llama-3-8b%'")[0][0] == 1
    assert daemon.query("SELECT count(*) FROM series WHERE name = 'tta_active_players'")[0][0]

    resolved = daemon.cli("errors", "resolve", str(group["id"]))
    assert resolved.returncode == 0, resolved.stderr
    monitor.record_error(raise_and_catch(99))
    assert monitor.flush(timeout=10)
    wait_for_groups(daemon, 3)
    again = request(daemon.socket_path, "errors_show", {"group": group["id"]})["group"]
    assert again["state"] == "regressed" and again["count"] == 3


def test_http_story(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    status = daemon.wait_for_status(lambda s: s["web"] is not None)
    url = status["web"]["url"] + "api/v1/ingest"

    def event(player: int) -> dict[str, object]:
        exc = raise_and_catch(player)
        return {"type": "error", "component": "narrative", "environment": "prod",
                "error_type": "KeyError", "message": str(exc),
                "stack": msgspec.to_builtins(stack_frames(exc.__traceback__))}

    batch = [{"type": "metrics", "component": "narrative", "environment": "prod",
              "samples": [{"name": "tta_active_players", "value": 3}]},
             {"type": "ai_metrics", "component": "narrative", "environment": "prod",
              "model": "llama-3-8b", "inference_time_ms": 640.0, "tokens_out": 200},
             event(17), event(4242)]
    reply = httpx.post(url, json={"messages": batch}, timeout=10)
    assert reply.status_code == 200 and reply.json() == {"accepted": 4, "rejected": [],
                                                         "ack": "durable"}
    groups = request(daemon.socket_path, "errors_list")
    assert [g["count"] for g in groups] == [2]
    request(daemon.socket_path, "resolve_error", {"group": groups[0]["id"]})
    assert httpx.post(url, json={"messages": [event(5)]}, timeout=10).status_code == 200
    assert request(daemon.socket_path, "errors_list")[0]["state"] == "regressed"
