"""The report's alert statistics: alerts fired and resolved by name and severity, mean
times to acknowledge and resolve, notifications sent and kept back, from the alert
history, the delivery log and the escalator's counters."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from ttamond.alerts.history import read_history
from ttamond.report.model import AlertCounts, AlertStatistics, ChannelDeliveries
from ttamond.report.window import Window
from ttamond.store.alerts import load_alert_state

HISTORY_LIMIT = 200_000
"""History rows read at most, of each kind; beyond that the statistics say truncated."""
SUPPRESSION_PREFIX = "suppressed_"


class _Tally:
    def __init__(self) -> None:
        self.counts = dict.fromkeys(("firing", "resolved", "acknowledged", "escalated"), 0)
        self.to_ack: list[float] = []
        self.to_resolve: list[float] = []


def read_alerts(database: Path, window: Window) -> AlertStatistics:
    """The alert statistics of `window`. A firing counts toward the mean times when its
    acknowledgement or resolution is in the window too. Raises sqlite3.Error."""
    history = read_history(database, since_ms=window.since_ms, limit=HISTORY_LIMIT)
    transitions = [row for row in history["transitions"] if row["timestamp_ms"] <= window.until_ms]
    deliveries = [row for row in history["deliveries"] if row["timestamp_ms"] <= window.until_ms]
    truncated = any(len(rows) >= HISTORY_LIMIT for rows in history.values())
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    overall = _Tally()
    fired_at: dict[str, int] = {}
    acknowledged: set[str] = set()
    for row in reversed(transitions):  # oldest first
        fingerprint, ts, what = row["fingerprint"], row["timestamp_ms"], row["transition"]
        key = (row["alertname"], str(row["labels"].get("severity", "")))
        if what not in overall.counts:
            continue
        for tally in (tallies[key], overall):
            tally.counts[what] += 1
        fired = fired_at.get(fingerprint)
        if what == "firing":
            fired_at[fingerprint] = ts
            acknowledged.discard(fingerprint)
        elif what == "acknowledged" and fired is not None and fingerprint not in acknowledged:
            # The first acknowledgement of this firing; later ones change nothing.
            acknowledged.add(fingerprint)
            for tally in (tallies[key], overall):
                tally.to_ack.append((ts - fired) / 1000)
        elif what == "resolved" and fired is not None:
            del fired_at[fingerprint]
            for tally in (tallies[key], overall):
                tally.to_resolve.append((ts - fired) / 1000)
    state = load_alert_state(database)
    suppressed = {name.removeprefix(SUPPRESSION_PREFIX): value
                  for name, value in sorted(state.counters.items())
                  if name.startswith(SUPPRESSION_PREFIX)}
    return AlertStatistics(
        fired=overall.counts["firing"], resolved=overall.counts["resolved"],
        acknowledged=overall.counts["acknowledged"], escalated=overall.counts["escalated"],
        mean_time_to_acknowledge_s=_mean(overall.to_ack),
        mean_time_to_resolve_s=_mean(overall.to_resolve),
        firing_now=sum(record.state == "firing" for record in state.records),
        by_alert=[AlertCounts(alertname=name, severity=severity, fired=t.counts["firing"],
                              resolved=t.counts["resolved"],
                              acknowledged=t.counts["acknowledged"],
                              escalated=t.counts["escalated"],
                              mean_time_to_acknowledge_s=_mean(t.to_ack),
                              mean_time_to_resolve_s=_mean(t.to_resolve))
                  for (name, severity), t in sorted(tallies.items(),
                                                    key=lambda item: (-item[1].counts["firing"],
                                                                      item[0]))],
        notifications_sent=sum(row["outcome"] == "sent" for row in deliveries),
        suppressed_rate_limit=sum(row["outcome"] == "rate_limited" for row in deliveries),
        channels=_channels(deliveries), suppressed=suppressed,
        notifications_total=state.counters.get("notifications", 0), truncated=truncated,
    )


def _channels(deliveries: list[dict[str, Any]]) -> list[ChannelDeliveries]:
    outcomes: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("sent", "failed", "gave_up", "rate_limited"), 0))
    for row in deliveries:
        counts = outcomes[row["channel"]]
        if row["outcome"] in counts:
            counts[row["outcome"]] += 1
    return [ChannelDeliveries(channel=channel, **counts)
            for channel, counts in sorted(outcomes.items())]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None
