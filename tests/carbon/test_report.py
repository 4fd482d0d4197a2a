"""The carbon report's arithmetic, checked against figures worked out by hand."""

from __future__ import annotations

import pytest

from ttamond.carbon.report import (
    CarbonReport,
    CarbonSession,
    CarbonSettings,
    ComponentCarbon,
    DailyCarbon,
    HostEnergy,
    Inference,
    ModelCarbon,
    Recommendation,
    build_report,
    efficiency_score,
    render_markdown,
)

H = 3_600_000
DAY = 24 * H
D = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SETTINGS = CarbonSettings(intensity_g_per_kwh=400.0, estimated=True,
                          methods={"cpu": "TDP estimate", "gpu": "NVML"},
                          baseline_since_ms=D, baseline_until_ms=D + DAY)
QUIET = CarbonSettings(intensity_g_per_kwh=400.0, estimated=False)


def sample(hours: float, kwh: float, kg: float, gpu: float = 10.0) -> HostEnergy:
    return HostEnergy(timestamp_ms=D + int(hours * H), energy_kwh=kwh, emissions_kg=kg,
                      gpu_power_w=gpu)


def call(hours: float, component: str, model: str, operation: str, duration: float,
         tokens_in: int, tokens_out: int, joules: float | None = None,
         success: bool = True) -> Inference:
    return Inference(timestamp_ms=D + int(hours * H), component=component, model=model,
                     operation=operation, duration_s=duration, tokens_in=tokens_in,
                     tokens_out=tokens_out, energy_joules=joules, success=success)


def session(name: str, component: str, model: str, operation: str, start: float,
            stop: float | None, kwh: float, kg: float,
            state: str = "stopped") -> CarbonSession:
    return CarbonSession(session_id=name, operation=operation, component=component,
                         model=model, started_ms=D + int(start * H),
                         stopped_ms=None if stop is None else D + int(stop * H),
                         state="expired" if state == "expired" else "stopped",
                         energy_kwh=kwh, emissions_kg=kg, method="estimate")


# Three days. The counter restarts at 30 h (3.0 -> 0.5). Samples outside the range
# (-6 h, 78 h) must not count.
HOST = [
    sample(-6, 100.0, 40.0), sample(0, 0.0, 0.0), sample(6, 1.0, 0.4), sample(12, 2.0, 0.8),
    sample(24, 3.0, 1.2), sample(30, 0.5, 0.2), sample(36, 1.5, 0.6), sample(48, 2.5, 1.0),
    sample(60, 3.0, 1.2), sample(72, 4.0, 1.6), sample(78, 9.0, 3.6),
]
SESSIONS = [
    # Covers I3 and I4 (chat/mistral).
    session("s1", "chat", "mistral", "generate", 10, 14, 0.02, 0.008),
    # Expired, never stopped: runs to `until` (72 h); covers I5 and I6 (search/llama).
    session("s2", "search", "llama", "embed", 40, None, 0.01, 0.004, state="expired"),
    # Half inside the range (-2 h to 2 h), covers no inference: charged to search/"".
    session("s3", "search", "", "index", -2, 2, 0.004, 0.0016),
]
INFERENCES = [
    call(-1, "chat", "llama", "generate", 1.0, 10, 10, joules=1e9),  # before the range
    call(1, "chat", "llama", "generate", 2.0, 100, 200, joules=3600),  # I1
    call(2, "chat", "llama", "generate", 1.0, 50, 50, joules=1800),  # I2
    call(11, "chat", "mistral", "generate", 3.0, 200, 300),  # I3
    call(13, "chat", "mistral", "generate", 1.0, 100, 100, success=False),  # I4
    call(41, "search", "llama", "embed", 0.5, 30, 0),  # I5
    call(42, "search", "llama", "embed", 0.5, 30, 0, joules=720),  # I6
    call(50, "search", "mistral", "embed", 1.0, 40, 0),  # I7: no session covers it
    call(72, "chat", "llama", "generate", 1.0, 10, 10, joules=1e9),  # at `until`: excluded
]


def fixed_report() -> CarbonReport:
    return build_report(since_ms=D, until_ms=D + 3 * DAY, host=HOST, sessions=SESSIONS,
                        inferences=INFERENCES, settings=SETTINGS)


def test_totals_follow_the_counters_across_a_restart() -> None:
    report = fixed_report()
    # Rises: 1 + 1 + 1 (day 0), 0.5 (restart: new value from 0) + 1 + 1 (day 1),
    # 0.5 + 1 (day 2) = 7.0 kWh; emissions are 0.4 of each: 2.8 kg.
    assert report.total_energy_kwh == pytest.approx(7.0)
    assert report.total_emissions_kg == pytest.approx(2.8)
    assert report.since_ms == D and report.until_ms == D + 3 * DAY
    assert report.estimated is True
    assert report.methods == {"cpu": "TDP estimate", "gpu": "NVML"}


def test_daily_rows() -> None:
    daily = fixed_report().daily
    # Each rise belongs to its earlier sample's day; tokens are in + out.
    # Day 0: I1 300, I2 100, I3 500, I4 200. Day 1: I5 30, I6 30. Day 2: I7 40.
    expected = [DailyCarbon(day_ms=D, energy_kwh=3.0, emissions_kg=1.2, inferences=4,
                            tokens=1100),
                DailyCarbon(day_ms=D + DAY, energy_kwh=2.5, emissions_kg=1.0, inferences=2,
                            tokens=60),
                DailyCarbon(day_ms=D + 2 * DAY, energy_kwh=1.5, emissions_kg=0.6,
                            inferences=1, tokens=40)]
    assert [row.day_ms for row in daily] == [row.day_ms for row in expected]
    for row, want in zip(daily, expected, strict=True):
        assert row.energy_kwh == pytest.approx(want.energy_kwh)
        assert row.emissions_kg == pytest.approx(want.emissions_kg)
        assert (row.inferences, row.tokens) == (want.inferences, want.tokens)


def approx_row(row: ModelCarbon | ComponentCarbon, **want: float | None) -> None:
    for name, value in want.items():
        got = getattr(row, name)
        assert got == (None if value is None else pytest.approx(value)), name


def test_per_model_attribution() -> None:
    none, llama, mistral = fixed_report().per_model
    assert (none.model, llama.model, mistral.model) == ("", "llama", "mistral")
    # llama: I1 3600 J = 0.001 kWh, 0.4 g at 400 g/kWh; I2 1800 J = 0.0005 kWh, 0.2 g;
    # I6 720 J = 0.0002 kWh, 0.08 g; I5 takes all of s2 (I6 reports its own energy):
    # 0.01 kWh, 4 g. Energy 0.0117 kWh, 4.68 g. Useful tokens 300 + 100 + 30 + 30 = 460:
    # 11.7 Wh / 0.46 = 25.4348 Wh per 1k; 4.68 g / 4 = 1.17 g; joules (3600+1800+720)/3.
    assert (llama.inferences, llama.failed, llama.unattributed_inferences) == (4, 0, 0)
    assert (llama.tokens_in, llama.tokens_out) == (210, 250)
    approx_row(llama, energy_kwh=0.0117, emissions_kg=0.00468, wh_per_1k_tokens=11.7 / 0.46,
               g_per_inference=1.17, gpu_joules_per_inference=2040.0)
    # mistral: s1 (0.02 kWh, 8 g) split by duration: I3 3/4 = 0.015 kWh, 6 g; I4 1/4 =
    # 0.005 kWh, 2 g (failed: charged, but no useful tokens). I7 unattributed.
    # 20 Wh / 0.5k useful tokens (I3) = 40; 8 g / 1 useful inference = 8 g.
    assert (mistral.inferences, mistral.failed, mistral.unattributed_inferences) == (3, 1, 1)
    assert (mistral.tokens_in, mistral.tokens_out) == (340, 400)
    approx_row(mistral, energy_kwh=0.02, emissions_kg=0.008, wh_per_1k_tokens=40.0,
               g_per_inference=8.0, gpu_joules_per_inference=None)
    # "": s3 prorated to its half inside the range: 0.002 kWh, 0.8 g; no inferences.
    assert (none.inferences, none.tokens_in, none.tokens_out) == (0, 0, 0)
    approx_row(none, energy_kwh=0.002, emissions_kg=0.0008, wh_per_1k_tokens=None,
               g_per_inference=None, gpu_joules_per_inference=None)


def test_per_component_attribution() -> None:
    chat, search = fixed_report().per_component
    assert (chat.component, search.component) == ("chat", "search")
    # chat: I1..I4. 0.001 + 0.0005 + 0.015 + 0.005 = 0.0215 kWh; 0.4 + 0.2 + 6 + 2 = 8.6 g.
    # Useful tokens I1 300 + I2 100 + I3 500 = 900: 21.5 / 0.9 Wh per 1k; 8.6 g / 3.
    assert (chat.inferences, chat.failed, chat.unattributed_inferences) == (4, 1, 0)
    assert (chat.tokens_in, chat.tokens_out) == (450, 650)
    approx_row(chat, energy_kwh=0.0215, emissions_kg=0.0086, wh_per_1k_tokens=21.5 / 0.9,
               g_per_inference=8.6 / 3, gpu_joules_per_inference=2700.0)
    # search: I5 0.01 + I6 0.0002 + s3 0.002 = 0.0122 kWh; 4 + 0.08 + 0.8 = 4.88 g.
    # Work (inferences only) 0.0102 kWh, 4.08 g over 60 useful tokens and 2 inferences.
    assert (search.inferences, search.failed, search.unattributed_inferences) == (3, 0, 1)
    assert (search.tokens_in, search.tokens_out) == (100, 0)
    approx_row(search, energy_kwh=0.0122, emissions_kg=0.00488, wh_per_1k_tokens=10.2 / 0.06,
               g_per_inference=2.04, gpu_joules_per_inference=720.0)


def test_efficiency_and_unattributed_share() -> None:
    report = fixed_report()
    # Work 0.0117 + 0.02 = 0.0317 kWh over 460 + 500 = 960 useful tokens: 31.7 / 0.96 Wh
    # per 1k = 33.0208; score 100 x 1 / (1 + 33.0208) = 2.9394.
    assert report.wh_per_1k_tokens == pytest.approx(31.7 / 0.96)
    assert report.efficiency_score == pytest.approx(100 / (1 + 31.7 / 0.96))
    # Attributed 0.0317 + s3's 0.002 = 0.0337 of 7 kWh.
    assert report.attributed_energy_kwh == pytest.approx(0.0337)
    assert report.unattributed_share == pytest.approx((7 - 0.0337) / 7)
    assert report.unattributed_inferences == 1


def test_baseline_from_a_configured_period() -> None:
    baseline = fixed_report().baseline
    assert baseline is not None
    # Baseline [0 h, 24 h]: 1.2 kg over 24 h = 1.2 kg/day. Now: 2.8 kg over 72 h = 0.9333.
    assert (baseline.since_ms, baseline.until_ms, baseline.source) == (D, D + DAY, "configured")
    assert baseline.baseline_kg_per_day == pytest.approx(1.2)
    assert baseline.current_kg_per_day == pytest.approx(2.8 / 3)
    assert baseline.change_percent == pytest.approx((2.8 / 3 - 1.2) / 1.2 * 100)  # -22.2 %


def week_of_host() -> list[HostEnergy]:
    # Samples every 6 h from 6 h to 192 h; the counter rises 0.1 kg a step until 168 h,
    # then 0.2 kg a step.
    points, kg = [], 0.0
    for step in range(1, 33):
        if step > 1:
            kg += 0.1 if step * 6 <= 168 else 0.2
        points.append(sample(step * 6, kg * 2.5, kg))
    return points


def test_baseline_from_the_first_full_week() -> None:
    report = build_report(since_ms=D + 7 * DAY, until_ms=D + 8 * DAY, host=week_of_host(),
                          sessions=[], inferences=[], settings=QUIET)
    baseline = report.baseline
    assert baseline is not None
    # Week [0 h, 168 h] from the first sample's midnight: samples 6 h..168 h, 27 rises of
    # 0.1 = 2.7 kg over 162 h = 0.4 kg/day. Range 168 h..192 h: 4 x 0.2 = 0.8 kg/day.
    assert (baseline.since_ms, baseline.until_ms, baseline.source) == (
        D, D + 7 * DAY, "first_week")
    assert baseline.baseline_kg_per_day == pytest.approx(0.4)
    assert baseline.current_kg_per_day == pytest.approx(0.8)
    assert baseline.change_percent == pytest.approx(100.0)


def test_no_baseline_before_a_full_week_of_data() -> None:
    host = [point for point in week_of_host() if point.timestamp_ms < D + 7 * DAY]
    report = build_report(since_ms=D + 5 * DAY, until_ms=D + 7 * DAY, host=host,
                          sessions=[], inferences=[], settings=QUIET)
    assert report.baseline is None


def test_empty_inputs_give_a_zero_report() -> None:
    report = build_report(since_ms=D, until_ms=D + 2 * DAY, host=[], sessions=[],
                          inferences=[], settings=QUIET)
    assert report == CarbonReport(
        since_ms=D, until_ms=D + 2 * DAY, total_energy_kwh=0.0, total_emissions_kg=0.0,
        estimated=False, methods={}, efficiency_score=None, wh_per_1k_tokens=None,
        attributed_energy_kwh=0.0, unattributed_share=None, unattributed_inferences=0,
        baseline=None,
        daily=[DailyCarbon(day_ms=D + day * DAY, energy_kwh=0.0, emissions_kg=0.0,
                           inferences=0, tokens=0) for day in (0, 1)],
        per_model=[], per_component=[], recommendations=[])
    assert "0.000 kWh" in render_markdown(report)
    # An empty range: one zero day, even with samples on its instant.
    report = build_report(since_ms=D, until_ms=D, host=[sample(0, 1, 1), sample(0, 1, 1)],
                          sessions=[], inferences=[], settings=QUIET)
    assert report.daily == [DailyCarbon(day_ms=D, energy_kwh=0.0, emissions_kg=0.0,
                                        inferences=0, tokens=0)]


def kinds(report: CarbonReport) -> list[str]:
    return [item.kind for item in report.recommendations]


def only(report: CarbonReport, kind: str) -> Recommendation:
    (found,) = [item for item in report.recommendations if item.kind == kind]
    return found


def test_fixed_data_set_advice() -> None:
    report = fixed_report()
    # Too few successful attributed inferences to compare models, no idle GPU (10 W),
    # nothing to batch, no hourly intensities.
    assert kinds(report) == ["expired_sessions", "estimated"]
    expired = only(report, "expired_sessions")
    assert expired.severity == "warning"
    assert expired.figures == {"sessions": 1, "energy_kwh": 0.01, "emissions_kg": 0.004}
    assert expired.message.startswith("1 carbon session expired without being stopped")
    estimated = only(report, "estimated")
    assert estimated.severity == "info"
    assert "cpu: TDP estimate; gpu: NVML" in estimated.message


def test_estimate_notice_silent_for_measured_figures() -> None:
    report = build_report(since_ms=D, until_ms=D + DAY, host=HOST, sessions=[],
                          inferences=[], settings=QUIET)
    assert kinds(report) == []


def idle_host(busy_watts: float) -> list[HostEnergy]:
    # Hour 0: 50 and 70 W, no inference. Hour 1: 80 W with an inference. Hour 2: 20 W.
    return [sample(0, 0, 0, 50), sample(0.5, 0, 0, 70), sample(1, 0, 0, busy_watts),
            sample(1.5, 0, 0, busy_watts), sample(2, 0, 0, 20), sample(2.5, 0, 0, 20)]


def test_idle_gpu_advice() -> None:
    report = build_report(since_ms=D, until_ms=D + 3 * H, host=idle_host(80),
                          sessions=[], inferences=[call(1.2, "chat", "m", "g", 1, 1, 1)],
                          settings=QUIET)
    advice = only(report, "idle_gpu")
    # One idle hour at mean (50 + 70) / 2 = 60 W: 0.06 kWh, x 400 g/kWh = 0.024 kg.
    assert advice.figures == pytest.approx({"idle_hours": 1, "mean_power_w": 60.0,
                                            "energy_kwh": 0.06, "emissions_kg": 0.024})
    assert advice.message.startswith("GPU draws 60 W while idle for 1 hour: about 0.06 kWh")


def test_idle_gpu_silent_when_busy_or_low() -> None:
    busy = [call(0.2, "chat", "m", "g", 1, 1, 1), call(1.2, "chat", "m", "g", 1, 1, 1)]
    report = build_report(since_ms=D, until_ms=D + 3 * H, host=idle_host(80), sessions=[],
                          inferences=busy, settings=QUIET)
    assert kinds(report) == []
    # Exactly 30 W is not above the threshold.
    flat = [sample(hour, 0, 0, 30.0) for hour in range(3)]
    report = build_report(since_ms=D, until_ms=D + 3 * H, host=flat, sessions=[],
                          inferences=[], settings=QUIET)
    assert kinds(report) == []


def compared(worse_joules: float) -> CarbonReport:
    works = [call(hour, "chat", "small", "generate", 1, 500, 500, joules=3600)
             for hour in (1, 2, 3)]
    works += [call(hour, "chat", "large", "generate", 1, 500, 500, joules=worse_joules)
              for hour in (1, 2, 3)]
    # Another operation's figures are never compared with these.
    works += [call(hour, "chat", "tiny", "embed", 1, 500, 500, joules=36)
              for hour in (1, 2, 3)]
    return build_report(since_ms=D, until_ms=D + DAY, host=[], sessions=[],
                        inferences=works, settings=QUIET)


def test_worse_model_advice() -> None:
    advice = only(compared(7200), "model_efficiency")
    # small: 3600 J = 0.001 kWh = 0.4 g per 1,000 tokens; large: 0.8 g; ratio 2.0.
    assert advice.figures == pytest.approx({"worse_g_per_1k_tokens": 0.8,
                                            "better_g_per_1k_tokens": 0.4, "ratio": 2.0})
    assert "large emits 0.800 g" in advice.message and "2.0x small" in advice.message


def test_worse_model_silent_below_the_ratio() -> None:
    assert kinds(compared(7000)) == []  # 0.7778 / 0.4 = 1.94


def many_calls(count: int, tokens_out: int) -> CarbonReport:
    works = [call(index * 24 / count, "chat", "m", "classify", 0.1, 50, tokens_out)
             for index in range(count)]
    return build_report(since_ms=D, until_ms=D + DAY, host=[], sessions=[],
                        inferences=works, settings=QUIET)


def test_batching_advice() -> None:
    advice = only(many_calls(1001, 10), "batching")
    # 1001 inferences in one day, median 10 output tokens.
    assert advice.figures == {"inferences_per_day": 1001.0, "median_tokens_out": 10}
    assert advice.message.startswith("m runs 1001 'classify' inferences a day")


def test_batching_silent_for_few_or_long_answers() -> None:
    assert kinds(many_calls(1000, 10)) == []
    assert kinds(many_calls(1001, 20)) == []


def shifted(hours: tuple[float, float], offset_minutes: int = 0) -> CarbonReport:
    # Local hours 0-5 at 100 g/kWh, the rest at 200: 100 % above the lowest.
    settings = CarbonSettings(intensity_g_per_kwh=300.0, estimated=False,
                              intensity_by_hour={hour: 100.0 if hour < 6 else 200.0
                                                 for hour in range(24)},
                              utc_offset_minutes=offset_minutes)
    works = [call(hour, "chat", "m", "g", 1, 1, 1, joules=3.6e6) for hour in hours]
    return build_report(since_ms=D, until_ms=D + DAY, host=[], sessions=[],
                        inferences=works, settings=settings)


def test_shift_hours_advice() -> None:
    advice = only(shifted((2, 12)), "shift_hours")
    # 1 kWh at 02:00 (100 g) and 1 kWh at 12:00 (200 g): 50 % in dirty hours; moving
    # 1 kWh from 200 to 100 g/kWh saves 0.1 kg.
    assert advice.figures == pytest.approx({"share_percent": 50.0, "energy_kwh": 1.0,
                                            "saving_kg": 0.1, "lowest_g_per_kwh": 100.0})
    assert "100 g/kWh at 00:00 local" in advice.message


def test_shift_hours_silent_when_work_already_runs_clean() -> None:
    assert kinds(shifted((2, 3))) == []
    # 22:00 and 23:00 UTC are 00:00 and 01:00 at UTC+2.
    assert kinds(shifted((22, 23), offset_minutes=120)) == []


def test_efficiency_score_falls_as_energy_per_token_grows() -> None:
    assert efficiency_score(None) is None
    assert efficiency_score(0.0) == 100.0
    assert efficiency_score(1.0) == 50.0
    assert efficiency_score(3.0) == 25.0
    scores = [efficiency_score(0.1 * step) for step in range(50)]
    assert scores == sorted(scores, key=lambda score: -(score or 0.0))
    with pytest.raises(ValueError, match="energy per token cannot be negative"):
        efficiency_score(-1.0)


def test_render_markdown_says_estimated() -> None:
    text = render_markdown(fixed_report())
    assert text.startswith("# Carbon report, 2024-01-01 00:00 to 2024-01-04 00:00 UTC\n")
    assert "- Energy: 7.000 kWh (estimated)" in text
    assert "- Emissions: 2.800 kg CO2e (estimated)" in text
    assert "| llama | 4 | 460 | 0.012 | 0.005 | 25.435 |" in text
    assert "- warning: 1 carbon session expired" in text


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"until \(0\) is before since \(1\)"):
        build_report(since_ms=1, until_ms=0, host=[], sessions=[], inferences=[],
                     settings=QUIET)
    with pytest.raises(ValueError, match="hours go 0-23"):
        build_report(since_ms=0, until_ms=1, host=[], sessions=[], inferences=[],
                     settings=CarbonSettings(intensity_g_per_kwh=1, intensity_by_hour={24: 1}))
    with pytest.raises(ValueError, match="give both since and until"):
        build_report(since_ms=0, until_ms=1, host=[], sessions=[], inferences=[],
                     settings=CarbonSettings(intensity_g_per_kwh=1, baseline_since_ms=0))
