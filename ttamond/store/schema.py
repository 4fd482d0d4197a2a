"""The database schema as numbered migrations, applied in order under PRAGMA user_version."""

from __future__ import annotations

import sqlite3

from ttamond.audit import AUDIT_SCHEMA

MIGRATIONS: tuple[str, ...] = (
    # 1: series catalogue, narrow samples, committed batches, events.
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,
        kind TEXT NOT NULL,
        unit TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (name, labels)
    );
    CREATE TABLE samples (
        series_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        batch_key TEXT NOT NULL UNIQUE,
        committed_ms INTEGER NOT NULL,
        points INTEGER NOT NULL,
        events INTEGER NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('live', 'spool'))
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events (ts);
    """,
    # 2: raw samples become an append-only head (rowid order is arrival order, so a
    # commit writes a few tail pages instead of one page per series) indexed by time;
    # 1-minute and 1-hour rollups; compacted chunks of raw samples.
    """
    CREATE TABLE samples_head (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                               value REAL NOT NULL);
    INSERT INTO samples_head SELECT series_id, ts, value FROM samples ORDER BY ts;
    DROP TABLE samples;
    ALTER TABLE samples_head RENAME TO samples;
    CREATE INDEX samples_ts ON samples (ts);
    CREATE TABLE rollup_1m (
        series_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        vmin REAL NOT NULL,
        vmax REAL NOT NULL,
        vsum REAL NOT NULL,
        vcount INTEGER NOT NULL,
        vlast REAL NOT NULL,
        last_ts INTEGER NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_1h (
        series_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        vmin REAL NOT NULL,
        vmax REAL NOT NULL,
        vsum REAL NOT NULL,
        vcount INTEGER NOT NULL,
        vlast REAL NOT NULL,
        last_ts INTEGER NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        series_id INTEGER NOT NULL,
        start_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        count INTEGER NOT NULL,
        data BLOB NOT NULL,
        UNIQUE (series_id, start_ts)
    );
    """,
    # 3: error tracking. Groups by fingerprint; the latest events of each group with
    # full stack and context; affected sessions; hourly counts per component and
    # environment, kept apart from events so trimming events keeps the history.
    """
    CREATE TABLE error_groups (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        error_type TEXT NOT NULL,
        title TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('unresolved', 'resolved', 'ignored', 'regressed')),
        resolved_in TEXT NOT NULL DEFAULT '',
        state_changed_ms INTEGER NOT NULL
    );
    CREATE INDEX error_groups_last_seen ON error_groups (last_seen_ms);
    CREATE TABLE error_events (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL REFERENCES error_groups (id),
        ts INTEGER NOT NULL,
        component TEXT NOT NULL,
        environment TEXT NOT NULL,
        severity TEXT NOT NULL,
        release TEXT NOT NULL,
        message TEXT NOT NULL,
        stack TEXT NOT NULL,
        context TEXT NOT NULL,
        session TEXT
    );
    CREATE INDEX error_events_group ON error_events (group_id, id);
    CREATE TABLE error_sessions (
        group_id INTEGER NOT NULL,
        session TEXT NOT NULL,
        PRIMARY KEY (group_id, session)
    ) WITHOUT ROWID;
    CREATE TABLE error_counts (
        group_id INTEGER NOT NULL,
        hour_ts INTEGER NOT NULL,
        component TEXT NOT NULL,
        environment TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (group_id, hour_ts, component, environment)
    ) WITHOUT ROWID;
    CREATE INDEX error_counts_hour ON error_counts (hour_ts);
    """,
    # 4: client batches already written, so one sent again is not written twice.
    """
    CREATE TABLE ingest_batches (
        batch_id TEXT PRIMARY KEY,
        committed_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: carbon. Per-operation sessions with what each was charged, and AI invocations
    # as rows (their series are rolled up, which loses per-invocation figures).
    """
    CREATE TABLE carbon_sessions (
        session_id TEXT PRIMARY KEY,
        operation TEXT NOT NULL,
        component TEXT NOT NULL,
        model TEXT NOT NULL,
        pid INTEGER,
        started_ms INTEGER NOT NULL,
        stopped_ms INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('stopped', 'expired')),
        energy_kwh REAL NOT NULL,
        emissions_kg REAL NOT NULL,
        method TEXT NOT NULL
    );
    CREATE INDEX carbon_sessions_started ON carbon_sessions (started_ms);
    CREATE TABLE ai_invocations (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        component TEXT NOT NULL,
        environment TEXT NOT NULL,
        model TEXT NOT NULL,
        operation TEXT NOT NULL,
        duration_s REAL NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        energy_joules REAL,
        gpu_utilization REAL,
        success INTEGER NOT NULL
    );
    CREATE INDEX ai_invocations_ts ON ai_invocations (ts);
    """,
    # 6: the alert escalator's state: alerts, their history, silences, what each
    # channel was told, the delivery log, the fatigue counters, and the outbox of
    # notifications decided but not yet delivered.
    """
    CREATE TABLE alerts (
        fingerprint TEXT PRIMARY KEY,
        alertname TEXT NOT NULL,
        state TEXT NOT NULL,
        severity TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        alertname TEXT NOT NULL,
        transition TEXT NOT NULL,
        value REAL,
        labels TEXT NOT NULL
    );
    CREATE INDEX alert_history_ts ON alert_history (ts);
    CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        starts_ms INTEGER NOT NULL,
        ends_ms INTEGER NOT NULL,
        silence TEXT NOT NULL
    );
    CREATE TABLE notification_groups (
        group_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        last_sent_ms INTEGER NOT NULL,
        grp TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        notification_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        reason TEXT NOT NULL,
        group_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT NOT NULL,
        duration_ms REAL NOT NULL,
        fingerprints TEXT NOT NULL
    );
    CREATE INDEX deliveries_ts ON deliveries (ts);
    CREATE TABLE alert_counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        notification_id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        notification TEXT NOT NULL
    );
    """,
    # 7: privacy: pseudonymous engagement rows (their own table, with their own
    # retention and erasure) and the hash-chained audit trail of privacy operations.
    """
    CREATE TABLE engagement_events (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        component TEXT NOT NULL,
        environment TEXT NOT NULL,
        event TEXT NOT NULL,
        pseudonym TEXT,
        session TEXT,
        name TEXT,
        value REAL,
        chapter TEXT,
        arc TEXT,
        extra TEXT NOT NULL
    );
    CREATE INDEX engagement_events_ts ON engagement_events (ts);
    CREATE INDEX engagement_events_pseudonym ON engagement_events (pseudonym);
    CREATE INDEX engagement_events_session ON engagement_events (session);
    """ + AUDIT_SCHEMA,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer ttamond; refusing to touch it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION, one transaction per migration.

    Returns the version found before migrating. Raises SchemaTooNew for a database
    from a newer release, and sqlite3.Error when the database cannot be written.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema version {found} is newer than this ttamond ({SCHEMA_VERSION})"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    # executescript() would commit the surrounding transaction; split instead so a
    # migration is all-or-nothing. Migrations contain no semicolons inside literals.
    return [part.strip() for part in script.split(";") if part.strip()]
