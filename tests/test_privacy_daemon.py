"""Privacy through the real daemon: personal data sent in through the ingestion path
never reaches the database file or its WAL (read as bytes); erasure removes a person
at the byte level; the audit trail verifies and shows tampering; engagement reports
are k-anonymous."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.daemon_process import FAST_CONFIG, DaemonProcess
from ttamond.control import request

NOW_MS = int(time.time() * 1000)
PLAYERS = [f"player-{n}@example.org" for n in range(7)]
SECRETS = [
    "jo.smith@example.org", "+44 20 7946 0958", "4111 1111 1111 1111",
    "sk-live4f3c2b1a0e9d8c7b6a5", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc123def",
    "GB82 WEST 1234 5698 7654 32", "192.168.14.201", "Margaret Hale",
    *PLAYERS, "therapy-session-77",
]
PRIVACY = """
[privacy]
names = ["Margaret Hale"]
k = 3
"""


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "component": "player-interface", "environment": "prod",
            "timestamp_ms": NOW_MS, **fields}


def personal_messages() -> list[dict[str, Any]]:
    """Errors and engagement events full of personal data, as a careless component
    would send them."""
    found: list[dict[str, Any]] = [message(
        "error", error_type="ValueError", severity="error",
        message=("save failed for jo.smith@example.org (+44 20 7946 0958), card 4111 1111"
                 " 1111 1111, from 192.168.14.201, Margaret Hale's account"),
        user_session_id="therapy-session-77",
        context={"auth": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc123def",
                 "iban": "GB82 WEST 1234 5698 7654 32", "key": "sk-live4f3c2b1a0e9d8c7b6a5"},
        stack=[{"module": "ui.save", "function": "store", "filename": "/srv/ui/save.py",
                "lineno": 12, "vars": {"email": "jo.smith@example.org"}}])]
    # Personal data where it does not belong: in series labels, kept for months.
    found += [message("metrics", samples=[{"name": "tta_profile_views", "value": 1.0,
                                           "labels": {"viewer": "jo.smith@example.org"}}]),
              message("network", protocol="https", bytes_sent=10, bytes_received=20,
                      endpoint="/players/jo.smith@example.org/notes?phone=+44 20 7946 0958")]
    for index, player in enumerate(PLAYERS):
        session = f"{player}/s1"
        found += [
            message("engagement", event="session_start", user_id=player, session_id=session,
                    properties={"chapter": "1", "note": f"call {player} on +44 20 7946 0958"}),
            message("engagement", event="interaction", user_id=player, session_id=session),
            message("engagement", event="choice", user_id=player, session_id=session,
                    properties={"chapter": "1", "arc": "harbour"}),
            message("engagement", event="outcome", user_id=player, session_id=session,
                    properties={"name": "wellbeing", "value": 3 + index}),
            message("engagement", event="chapter_complete", user_id=player,
                    session_id=session, properties={"chapter": "1"}),
            message("engagement", event="session_end", user_id=player, session_id=session),
        ]
    return found


def stored_bytes(daemon: DaemonProcess) -> bytes:
    """The database file, its WAL and its spool, as bytes."""
    found = b""
    for suffix in ("", "-wal", ".spool"):
        path = Path(f"{daemon.database}{suffix}")
        if path.exists():
            found += path.read_bytes()
    return found


def leaks(data: bytes, values: list[str]) -> list[str]:
    return [value for value in values if value.encode() in data]


def test_personal_data_never_reaches_the_disk_and_erasure_is_complete(tmp_path: Path) -> None:
    config = FAST_CONFIG.format(state=tmp_path / "state", run=tmp_path / "run",
                                interval=0.5) + PRIVACY
    daemon = DaemonProcess(tmp_path, config_text=config)
    daemon.start_ready()
    try:
        reply = request(daemon.socket_path, "ingest",
                        {"messages": personal_messages(), "ack": "durable"})
        assert reply["accepted"] == 3 + 6 * len(PLAYERS), reply
        status = daemon.status()
        assert status["privacy"]["dropped_fields"] == len(PLAYERS)  # each "note"
        assert status["privacy"]["keys"] == 1

        # Aggregates only, and k-anonymous: 7 players, k = 3.
        report = json.loads(daemon.cli("engagement", "report", "--json").stdout)
        assert (report["people"], report["sessions"], report["completion_rate"]) == (7, 7, 1.0)
        assert "player-" not in json.dumps(report)
        page = httpx.get(f'{status["web"]["url"]}engagement?inline=1', timeout=10).text
        assert "<th>players</th><td>7</td>" in page
        assert "player-" not in page and not re.search(r"p\d+:[0-9a-f]{24}", page)
        patterns = request(daemon.socket_path, "analyze_session_patterns", {})
        assert set(patterns) == {"since_ms", "k", "people", "hours", "lengths", "drop_off",
                                 "suppressed"}

        with sqlite3.connect(daemon.database) as db:
            rows = db.execute("SELECT pseudonym, name, chapter, extra FROM engagement_events"
                              " WHERE event = 'outcome'").fetchall()
        assert len(rows) == len(PLAYERS)
        assert all(p.startswith("p") and ":" in p for p, _, _, _ in rows)
        assert {name for _, name, _, _ in rows} == {"wellbeing"}

        # Erase one person: their rows go, the others stay, the audit says so.
        with sqlite3.connect(daemon.database) as db:
            before = {row[0] for row in db.execute(
                "SELECT pseudonym FROM engagement_events UNION"
                " SELECT session FROM engagement_events")}
        erased = daemon.cli("privacy", "erase", "--subject", PLAYERS[0], "--by", "dpo")
        assert erased.returncode == 0, erased.stderr
        assert "engagement_events 6" in erased.stdout
        with sqlite3.connect(daemon.database) as db:
            left = db.execute("SELECT count(DISTINCT pseudonym) FROM engagement_events")
            assert left.fetchone()[0] == len(PLAYERS) - 1
        with sqlite3.connect(daemon.database) as db:
            after = {row[0] for row in db.execute(
                "SELECT pseudonym FROM engagement_events UNION"
                " SELECT session FROM engagement_events")}
        gone = sorted(before - after)
        assert len(gone) == 2  # the person's pseudonym and their session's
        audit = daemon.cli("privacy", "audit", "--verify")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "audit chain intact" in audit.stdout and "erasure" in audit.stdout
        assert "key_created" in audit.stdout
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()

    # At rest: none of the raw values, in the file or the WAL.
    data = stored_bytes(daemon)
    assert leaks(data, SECRETS) == []
    # The erased person's pseudonyms are in no byte either (secure delete, WAL emptied),
    # while the others' still are.
    assert leaks(data, gone) == []
    assert leaks(data, sorted(after)) == sorted(after)


def test_purge_and_tampering_show_in_the_audit_trail(tmp_path: Path) -> None:
    config = FAST_CONFIG.format(state=tmp_path / "state", run=tmp_path / "run",
                                interval=0.5) + PRIVACY
    daemon = DaemonProcess(tmp_path, config_text=config)
    daemon.start_ready()
    try:
        request(daemon.socket_path, "ingest", {"messages": personal_messages(),
                                                "ack": "durable"})
        refused = daemon.cli("privacy", "purge", "--engagement")
        assert refused.returncode != 0 and "confirm" in refused.stderr
        purged = daemon.cli("privacy", "purge", "--engagement", "--yes")
        assert purged.returncode == 0, purged.stderr
        assert "engagement_events 42" in purged.stdout
        report = json.loads(daemon.cli("engagement", "report", "--json").stdout)
        assert report["people"] == 0
        # A reload that changes [privacy] is audited (names counted, never listed).
        daemon.config.write_text(config.replace("k = 3", "k = 4"))
        daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "settings_changed" not in daemon.cli("privacy", "audit").stdout:
            assert time.monotonic() < deadline, "no settings_changed entry"
            time.sleep(0.1)
        assert "'k': {'after': 4, 'before': 3}" in daemon.cli("privacy", "audit").stdout
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()
    # Someone edits the trail behind the daemon's back: verification names the entry.
    with sqlite3.connect(daemon.database) as db:
        target = db.execute("SELECT max(id) FROM audit WHERE action = 'purge'").fetchone()[0]
        db.execute("UPDATE audit SET detail = '{}' WHERE id = ?", (target,))
    daemon.start_ready()
    try:
        tampered = daemon.cli("privacy", "audit", "--verify")
        assert tampered.returncode == 3, tampered.stdout + tampered.stderr
        assert f"AUDIT CHAIN BROKEN at entry {target}" in tampered.stdout
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()


def test_the_scan_redacts_what_got_through_and_raises_an_alert(tmp_path: Path) -> None:
    # A name the config did not list yet reaches the database, as it would before an
    # operator added it; once listed, the scan finds it, redacts it and alerts.
    base = FAST_CONFIG.format(state=tmp_path / "state", run=tmp_path / "run", interval=0.5)
    daemon = DaemonProcess(tmp_path, config_text=base)
    daemon.start_ready()
    try:
        request(daemon.socket_path, "ingest", {"ack": "durable", "messages": [message(
            "error", error_type="LookupError", message="no save for Margaret Hale")]})
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()
    assert b"Margaret Hale" in stored_bytes(daemon)

    daemon.config.write_text(base + '[privacy]\nnames = ["Margaret Hale"]\nscan_every = 1.0\n')
    daemon.start_ready()
    try:
        status = daemon.wait_for_status(lambda s: s["privacy"]["scan_hits"] >= 3)
        # The event's message, the group's title, and the new-group event's title.
        assert status["privacy"]["scan_hits"] == 3
        listed = json.loads(daemon.cli("alerts", "list", "--json").stdout)
        (alert,) = [a for a in listed["alerts"] if a["alertname"] == "PersonalDataStored"]
        assert alert["severity"] == "critical" and "name 3" in alert["annotations"]["summary"]
        audit = daemon.cli("privacy", "audit", "--verify")
        assert audit.returncode == 0 and "scanner_hit" in audit.stdout
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()
    data = stored_bytes(daemon)
    assert b"Margaret Hale" not in data and b"no save for <name>" in data
