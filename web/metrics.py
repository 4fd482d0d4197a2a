"""Prometheus text exposition of the latest value of every series."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Final

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ttamond import __version__
from ttamond.actors.latest import LatestValue
from ttamond.probes import REGISTRY

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus scrapes."""

BUILD_INFO: Final = "ttamond_build_info"
SKIPPED: Final = "ttamond_exposition_skipped_series"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_RESERVED = frozenset({BUILD_INFO, SKIPPED})


def probe_descriptions() -> dict[str, str]:
    """HELP text for every series a registered probe declares (its FIELDS), the carbon
    tracker's, and those reports from components are turned into."""
    from ttamond.ingest.convert import FIELDS as REPORTED_FIELDS
    from ttamond.probes.carbon import FIELDS as CARBON_FIELDS

    found = {name: info.description for probe in REGISTRY.values()
             for name, info in probe.fields.items()}
    for fields in (CARBON_FIELDS, REPORTED_FIELDS):
        found.update((name, info.description) for name, info in fields.items())
    return found


@lru_cache(maxsize=4096)
def metric_name(name: str) -> str:
    """`name` made a valid Prometheus metric name ("" when nothing valid is left).

    Invalid characters become `_`; a leading digit gets a `_` in front.
    """
    if _METRIC_NAME.fullmatch(name):
        return name
    cleaned = _NOT_METRIC_CHAR.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


@lru_cache(maxsize=1024)
def label_name(name: str) -> str:
    """`name` made a valid, unreserved Prometheus label name.

    Invalid characters become `_`, a leading digit gets a `_` in front, and a leading
    `__` (reserved for Prometheus' own labels) is cut to one `_`.
    """
    if _LABEL_NAME.fullmatch(name) and not name.startswith("__"):
        return name
    cleaned = _NOT_LABEL_CHAR.sub("_", name) or "_"
    if cleaned[0].isdigit():
        cleaned = f"_{cleaned}"
    while cleaned.startswith("__"):
        cleaned = cleaned[1:]
    return cleaned


class LatestCollector(Collector):
    """A prometheus_client collector over the latest-values view.

    Each scrape calls `latest()` and groups its values into one family per name, with
    HELP from `descriptions` (a generic line otherwise) and TYPE from the values' kind.
    A family is a counter when every value says counter and the name ends in `_total`,
    a gauge when every value says gauge and the name does not; anything else (mixed
    kinds, or a name against the `_total` convention) is exported untyped under its own
    name, so a series is never renamed on its way to Prometheus.

    Invalid names are sanitised (see `metric_name`, `label_name`). Series that cannot be
    exported are left out and counted, by reason, in `ttamond_exposition_skipped_series`
    of the same scrape: no valid name, a name the exposition reserves for itself, two
    label names that become one, or the same name and labels as an earlier series once
    sanitised. No sample carries a timestamp: Prometheus stamps the scrape.
    """

    def __init__(
        self,
        latest: Callable[[], Iterable[LatestValue]],
        *,
        descriptions: Mapping[str, str] | None = None,
        version: str = __version__,
    ) -> None:
        self.latest = latest
        self.descriptions = probe_descriptions() if descriptions is None else descriptions
        self.version = version

    def collect(self) -> list[Metric]:
        """The families of one scrape, build info first."""
        groups: dict[str, list[LatestValue]] = {}
        label_sets: dict[str, list[dict[str, str]]] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        skipped = {"invalid_name": 0, "reserved_name": 0, "label_clash": 0, "duplicate": 0}
        for value in self.latest():
            name = metric_name(value.name)
            if not name or name.removesuffix("_total") == "":
                skipped["invalid_name"] += 1
                continue
            if name in _RESERVED:
                skipped["reserved_name"] += 1
                continue
            labels = _clean_labels(value.labels)
            if len(labels) != len(value.labels):
                skipped["label_clash"] += 1
                continue
            # Prometheus reads an empty label value as no label at all.
            key = (name, tuple(sorted((k, v) for k, v in labels.items() if v)))
            if key in seen:
                skipped["duplicate"] += 1
                continue
            seen.add(key)
            groups.setdefault(name, []).append(value)
            label_sets.setdefault(name, []).append(labels)

        build = GaugeMetricFamily(BUILD_INFO, "ttamond version; the value is always 1",
                                  labels=("version",))
        build.add_metric((self.version,), 1.0)
        skipped_family = GaugeMetricFamily(
            SKIPPED, "series of the latest view left out of this scrape, by reason",
            labels=("reason",),
        )
        for reason, count in skipped.items():
            skipped_family.add_metric((reason,), count)
        families: list[Metric] = [build, skipped_family]
        for name, values in groups.items():
            families.append(self._family(name, values, label_sets[name]))
        return families

    def render(self) -> bytes:
        """One scrape in the Prometheus text format (version 0.0.4), UTF-8."""
        return generate_latest(self)

    def _family(self, name: str, values: list[LatestValue],
                label_sets: list[dict[str, str]]) -> Metric:
        kinds = {value.kind for value in values}
        is_total = name.endswith("_total")
        original = values[0].name
        help_text = self.descriptions.get(original) or _generic_help(original, values[0])
        family: Metric
        if kinds == {"counter"} and is_total:
            family = CounterMetricFamily(name, help_text)
            sample_name = f"{family.name}_total"  # the family drops `_total`; samples keep it
        elif kinds == {"gauge"} and not is_total:
            family = GaugeMetricFamily(name, help_text)
            sample_name = name
        else:
            if kinds == {"counter"}:
                why = "a counter whose name lacks _total"
            elif kinds == {"gauge"}:
                why = "a gauge whose name ends in _total"
            else:
                why = f"reported as {' and '.join(sorted(kinds))}"
            family = UnknownMetricFamily(name, f"{help_text} ({why}: exported untyped)")
            sample_name = name
        # Series of one name may carry different label names, which add_metric's fixed
        # label list cannot express; a Sample per series can.
        family.samples.extend(
            Sample(sample_name, labels, value.value)
            for value, labels in zip(values, label_sets, strict=True)
        )
        return family


def _clean_labels(labels: Mapping[str, str]) -> dict[str, str]:
    # Two label names that clean up to one give fewer labels back: the caller skips them.
    return {label_name(key): value for key, value in labels.items()}


def _generic_help(name: str, value: LatestValue) -> str:
    unit = f", in {value.unit}" if value.unit else ""
    return f"ttamond {value.kind} {name}{unit}"
