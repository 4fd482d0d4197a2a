"""Carbon report: host energy and emissions, shared out to models and components, with advice.

Totals are the host counters' increases between the first and last samples inside
[since, until]; a counter that drops has restarted and its new value counts from 0
(Prometheus' rule). Each increase belongs to the UTC day of its earlier sample,
which always lies before `until`. Inferences count when `since <= timestamp < until`, so
consecutive reports never count one twice.

Attribution, per inference, the first rule that applies:

1. its reported `energy_joules`; emissions at the grid intensity of its local hour;
2. else the carbon sessions covering it: same model and component, timestamp within
   [started, stopped] (stopped = `until` while running or when never recorded). A
   session's figures are first prorated to the part of it inside the range (even draw
   over its life), then shared between the covered inferences that report no energy of
   their own, by duration (equally when every duration is 0). An inference covered by
   several sessions sums its shares. A session covering only inferences with reported
   energy adds nothing: their own figures win;
3. else none: the inference is counted in `unattributed_inferences`. Host energy is never
   spread over inferences by guesswork; what no inference or session accounts for is
   reported as `unattributed_share` (idle draw, other processes, untracked work).

A session that covers no inference in the range is charged, prorated, to its component
and model as it stands, so tracked work that reports no inferences still shows.

Efficiency score = 100 x R / (R + W), where W is the Wh per 1,000 tokens (in + out) of
the report's work: energy of every attributed inference (failed ones too: their energy was
spent) over the tokens of the successful attributed ones; R = REFERENCE_WH_PER_1K_TOKENS.
Hence 50 at the reference, toward 100 as energy per token falls, toward 0 as it grows,
strictly monotonic and comparable between reports. None when no successful attributed
inference produced tokens.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from ttamond.carbon.model import (
    BaselineComparison,
    CarbonReport,
    CarbonSession,
    CarbonSettings,
    Charge,
    ComponentCarbon,
    DailyCarbon,
    HostEnergy,
    Inference,
    ModelCarbon,
    Recommendation,
    UsageCarbon,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
JOULES_PER_KWH = 3_600_000.0
REFERENCE_WH_PER_1K_TOKENS = 1.0
"""Efficiency 50: about a 7B-parameter model served on one data-centre GPU."""
IDLE_GPU_POWER_W = 30.0
"""Mean GPU draw above which an hour without inferences counts as wasted idle power."""
WORSE_MODEL_RATIO = 2.0
MIN_COMPARED_INFERENCES = 3
"""Successful attributed inferences a model needs before it is compared with another."""
BATCH_MEDIAN_TOKENS_OUT = 20
BATCH_INFERENCES_PER_DAY = 1000
SHIFT_ENERGY_SHARE = 0.30
SHIFT_INTENSITY_ABOVE_MIN = 0.25



def efficiency_score(wh_per_1k_tokens: float | None) -> float | None:
    """100 x R / (R + W) for W Wh per 1,000 tokens, R = REFERENCE_WH_PER_1K_TOKENS."""
    if wh_per_1k_tokens is None:
        return None
    if wh_per_1k_tokens < 0:
        raise ValueError(f"energy per token cannot be negative, got {wh_per_1k_tokens}")
    return 100.0 * REFERENCE_WH_PER_1K_TOKENS / (REFERENCE_WH_PER_1K_TOKENS + wh_per_1k_tokens)


def counter_increases(host: Sequence[HostEnergy]) -> list[tuple[HostEnergy, Charge]]:
    """Each sample but the last, with the (kWh, kg) the counters rose until the next one."""
    points = sorted(host, key=lambda point: point.timestamp_ms)

    def rise(now: float, before: float) -> float:
        return now - before if now >= before else now

    return [(before, (rise(now.energy_kwh, before.energy_kwh),
                      rise(now.emissions_kg, before.emissions_kg)))
            for before, now in itertools.pairwise(points)]


def local_hour(timestamp_ms: int, settings: CarbonSettings) -> int:
    """The local hour of day 0-23 of an instant."""
    return (timestamp_ms + settings.utc_offset_minutes * 60_000) // HOUR_MS % 24


def intensity_at(timestamp_ms: int, settings: CarbonSettings) -> float:
    """Grid intensity in g CO2e/kWh at an instant."""
    if settings.intensity_by_hour is None:
        return settings.intensity_g_per_kwh
    return settings.intensity_by_hour.get(local_hour(timestamp_ms, settings),
                                          settings.intensity_g_per_kwh)


def build_report(*, since_ms: int, until_ms: int, host: Sequence[HostEnergy],
                 sessions: Sequence[CarbonSession], inferences: Sequence[Inference],
                 settings: CarbonSettings) -> CarbonReport:
    """The report over [since_ms, until_ms]. Inputs may reach outside it: the host series
    is also read for the baseline period. Raises ValueError for an inverted range or
    inconsistent settings."""
    _validate(since_ms, until_ms, settings)
    in_range = [point for point in host if since_ms <= point.timestamp_ms <= until_ms]
    increases = counter_increases(in_range)
    works = sorted((work for work in inferences if since_ms <= work.timestamp_ms < until_ms),
                   key=lambda work: work.timestamp_ms)
    charges, session_only = _attribute(works, sessions, since_ms, until_ms, settings)
    total_kwh = sum(rise[0] for _, rise in increases)
    attributed_kwh = (sum(charge[0] for charge in charges if charge is not None)
                      + sum(charge[0] for _, charge in session_only))
    models: dict[str, _Tally] = defaultdict(_Tally)
    components: dict[str, _Tally] = defaultdict(_Tally)
    overall = _Tally()
    for work, charge in zip(works, charges, strict=True):
        for tally in (models[work.model], components[work.component], overall):
            tally.add(work, charge)
    for session, charge in session_only:
        models[session.model].add_session(charge)
        components[session.component].add_session(charge)
    wh_per_1k = overall.wh_per_1k_tokens()
    return CarbonReport(
        since_ms=since_ms, until_ms=until_ms, total_energy_kwh=total_kwh,
        total_emissions_kg=sum(rise[1] for _, rise in increases),
        estimated=settings.estimated, methods=dict(settings.methods),
        efficiency_score=efficiency_score(wh_per_1k), wh_per_1k_tokens=wh_per_1k,
        attributed_energy_kwh=attributed_kwh,
        unattributed_share=max(0.0, total_kwh - attributed_kwh) / total_kwh if total_kwh > 0
        else None,
        unattributed_inferences=overall.inferences - overall.attributed,
        baseline=_baseline(host, in_range, settings, since_ms, until_ms),
        daily=_daily(increases, works, since_ms, until_ms),
        per_model=[ModelCarbon(model=name, **tally.figures())
                   for name, tally in sorted(models.items())],
        per_component=[ComponentCarbon(component=name, **tally.figures())
                       for name, tally in sorted(components.items())],
        recommendations=_advise(in_range, works, charges, sessions, settings,
                                since_ms, until_ms),
    )


def _validate(since_ms: int, until_ms: int, settings: CarbonSettings) -> None:
    if until_ms < since_ms:
        raise ValueError(f"carbon report: until ({until_ms}) is before since ({since_ms})")
    hours = settings.intensity_by_hour or {}
    if any(not 0 <= hour <= 23 for hour in hours):
        raise ValueError(f"intensity_by_hour: hours go 0-23, got {sorted(hours)}")
    since, until = settings.baseline_since_ms, settings.baseline_until_ms
    if (since is None) != (until is None):
        raise ValueError("baseline: give both since and until, or neither")
    if since is not None and until is not None and until <= since:
        raise ValueError(f"baseline: until ({until}) is not after since ({since})")


def _attribute(works: Sequence[Inference], sessions: Sequence[CarbonSession], since_ms: int,
               until_ms: int, settings: CarbonSettings,
               ) -> tuple[list[Charge | None], list[tuple[CarbonSession, Charge]]]:
    charges: list[Charge | None] = [None] * len(works)
    for index, work in enumerate(works):
        if work.energy_joules is not None:
            kwh = work.energy_joules / JOULES_PER_KWH
            charges[index] = (kwh, kwh * intensity_at(work.timestamp_ms, settings) / 1000)
    # Inference indices and times by (model, component), in time order (works are
    # sorted), so each session finds the inferences it covers by bisection.
    by_key: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for index, work in enumerate(works):
        indices, times = by_key[work.model, work.component]
        indices.append(index)
        times.append(work.timestamp_ms)
    session_only: list[tuple[CarbonSession, Charge]] = []
    for session in sessions:
        start = session.started_ms
        end = max(start, session.stopped_ms if session.stopped_ms is not None else until_ms)
        if end > start:
            fraction = max(0, min(end, until_ms) - max(start, since_ms)) / (end - start)
        else:
            fraction = 1.0 if since_ms <= start <= until_ms else 0.0
        if fraction == 0:
            continue
        share = (session.energy_kwh * fraction, session.emissions_kg * fraction)
        indices, times = by_key.get((session.model, session.component), ([], []))
        covered = indices[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]
        if not covered:
            session_only.append((session, share))
            continue
        takers = [index for index in covered if works[index].energy_joules is None]
        total_s = sum(works[index].duration_s for index in takers)
        for index in takers:
            weight = works[index].duration_s / total_s if total_s > 0 else 1 / len(takers)
            kwh, kg = charges[index] or (0.0, 0.0)
            charges[index] = (kwh + share[0] * weight, kg + share[1] * weight)
    return charges, session_only


class _Tally:
    """Running sums for one model, component, or (model, operation)."""

    def __init__(self) -> None:
        self.inferences = self.failed = self.attributed = self.useful = 0
        self.tokens_in = self.tokens_out = self.useful_tokens = 0
        self.energy_kwh = self.emissions_kg = 0.0
        self.work_kwh = self.work_kg = 0.0
        self.joules: list[float] = []
        self.tokens_out_each: list[int] = []

    def add(self, work: Inference, charge: Charge | None) -> None:
        self.inferences += 1
        self.failed += not work.success
        self.tokens_in += work.tokens_in
        self.tokens_out += work.tokens_out
        self.tokens_out_each.append(work.tokens_out)
        if work.energy_joules is not None:
            self.joules.append(work.energy_joules)
        if charge is None:
            return
        self.attributed += 1
        self.work_kwh += charge[0]
        self.work_kg += charge[1]
        self.add_session(charge)
        if work.success:
            self.useful += 1
            self.useful_tokens += work.tokens_in + work.tokens_out

    def add_session(self, charge: Charge) -> None:
        self.energy_kwh += charge[0]
        self.emissions_kg += charge[1]

    def wh_per_1k_tokens(self) -> float | None:
        return self.work_kwh * 1e6 / self.useful_tokens if self.useful_tokens else None

    def g_per_1k_tokens(self) -> float | None:
        return self.work_kg * 1e6 / self.useful_tokens if self.useful_tokens else None

    def figures(self) -> dict[str, Any]:
        """The fields of a `UsageCarbon`, for its model and component subclasses."""
        return msgspec.structs.asdict(UsageCarbon(
            inferences=self.inferences, failed=self.failed,
            unattributed_inferences=self.inferences - self.attributed,
            tokens_in=self.tokens_in, tokens_out=self.tokens_out,
            energy_kwh=self.energy_kwh, emissions_kg=self.emissions_kg,
            wh_per_1k_tokens=self.wh_per_1k_tokens(),
            g_per_inference=self.work_kg * 1000 / self.useful if self.useful else None,
            gpu_joules_per_inference=statistics.fmean(self.joules) if self.joules else None,
        ))


def _rate_kg_per_day(points: Sequence[HostEnergy]) -> float | None:
    if len(points) < 2:
        return None
    span_ms = max(point.timestamp_ms for point in points) - min(
        point.timestamp_ms for point in points)
    if span_ms == 0:
        return None
    return sum(rise[1] for _, rise in counter_increases(points)) * DAY_MS / span_ms


def _baseline(host: Sequence[HostEnergy], in_range: Sequence[HostEnergy],
              settings: CarbonSettings, since_ms: int, until_ms: int,
              ) -> BaselineComparison | None:
    source: Literal["configured", "first_week"] = "configured"
    start, end = settings.baseline_since_ms, settings.baseline_until_ms
    if start is None or end is None:
        if not host:
            return None
        source = "first_week"
        start = min(point.timestamp_ms for point in host) // DAY_MS * DAY_MS
        end = start + 7 * DAY_MS
        if max(point.timestamp_ms for point in host) < end:
            return None
    before = _rate_kg_per_day([point for point in host if start <= point.timestamp_ms <= end])
    now = _rate_kg_per_day(in_range)
    if before is None or now is None:
        return None
    return BaselineComparison(
        since_ms=start, until_ms=end, source=source, baseline_kg_per_day=before,
        current_kg_per_day=now,
        change_percent=(now - before) * 100 / before if before > 0 else None)


def _daily(increases: Sequence[tuple[HostEnergy, Charge]], works: Sequence[Inference],
           since_ms: int, until_ms: int) -> list[DailyCarbon]:
    # An empty range still has the day it sits in, where its samples' rises go.
    first, end = since_ms // DAY_MS * DAY_MS, max(until_ms, since_ms + 1)
    days = {day: [0.0, 0.0, 0, 0] for day in range(first, end, DAY_MS)}
    for point, (kwh, kg) in increases:
        row = days[point.timestamp_ms // DAY_MS * DAY_MS]
        row[0] += kwh
        row[1] += kg
    for work in works:
        row = days[work.timestamp_ms // DAY_MS * DAY_MS]
        row[2] += 1
        row[3] += work.tokens_in + work.tokens_out
    return [DailyCarbon(day_ms=day, energy_kwh=float(row[0]), emissions_kg=float(row[1]),
                        inferences=int(row[2]), tokens=int(row[3]))
            for day, row in days.items()]


def _advise(host: Sequence[HostEnergy], works: Sequence[Inference],
            charges: Sequence[Charge | None], sessions: Sequence[CarbonSession],
            settings: CarbonSettings, since_ms: int, until_ms: int) -> list[Recommendation]:
    advice: list[Recommendation] = []
    busy = {work.timestamp_ms // HOUR_MS for work in works}
    draws: dict[int, list[float]] = defaultdict(list)
    for point in host:
        if point.timestamp_ms < until_ms:
            draws[point.timestamp_ms // HOUR_MS].append(point.gpu_power_w)
    idle = {hour: statistics.fmean(watts) for hour, watts in draws.items()
            if hour not in busy and statistics.fmean(watts) > IDLE_GPU_POWER_W}
    if idle:
        watts = statistics.fmean(idle.values())
        kwh = sum(idle.values()) / 1000  # each idle hour at its mean draw
        kg = sum(power / 1000 * intensity_at(hour * HOUR_MS, settings) / 1000
                 for hour, power in idle.items())
        advice.append(Recommendation(
            kind="idle_gpu", severity="warning",
            message=f"GPU draws {watts:.0f} W while idle for {_count(len(idle), 'hour')}: about"
                    f" {kwh:.2f} kWh and {kg:.3f} kg CO2e for no inference; unload idle"
                    " models, lower the GPU power limit or stop the service when unused.",
            figures={"idle_hours": len(idle), "mean_power_w": watts, "energy_kwh": kwh,
                     "emissions_kg": kg}))
    pairs: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for work, charge in zip(works, charges, strict=True):
        pairs[work.operation, work.model].add(work, charge)
    advice += _compare_models(pairs)
    days = max((until_ms - since_ms) / DAY_MS, 1.0)
    for (operation, model), tally in sorted(pairs.items()):
        per_day = tally.inferences / days
        median = statistics.median(tally.tokens_out_each)
        if per_day > BATCH_INFERENCES_PER_DAY and median < BATCH_MEDIAN_TOKENS_OUT:
            advice.append(Recommendation(
                kind="batching", severity="info",
                message=f"{model or 'no model'} runs {per_day:.0f} '{operation}' inferences a"
                        f" day with a median of {median:g} output tokens: batch these requests"
                        " to spread the per-call overhead.",
                figures={"inferences_per_day": per_day, "median_tokens_out": median}))
    advice += _shift_hours(works, charges, settings)
    expired = [session for session in sessions if session.state == "expired"
               and session.started_ms <= until_ms
               and (session.stopped_ms is None or session.stopped_ms >= since_ms)]
    if expired:
        kwh = sum(session.energy_kwh for session in expired)
        kg = sum(session.emissions_kg for session in expired)
        advice.append(Recommendation(
            kind="expired_sessions", severity="warning",
            message=f"{_count(len(expired), 'carbon session')} expired without being stopped: their"
                    f" figures ({kwh:.3f} kWh, {kg:.3f} kg CO2e) are partial; stop each"
                    " session when its work ends.",
            figures={"sessions": len(expired), "energy_kwh": kwh, "emissions_kg": kg}))
    if settings.estimated:
        how = "; ".join(f"{part}: {method}" for part, method in sorted(settings.methods.items()))
        advice.append(Recommendation(
            kind="estimated", severity="info",
            message="Figures are estimates" + (f" ({how})" if how else "") + f" at"
                    f" {settings.intensity_g_per_kwh:g} g CO2e/kWh; measure power directly"
                    " (GPU or RAPL counters) where precision matters.",
            figures={"intensity_g_per_kwh": settings.intensity_g_per_kwh}))
    return advice


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _compare_models(pairs: dict[tuple[str, str], _Tally]) -> list[Recommendation]:
    advice: list[Recommendation] = []
    operations = sorted({operation for operation, _ in pairs})
    for operation in operations:
        rates = {model: rate for (op, model), tally in pairs.items()
                 if op == operation and tally.useful >= MIN_COMPARED_INFERENCES
                 and (rate := tally.g_per_1k_tokens()) is not None}
        if len(rates) < 2:
            continue
        best = min(sorted(rates), key=rates.__getitem__)
        if rates[best] <= 0:
            continue
        for model in sorted(rates):
            ratio = rates[model] / rates[best]
            if model != best and ratio >= WORSE_MODEL_RATIO:
                advice.append(Recommendation(
                    kind="model_efficiency", severity="warning",
                    message=f"For '{operation}', {model} emits {rates[model]:.3f} g CO2e per"
                            f" 1,000 tokens, {ratio:.1f}x {best} ({rates[best]:.3f} g): route"
                            f" '{operation}' to {best} where its answers are good enough.",
                    figures={"worse_g_per_1k_tokens": rates[model],
                             "better_g_per_1k_tokens": rates[best], "ratio": ratio}))
    return advice


def _shift_hours(works: Sequence[Inference], charges: Sequence[Charge | None],
                 settings: CarbonSettings) -> list[Recommendation]:
    if settings.intensity_by_hour is None:
        return []
    profile = [settings.intensity_by_hour.get(hour, settings.intensity_g_per_kwh)
               for hour in range(24)]
    lowest = min(profile)
    cleanest = profile.index(lowest)
    energy = [0.0] * 24
    for work, charge in zip(works, charges, strict=True):
        if charge is not None:
            energy[local_hour(work.timestamp_ms, settings)] += charge[0]
    total = sum(energy)
    dirty = [hour for hour in range(24)
             if profile[hour] >= lowest * (1 + SHIFT_INTENSITY_ABOVE_MIN)]
    moved = sum(energy[hour] for hour in dirty)
    if total <= 0 or moved / total < SHIFT_ENERGY_SHARE:
        return []
    saving = sum(energy[hour] * (profile[hour] - lowest) for hour in dirty) / 1000
    share = moved / total * 100
    return [Recommendation(
        kind="shift_hours", severity="info",
        message=f"{share:.0f} % of the AI work's energy ({moved:.3f} kWh) runs in hours whose"
                f" grid intensity is {SHIFT_INTENSITY_ABOVE_MIN:.0%} or more above the day's"
                f" lowest ({lowest:g} g/kWh at {cleanest:02d}:00 local): moving deferrable"
                f" work there would save about {saving:.3f} kg CO2e.",
        figures={"share_percent": share, "energy_kwh": moved, "saving_kg": saving,
                 "lowest_g_per_kwh": lowest})]


def render_markdown(report: CarbonReport) -> str:
    """A short summary for `ttamond carbon report`."""
    note = " (estimated)" if report.estimated else ""

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"# Carbon report, {when(report.since_ms)} to {when(report.until_ms)} UTC", "",
             f"- Energy: {report.total_energy_kwh:.3f} kWh{note}",
             f"- Emissions: {report.total_emissions_kg:.3f} kg CO2e{note}"]
    if report.efficiency_score is not None:
        lines.append(f"- Efficiency: {report.efficiency_score:.0f}/100"
                     f" ({number(report.wh_per_1k_tokens, 3)} Wh per 1,000 tokens)")
    if report.unattributed_share is not None:
        lines.append(f"- Not attributed to any inference or session:"
                     f" {report.unattributed_share:.1%} of the energy")
    if (baseline := report.baseline) is not None:
        change = ("" if baseline.change_percent is None
                  else f" ({baseline.change_percent:+.1f} %)")
        lines.append(f"- Baseline {when(baseline.since_ms)} to {when(baseline.until_ms)}:"
                     f" {baseline.baseline_kg_per_day:.3f} kg/day, now"
                     f" {baseline.current_kg_per_day:.3f} kg/day{change}")
    if report.per_model:
        lines += ["", "| model | inferences | tokens | kWh | kg CO2e | Wh/1k tokens |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {row.model or '(none)'} | {row.inferences} |"
                  f" {row.tokens_in + row.tokens_out} | {row.energy_kwh:.3f} |"
                  f" {row.emissions_kg:.3f} | {number(row.wh_per_1k_tokens, 3)} |"
                  for row in report.per_model]
    if report.recommendations:
        lines += ["", "## Recommendations", ""]
        lines += [f"- {item.severity}: {item.message}" for item in report.recommendations]
    return "\n".join(lines) + "\n"


__all__ = [
    "BaselineComparison",
    "CarbonReport",
    "CarbonSession",
    "CarbonSettings",
    "Charge",
    "ComponentCarbon",
    "DailyCarbon",
    "HostEnergy",
    "Inference",
    "ModelCarbon",
    "Recommendation",
    "build_report",
    "counter_increases",
    "efficiency_score",
    "intensity_at",
    "local_hour",
    "render_markdown",
]
