"""Error groups in a real SQLite file: lifecycle, version-aware regressions, trimming,
retention, and pattern analysis (new groups, spikes, top groups, rates)."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from ttamond.errors.lifecycle import after_event, is_older
from ttamond.errors.queries import (
    GroupNotFound,
    analyze_patterns,
    find_group,
    list_groups,
    show_group,
)
from ttamond.messages import ErrorEvent, ErrorGroupStateSet, ErrorRecorded
from ttamond.store.database import Cutoffs, Database

HOUR = 3_600_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR


def recorded(fingerprint: str, ts: int, *, component: str = "narrative", release: str = "",
             session: str | None = None) -> ErrorRecorded:
    event = ErrorEvent(component=component, environment="prod", timestamp_ms=ts,
                       error_type="KeyError", message=f"missing {fingerprint}",
                       release=release, user_session_id=session)
    return ErrorRecorded(event=event, fingerprint=fingerprint, title=f"KeyError: {fingerprint}",
                         received_ms=ts)


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "t.db", busy_timeout=1.0, synchronous="normal",
                  error_events_per_group=3)
    db.open()
    return db


_keys = itertools.count()


def write(db: Database, *messages: ErrorRecorded | ErrorGroupStateSet) -> None:
    db.write(f"k{next(_keys)}", list(messages), origin="live")


def reader(db: Database) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db.path}?mode=ro", uri=True)


@pytest.mark.parametrize(("state", "resolved_in", "release", "expected"), [
    ("unresolved", "", "1.0", "unresolved"),
    ("ignored", "", "9.9", "ignored"),
    ("regressed", "", "", "regressed"),
    ("resolved", "", "", "regressed"),
    ("resolved", "2.4.0", "2.3.9", "resolved"),
    ("resolved", "2.4.0", "2.4.0", "regressed"),
    ("resolved", "2.4.0", "2.10.0", "regressed"),
    ("resolved", "2.4.0", "", "regressed"),
    ("resolved", "2.4.0", "nightly", "regressed"),
    ("resolved", "v2.4", "v2.3.1", "resolved"),
])
def test_lifecycle(state: str, resolved_in: str, release: str, expected: str) -> None:
    assert after_event(state, resolved_in, release) == expected  # type: ignore[arg-type]


def test_version_order_is_numeric_not_lexical() -> None:
    assert is_older("2.9", "2.10") and not is_older("2.10", "2.9")
    assert is_older("1.0rc1", "1.0")


def test_groups_count_sessions_and_keep_the_latest_events(database: Database) -> None:
    write(database, *(recorded("aaaaaaaa", T0 + i, session=f"s{i % 2}") for i in range(5)))
    write(database, recorded("bbbbbbbb", T0 + 10, component="agents"))
    conn = reader(database)
    groups = list_groups(conn)
    assert [(g.fingerprint, g.count, g.sessions) for g in groups] == [
        ("bbbbbbbb", 1, 0), ("aaaaaaaa", 5, 2)]
    detail = show_group(conn, "aaaaaa")
    assert [e.timestamp_ms for e in detail.events] == [T0 + 4, T0 + 3, T0 + 2]  # keeps 3
    assert list_groups(conn, component="agents")[0].fingerprint == "bbbbbbbb"
    with pytest.raises(GroupNotFound, match="no error group 'cccccc'"):
        find_group(conn, "cccccc")
    with pytest.raises(GroupNotFound, match="at least 6 characters"):
        find_group(conn, "aa")
    with pytest.raises(ValueError, match="state: 'open' is not one of"):
        list_groups(conn, state="open")


def test_resolve_then_regress_in_one_transaction_each(database: Database) -> None:
    write(database, recorded("aaaaaaaa", T0))
    group = list_groups(reader(database))[0]
    write(database, ErrorGroupStateSet(group_id=group.id, state="resolved", resolved_in="2.0",
                                       timestamp_ms=T0 + 1))
    write(database, recorded("aaaaaaaa", T0 + 2, release="1.9"))
    assert list_groups(reader(database))[0].state == "resolved"
    write(database, recorded("aaaaaaaa", T0 + 3, release="2.0.1"))
    after = list_groups(reader(database))[0]
    assert (after.state, after.count, after.resolved_in) == ("regressed", 3, "2.0")


def test_patterns_find_new_groups_spikes_and_rates(database: Database) -> None:
    # A steady group: 2 events an hour for the week before, then 40 in one hour.
    week = [recorded("steady00", T0 - h * HOUR + 5) for h in range(1, 169) for _ in range(2)]
    write(database, *week)
    write(database, *(recorded("steady00", T0 + HOUR + i) for i in range(40)))
    # A noisy group at its usual level: no spike.
    write(database, *(recorded("noisy000", T0 - h * HOUR + 7) for h in range(1, 169)
                      for _ in range(10)))
    write(database, *(recorded("noisy000", T0 + i, component="agents") for i in range(11)))
    # A new group inside the range.
    write(database, *(recorded("fresh000", T0 + 2 * HOUR + i) for i in range(3)))

    patterns = analyze_patterns(reader(database), since_ms=T0, until_ms=T0 + 3 * HOUR)
    assert patterns.events == 54
    assert [g.fingerprint for g in patterns.new_groups] == ["fresh000"]
    assert [(s.count, s.hour_ms, s.baseline_per_hour) for s in patterns.spikes] == [
        (40, T0 + HOUR, 2.0)]
    assert [g.fingerprint for g in patterns.top_groups] == ["steady00", "noisy000", "fresh000"]
    rates = {r.component: (r.events, r.per_hour) for r in patterns.per_component}
    assert rates == {"narrative": (43, round(43 / 3, 3)), "agents": (11, round(11 / 3, 3))}


def test_error_history_expires_with_events(database: Database) -> None:
    write(database, recorded("oldold00", T0, session="s"), recorded("newnew00", T0 + 10 * HOUR))
    database.expire_events(Cutoffs(raw_ms=0, minute_ms=0, hour_ms=0, events_ms=T0 + HOUR))
    conn = reader(database)
    assert [g.fingerprint for g in list_groups(conn)] == ["newnew00"]
    assert conn.execute("SELECT count(*) FROM error_sessions").fetchone()[0] == 0
    assert conn.execute("SELECT min(hour_ts) FROM error_counts").fetchone()[0] == T0 + 10 * HOUR
