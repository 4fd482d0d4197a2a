"""Ingestion through the real daemon: the control socket and HTTP, validation, limits,
durable acknowledgement across kill -9, and error groups with regressions."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_process import DaemonProcess
from ttamond.control import CommandError, request

NOW_MS = int(time.time() * 1000)


def base(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "component": "narrative", "environment": "dev", **fields}


def samples(count: int, name: str = "tta_turns_total", start: int = 0) -> dict[str, Any]:
    return base("metrics", samples=[
        {"name": name, "value": float(i), "kind": "counter", "timestamp_ms": NOW_MS + start + i,
         "labels": {"chapter": "one"}} for i in range(count)])


def error(number: int, *, release: str = "", severity: str = "error") -> dict[str, Any]:
    # Two raises from the same code path with different numbers (and personal data)
    # in the message: one group.
    return base(
        "error", error_type="KeyError",
        message=f"player {number} has no save slot {number * 7} (mail jo{number}@example.org)",
        release=release, severity=severity, user_session_id=f"session-{number}",
        stack=[{"module": "narrative.engine", "function": "load_chapter",
                "filename": "/srv/narrative/engine.py", "lineno": 40 + number},
               {"module": "redis.client", "function": "get", "in_app": False,
                "filename": "/usr/lib/python3/site-packages/redis/client.py", "lineno": 9}],
        context={"email": f"jo{number}@example.org", "chapter": 3, "password": "hunter2"},
    )


def ingest(daemon: DaemonProcess, messages: list[Any], ack: str = "durable") -> Any:
    return request(daemon.socket_path, "ingest", {"messages": messages, "ack": ack})


def web_url(daemon: DaemonProcess) -> str:
    status = daemon.wait_for_status(lambda s: s["web"] is not None)
    return str(status["web"]["url"])


def test_socket_ingest_validates_each_message_and_keeps_the_valid_ones(
    daemon: DaemonProcess,
) -> None:
    daemon.start_ready()
    reply = ingest(daemon, [
        samples(3),
        base("db_operation", database="neo4j", operation="match", duration_ms="slow"),
        base("ai_metrics", model="llama-3-8b", inference_time_ms=812.5, tokens_in=120,
             tokens_out=380, energy_joules=41.0),
        {"type": "nonsense"},
        samples(1, name="bad name"),
        base("heartbeat", session_id="s-1", environment="staging"),
    ])
    assert reply["accepted"] == 2
    assert reply["rejected"] == [
        {"index": 1, "error": "[1].duration_ms: expected float, got str"},
        {"index": 3, "error": "[3].type: invalid value 'nonsense'"},
        {"index": 4, "error": "[4].samples[0].name: 'bad name' is not a metric name"
                              " ([a-zA-Z_:][a-zA-Z0-9_:]*)"},
        {"index": 5, "error": "[5].environment: invalid enum value 'staging'"},
    ]
    # Durable: committed before the reply, so a read right now sees it.
    rows = daemon.query(
        "SELECT s.name, s.labels, count(*) FROM samples JOIN series s ON s.id = series_id"
        " WHERE s.name LIKE 'tta_%' GROUP BY 1, 2 ORDER BY 1")
    names = {name: json.loads(labels) for name, labels, _ in rows}
    assert names["tta_turns_total"] == {"chapter": "one", "component": "narrative",
                                        "environment": "dev"}
    assert names["tta_ai_tokens_out"]["model"] == "llama-3-8b"
    assert dict((n, c) for n, _, c in rows)["tta_turns_total"] == 3


def test_malformed_frames_get_an_error_and_the_daemon_keeps_serving(
    daemon: DaemonProcess,
) -> None:
    daemon.start_ready()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(daemon.socket_path))
        stream = sock.makefile("rwb")

        def send(line: bytes) -> dict[str, Any]:
            stream.write(line + b"\n")
            stream.flush()
            return dict(json.loads(stream.readline()))

        assert send(b"\x00\xff garbage")["error"]["code"] == "bad_request"
        truncated = b'{"version": 1, "command": "ingest", "args": {"messages": [{"type": "me'
        assert send(truncated)["error"]["code"] == "bad_request"
        not_batch = send(b'{"version": 1, "command": "ingest", "args": {"messages": 7}}')
        assert not_batch["error"] == {
            "code": "bad_request",
            "message": "not an ingest batch: messages: expected array, got int"}
        too_many = json.dumps({"version": 1, "command": "ingest",
                               "args": {"messages": [{}] * 10_001}}).encode()
        assert send(too_many)["error"]["code"] == "batch_too_large"
        huge = json.dumps({"version": 1, "command": "ingest",
                           "args": {"messages": [samples(1)], "pad": "x" * 2_000_000}}).encode()
        assert send(huge)["error"]["code"] == "request_too_large"
        # Same connection, still answering.
        ok = send(json.dumps({"version": 1, "command": "ingest",
                              "args": {"messages": [samples(2)]}}).encode())
        assert ok["ok"] and ok["result"]["accepted"] == 1
    assert daemon.status()["state"] == "running"


def test_http_ingest_limits_and_access(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    url = web_url(daemon) + "api/v1/ingest"
    reply = httpx.post(url, json={"messages": [samples(2), {"type": "error"}]}, timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["error"].startswith("[1]: object missing required field")

    junk = httpx.post(url, content=b"{not json", timeout=10)
    assert junk.status_code == 400 and junk.json()["error"]["code"] == "bad_request"
    truncated = httpx.post(url, content=b'{"messages": [{"type": "metrics", "compo', timeout=10)
    assert truncated.status_code == 400
    assert truncated.json()["error"]["message"].startswith("not an ingest batch")
    big = httpx.post(url, content=b"[" + b" " * (4 * 1024 * 1024 + 1) + b"]", timeout=10)
    assert big.status_code == 413
    assert "ingest.max_body_bytes" in big.json()["error"]["message"]
    many = httpx.post(url, json={"messages": [{}] * 10_001}, timeout=10)
    assert many.status_code == 413 and many.json()["error"]["code"] == "batch_too_large"
    assert httpx.get(url, timeout=10).status_code == 405
    assert daemon.status()["ingest"]["accepted"] == 1


def test_http_ingest_from_another_address_needs_the_token(short_tmp: Path) -> None:
    # The daemon listens on every address; the test reaches it through this host's
    # own non-loopback address, so the request does not come from loopback.
    outside = _non_loopback_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    daemon = DaemonProcess(short_tmp)
    config = daemon.config.read_text().replace('bind = "127.0.0.1:0"', 'bind = "0.0.0.0:0"')
    daemon.config.write_text(config + '\n[ingest]\ntoken = "s3cret-token"\n')
    try:
        daemon.start_ready()
        port = web_url(daemon).rsplit(":", 1)[1].rstrip("/")
        url = f"http://{outside}:{port}/api/v1/ingest"
        batch = {"messages": [samples(1)]}
        assert httpx.post(url, json=batch, timeout=10).status_code == 401
        wrong = httpx.post(url, json=batch, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        right = httpx.post(url, json=batch, headers={"Authorization": "Bearer s3cret-token"},
                           timeout=10)
        assert right.status_code == 200 and right.json()["accepted"] == 1
    finally:
        daemon.close()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else str(address)


def test_durable_acknowledgements_survive_kill_9(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    acknowledged = 0
    for batch in range(20):
        reply = ingest(daemon, [samples(500, name="tta_durable_total", start=batch * 500)])
        acknowledged += 500 * reply["accepted"]
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    stored = daemon.query(
        "SELECT count(*) FROM samples JOIN series s ON s.id = series_id"
        " WHERE s.name = 'tta_durable_total'")[0][0]
    assert stored == acknowledged == 10_000


def test_errors_group_scrub_and_regress(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    assert ingest(daemon, [error(1), error(2)])["accepted"] == 2
    groups = request(daemon.socket_path, "errors_list")
    assert len(groups) == 1
    group = groups[0]
    assert group["count"] == 2 and group["state"] == "unresolved"
    assert group["sessions"] == 2 and group["components"] == ["narrative"]
    assert group["title"] == "KeyError: player <n> has no save slot <n> (mail <email>)"

    detail = request(daemon.socket_path, "errors_show", {"group": group["fingerprint"][:8]})
    stored = json.dumps(detail)
    assert "example.org" not in stored and "hunter2" not in stored
    assert "session-1" not in stored  # pseudonymised
    event = detail["events"][0]
    assert event["context"]["chapter"] == 3
    assert [f["function"] for f in event["stack"]] == ["load_chapter", "get"]

    changed = request(daemon.socket_path, "resolve_error",
                      {"group": group["id"], "resolved_in": "2.4.0"})
    assert changed["state"] == "resolved" and changed["previous_state"] == "unresolved"
    # An event from a release older than the fix does not regress the group...
    ingest(daemon, [error(3, release="2.3.9")])
    assert request(daemon.socket_path, "errors_list")[0]["state"] == "resolved"
    # ...one from the fixed release does.
    ingest(daemon, [error(4, release="2.4.0")])
    again = request(daemon.socket_path, "errors_list")[0]
    assert again["state"] == "regressed" and again["count"] == 4

    cli = daemon.cli("errors", "show", str(group["id"]))
    assert cli.returncode == 0, cli.stderr
    assert "regressed" in cli.stdout and "load_chapter" in cli.stdout
    listing = daemon.cli("errors", "list", "--state", "regressed")
    assert "KeyError" in listing.stdout
    ignored = daemon.cli("errors", "ignore", str(group["id"]))
    assert ignored.returncode == 0 and "regressed -> ignored" in ignored.stdout
    missing = daemon.cli("errors", "show", "99999")
    assert missing.returncode != 0 and "no error group '99999'" in missing.stderr


def test_critical_errors_and_monitoring_sessions(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    session = request(daemon.socket_path, "start_monitoring",
                      {"component": "player-interface", "environment": "prod"})
    assert session["state"] == "active" and session["component"] == "player-interface"
    ingest(daemon, [error(1, severity="critical")])
    status = request(daemon.socket_path, "get_system_status")
    assert status["components"] == {"player-interface": "active"}
    stopped = request(daemon.socket_path, "stop_monitoring",
                      {"session_id": session["session_id"]})
    assert stopped["state"] == "stopped"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = daemon.query("SELECT source, detail FROM events WHERE kind = 'critical_error'")
        if rows:
            break
        time.sleep(0.05)
    assert rows and rows[0][0] == "narrative"
    kinds = {row[0] for row in daemon.query("SELECT kind FROM events")}
    assert {"monitoring_started", "monitoring_stopped"} <= kinds
    with pytest.raises(CommandError, match=r"carbon tracking is off"):
        request(daemon.socket_path, "generate_carbon_report")


def test_accepted_acknowledgement_answers_before_the_commit(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    reply = ingest(daemon, [samples(5, name="tta_accepted_total")], ack="accepted")
    assert reply == {"accepted": 1, "rejected": [], "ack": "accepted"}
    deadline = time.monotonic() + 10
    stored = 0
    while stored < 5 and time.monotonic() < deadline:
        stored = daemon.query("SELECT count(*) FROM samples JOIN series s ON s.id = series_id"
                              " WHERE s.name = 'tta_accepted_total'")[0][0]
        time.sleep(0.05)
    assert stored == 5
    human = daemon.cli("status")
    assert "ingest    " in human.stdout and "1 messages accepted" in human.stdout
