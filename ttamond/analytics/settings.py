"""Anomaly detection settings: which series to watch, how many, and how to judge them."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ttamond.analytics.detector import DetectorSettings
from ttamond.selector import Selector, parse_selector

DEFAULT_SERIES = (
    'host_cpu_percent{cpu="total"}',
    "host_memory_percent",
    'host_load_average{period="1m"}',
    "host_disk_percent",
)


class AnalyticsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The anomaly actor: one streaming detector per selected series."""

    enabled: bool = True
    series: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_SERIES))
    """Selectors in Prometheus' syntax (`name{label="value"}`); every series one of
    them matches gets a detector. Counters are judged on their per-second rate."""
    max_series: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """Detectors at most (about 22 KiB each); further series are not tracked, and
    counted in ttamond_anomaly_series_dropped_total."""
    step_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 60.0
    """Each series' samples are averaged over steps of this many seconds, aligned to
    the clock, and the detector judges one mean a step (0: every sample). The
    detector counts samples, and was tuned on NAB's five-minute series: at a 1 Hz
    collector's pace its window would span 16 minutes, at one mean a minute 16 hours.
    A step's score is published when the series' first sample of a later step comes."""
    save_every_seconds: Annotated[float, msgspec.Meta(ge=0)] = 600.0
    """The detectors are written to the state directory this often and when the daemon
    stops (0: only when it stops), and read back when it starts, so a restart does not
    learn again from zero. Other detector settings or another step start afresh."""
    detector: DetectorSettings = msgspec.field(default_factory=DetectorSettings)
    threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    """The score from which a sample counts as anomalous: the detector's alarm score,
    the threshold that scored best on the NAB corpus (benchmarks/nab.py)."""

    def __post_init__(self) -> None:
        for text in self.series:
            parse_selector(text)  # raises SelectorError, a ValueError naming the problem

    def selectors(self) -> list[Selector]:
        """The parsed `series` selectors."""
        return [parse_selector(text) for text in self.series]
