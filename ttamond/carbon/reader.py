"""Loading what the carbon report needs from the database: the host's energy series,
the stored sessions and the AI invocations (blocking: run on a worker thread)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ttamond.carbon.report import (
    CarbonReport,
    CarbonSession,
    CarbonSettings,
    HostEnergy,
    Inference,
    build_report,
)
from ttamond.config import CarbonConfig
from ttamond.selector import parse_selector
from ttamond.store.queries import MAX_POINTS, Reader, Retention
from ttamond.store.readonly import open_reader

MINUTE_MS = 60_000
RAW_UP_TO_MS = 2 * 3_600_000


def load_report(database: Path, config: CarbonConfig, retention: Retention, *,
                since_ms: int, until_ms: int, now_ms: int, estimated: bool,
                methods: dict[str, str], intensity_g_per_kwh: float) -> CarbonReport:
    """The carbon report for [since_ms, until_ms]. Raises sqlite3.Error when the
    database cannot be read, QueryError for a range no tier can answer."""
    baseline = _baseline(config)
    start = min(since_ms, baseline[0]) if baseline else since_ms
    conn = open_reader(database)
    try:
        # Nothing is older than the first reading: start there, so a long range does
        # not fold everything into one bucket of the coarse step it would need.
        first = conn.execute("SELECT min(created_ms) FROM series WHERE name = ?",
                             ("ttamond_carbon_energy_kwh_total",)).fetchone()[0]
        host = ([] if first is None or first > until_ms
                else _host(database, retention, max(start, first), until_ms, now_ms))
        sessions = [CarbonSession(session_id=row[0], operation=row[1], component=row[2],
                                  model=row[3], started_ms=row[4], stopped_ms=row[5],
                                  state=row[6], energy_kwh=row[7], emissions_kg=row[8],
                                  method=row[9])
                    for row in conn.execute(
                        "SELECT session_id, operation, component, model, started_ms,"
                        " stopped_ms, state, energy_kwh, emissions_kg, method"
                        " FROM carbon_sessions WHERE stopped_ms >= ? AND started_ms <= ?"
                        " ORDER BY started_ms", (start, until_ms))]
        inferences = [Inference(timestamp_ms=row[0], component=row[1], model=row[2],
                                operation=row[3], duration_s=row[4], tokens_in=row[5],
                                tokens_out=row[6], energy_joules=row[7], success=bool(row[8]))
                      for row in conn.execute(
                          "SELECT ts, component, model, operation, duration_s, tokens_in,"
                          " tokens_out, energy_joules, success FROM ai_invocations"
                          " WHERE ts >= ? AND ts <= ? ORDER BY ts", (start, until_ms))]
    finally:
        conn.close()
    settings = CarbonSettings(
        intensity_g_per_kwh=intensity_g_per_kwh,
        intensity_by_hour=dict(enumerate(config.intensity_by_hour)) or None,
        baseline_since_ms=baseline[0] if baseline else None,
        baseline_until_ms=baseline[1] if baseline else None,
        estimated=estimated, methods=methods,
        utc_offset_minutes=_utc_offset_minutes(),
    )
    return build_report(since_ms=since_ms, until_ms=until_ms, host=host, sessions=sessions,
                        inferences=inferences, settings=settings)


def _host(database: Path, retention: Retention, start_ms: int, end_ms: int,
          now_ms: int) -> list[HostEnergy]:
    # Raw readings for a short range (one-minute buckets could hold them all), else
    # the coarsest step that keeps under the query's point limit.
    step = 0 if end_ms - start_ms <= RAW_UP_TO_MS else MINUTE_MS
    while step and (end_ms - start_ms) // step > MAX_POINTS:
        step *= 5
    reader = Reader(database)
    try:
        found: dict[str, dict[int, float]] = {}
        for name, aggregate in (("ttamond_carbon_energy_kwh_total", "last"),
                                ("ttamond_carbon_emissions_kg_total", "last"),
                                ('ttamond_carbon_power_watts{part="gpu"}', "avg")):
            result = reader.query(parse_selector(name), start_ms=start_ms, end_ms=end_ms,
                                  step_ms=step, aggregate=aggregate, retention=retention,
                                  now_ms=now_ms)
            points: dict[int, float] = {}
            for series in result.series:
                for ts, value in series.points:
                    points[ts] = points.get(ts, 0.0) + value
            found[name.split("{")[0]] = points
    finally:
        reader.close()
    energy = found["ttamond_carbon_energy_kwh_total"]
    emissions = found["ttamond_carbon_emissions_kg_total"]
    gpu = found["ttamond_carbon_power_watts"]
    return [HostEnergy(timestamp_ms=ts, energy_kwh=energy[ts], emissions_kg=emissions.get(ts, 0.0),
                       gpu_power_w=gpu.get(ts, 0.0)) for ts in sorted(energy)]


def _utc_offset_minutes() -> int:
    offset = datetime.now().astimezone().utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def _baseline(config: CarbonConfig) -> tuple[int, int] | None:
    if not config.baseline_since:
        return None
    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    return ms(config.baseline_since), ms(config.baseline_until)
