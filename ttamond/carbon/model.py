"""The carbon report's data: what it is built from and what it says (msgspec structs)."""

from __future__ import annotations

from typing import Literal

import msgspec

SessionState = Literal["running", "stopped", "expired"]
Severity = Literal["info", "warning"]


class HostEnergy(msgspec.Struct, frozen=True, kw_only=True):
    """One sample of the host's cumulative counters (they restart from 0 with the daemon)."""

    timestamp_ms: int
    energy_kwh: float
    emissions_kg: float
    gpu_power_w: float = 0.0
    """Instantaneous GPU draw in W; 0 without a GPU."""


class CarbonSession(msgspec.Struct, frozen=True, kw_only=True):
    """A carbon tracking session of one operation, with what it measured."""

    session_id: str
    operation: str
    component: str
    model: str
    started_ms: int
    stopped_ms: int | None
    state: SessionState
    energy_kwh: float
    emissions_kg: float
    method: str


class Inference(msgspec.Struct, frozen=True, kw_only=True):
    """One AI invocation reported by a component."""

    timestamp_ms: int
    component: str
    model: str
    operation: str
    duration_s: float
    tokens_in: int
    tokens_out: int
    energy_joules: float | None = None
    success: bool = True


class CarbonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the figures were obtained, and the grid intensity behind them."""

    intensity_g_per_kwh: float
    intensity_by_hour: dict[int, float] | None = None
    """g CO2e/kWh per local hour 0-23; hours missing use `intensity_g_per_kwh`."""
    baseline_since_ms: int | None = None
    baseline_until_ms: int | None = None
    """Both None: the first 7 x 24 h from the first host sample's UTC midnight."""
    estimated: bool = True
    methods: dict[str, str] = msgspec.field(default_factory=dict)
    utc_offset_minutes: int = 0
    """Local time minus UTC, for `intensity_by_hour` (fixed over the report)."""


class DailyCarbon(msgspec.Struct, frozen=True, kw_only=True):
    """One UTC day of the range."""

    day_ms: int
    energy_kwh: float
    emissions_kg: float
    inferences: int
    tokens: int


class UsageCarbon(msgspec.Struct, frozen=True, kw_only=True):
    """What a model or component did and what it was charged (see the module's rules)."""

    inferences: int
    failed: int
    unattributed_inferences: int
    tokens_in: int
    tokens_out: int
    energy_kwh: float
    emissions_kg: float
    wh_per_1k_tokens: float | None
    g_per_inference: float | None
    """g CO2e of attributed inferences per successful attributed inference."""
    gpu_joules_per_inference: float | None
    """Mean reported `energy_joules` over the inferences that report it."""


class ModelCarbon(UsageCarbon, frozen=True, kw_only=True):
    """Usage of one model ("" for inferences naming none)."""

    model: str


class ComponentCarbon(UsageCarbon, frozen=True, kw_only=True):
    """Usage of one component."""

    component: str


class BaselineComparison(msgspec.Struct, frozen=True, kw_only=True):
    """Emission rates: counter increase over the time between first and last sample."""

    since_ms: int
    until_ms: int
    source: Literal["configured", "first_week"]
    baseline_kg_per_day: float
    current_kg_per_day: float
    change_percent: float | None
    """None when the baseline emitted nothing."""


class Recommendation(msgspec.Struct, frozen=True, kw_only=True):
    """Advice the data supports, with the figures behind it."""

    kind: str
    severity: Severity
    message: str
    figures: dict[str, float]


class CarbonReport(msgspec.Struct, frozen=True, kw_only=True):
    """The platform's `CarbonReport` over [since_ms, until_ms]."""

    since_ms: int
    until_ms: int
    total_energy_kwh: float
    total_emissions_kg: float
    estimated: bool
    methods: dict[str, str]
    efficiency_score: float | None
    wh_per_1k_tokens: float | None
    attributed_energy_kwh: float
    unattributed_share: float | None
    """Part of the host energy charged to no inference or session; None without energy."""
    unattributed_inferences: int
    baseline: BaselineComparison | None
    daily: list[DailyCarbon]
    per_model: list[ModelCarbon]
    per_component: list[ComponentCarbon]
    recommendations: list[Recommendation]


Charge = tuple[float, float]
"""(kWh, kg CO2e) charged to one inference or session."""
