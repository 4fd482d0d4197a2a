"""ttamond.toml: typed settings, their defaults, and one-line errors for bad files."""

from __future__ import annotations

import difflib
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec

from ttamond.alerts.settings import AlertsConfig
from ttamond.analytics.settings import AnalyticsSettings
from ttamond.health.components import ComponentSpec, merge_specs
from ttamond.health.components import validate as validate_components
from ttamond.health.settings import (
    DEFAULT_PREDICTIONS,
    AnyCheck,
    ComponentConfig,
    PredictionConfig,
)
from ttamond.notify.settings import AnyChannel, LogChannel, validate_channels

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table: unknown keys are errors, values are immutable."""


class PathsConfig(_Section, frozen=True):
    """Where the daemon keeps its files; empty strings mean "derive the default"."""

    state_dir: str = ""
    runtime_dir: str = ""
    database: str = ""
    control_socket: str = ""


class StoreConfig(_Section, frozen=True):
    """The SQLite store and its spool."""

    batch_max_rows: PositiveInt = 5000
    batch_max_age: Positive = 5.0
    busy_timeout: NonNegative = 1.0
    synchronous: Literal["off", "normal", "full"] = "normal"
    spool_max_bytes: PositiveInt = 64 * 1024 * 1024
    retry_interval: Positive = 5.0
    raw_retention_hours: PositiveInt = 48
    minute_retention_days: PositiveInt = 30
    hour_retention_days: PositiveInt = 400
    events_retention_days: PositiveInt = 90
    engagement_retention_days: PositiveInt = 90
    """Engagement rows (pseudonymous play events) are deleted after this many days."""
    compact_every: Positive = 600.0
    quick_check_on_start: bool = True
    queue_capacity: PositiveInt = 256


class SupervisorConfig(_Section, frozen=True):
    """Restart policy shared by every actor (OTP one_for_one)."""

    max_restarts: Annotated[int, msgspec.Meta(ge=0)] = 5
    max_seconds: Positive = 60.0
    backoff_initial: Positive = 0.5
    backoff_max: Positive = 30.0
    cooldown: Positive = 300.0
    shutdown_grace: Positive = 5.0

    def __post_init__(self) -> None:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")


class ControlConfig(_Section, frozen=True):
    """The Unix control socket."""

    socket_mode: Annotated[int, msgspec.Meta(ge=0, le=0o777)] = 0o660
    max_request_bytes: PositiveInt = 1024 * 1024
    max_connections: PositiveInt = 64


class HostCollectorConfig(_Section, frozen=True):
    """psutil host counters."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.1)] = 1.0
    per_cpu: bool = True
    mounts_refresh: Positive = 60.0
    exclude_fstypes: list[str] = msgspec.field(
        default_factory=lambda: ["tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs"]
    )
    exclude_interfaces: list[str] = msgspec.field(default_factory=lambda: ["veth*"])
    exclude_disks: list[str] = msgspec.field(default_factory=lambda: ["loop*", "ram*"])


class WatchedProcess(_Section, frozen=True):
    """A process always reported, matched by a regular expression."""

    name: str
    pattern: str
    """Searched in the process name and its command line (joined by spaces)."""

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"watch {self.name!r}: bad pattern {self.pattern!r}: {exc}") from None


class ProcessCollectorConfig(_Section, frozen=True):
    """Top processes by CPU and memory, plus watched ones. The costliest read on a host
    (about 0.1 ms per process), hence its slower interval."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.5)] = 5.0
    top_n: Annotated[int, msgspec.Meta(ge=0)] = 10
    watch: list[WatchedProcess] = msgspec.field(default_factory=list)


class GpuCollectorConfig(_Section, frozen=True):
    """NVIDIA GPUs through NVML."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0
    per_process: bool = True
    unavailable_retry: Positive = 300.0


class DockerCollectorConfig(_Section, frozen=True):
    """Containers through the Docker Engine API (Docker or podman)."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.5)] = 10.0
    url: str = ""
    """Empty: $DOCKER_HOST, else unix:///var/run/docker.sock."""
    timeout: Positive = 5.0
    events: bool = True
    unavailable_retry: Positive = 60.0


class CgroupCollectorConfig(_Section, frozen=True):
    """Container awareness: the limits of the cgroup the daemon runs in, and CPU and
    memory use as a share of them. Reports nothing where no limit is set."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0


class CollectorsConfig(_Section, frozen=True):
    """One table per collector."""

    host: HostCollectorConfig = msgspec.field(default_factory=HostCollectorConfig)
    process: ProcessCollectorConfig = msgspec.field(default_factory=ProcessCollectorConfig)
    gpu: GpuCollectorConfig = msgspec.field(default_factory=GpuCollectorConfig)
    docker: DockerCollectorConfig = msgspec.field(default_factory=DockerCollectorConfig)
    cgroup: CgroupCollectorConfig = msgspec.field(default_factory=CgroupCollectorConfig)


class WebConfig(_Section, frozen=True):
    """The HTTP server: status page, JSON API, /metrics."""

    enabled: bool = True
    bind: str = "127.0.0.1:9471"
    """host:port ([v6]:port); loopback by default. Prometheus scrapes /metrics here."""
    unix_socket: str = ""
    """Also serve on this Unix socket (mode 0660), e.g. "web.sock" (a relative path is
    inside the runtime directory) for a reverse proxy; empty: TCP only."""

    def __post_init__(self) -> None:
        host, _, port = self.bind.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"bind: expected host:port (e.g. 127.0.0.1:9471), got {self.bind!r}")


class IngestConfig(_Section, frozen=True):
    """What TTA components may send, over the control socket and POST /api/v1/ingest."""

    max_body_bytes: PositiveInt = 4 * 1024 * 1024
    """Largest HTTP request body; larger gets 413. The socket's limit is
    control.max_request_bytes."""
    max_messages: PositiveInt = 10_000
    """Most messages in one batch; more gets an error naming the limit."""
    max_future_seconds: Positive = 600.0
    """A timestamp further ahead of the daemon's clock than this is rejected."""
    ack_timeout: Positive = 30.0
    """How long a durable acknowledgement waits for the store before answering
    `not_stored` (the client then retries)."""
    token: str = ""
    """Bearer token HTTP clients from other addresses must send; loopback needs none.
    Empty: only loopback may ingest over HTTP."""
    token_file: str = ""
    """A file holding the token (read at start and reload); wins over `token`."""


class ErrorsConfig(_Section, frozen=True):
    """Error tracking: grouping, regressions, critical errors."""

    critical_components: list[str] = msgspec.field(default_factory=list)
    """Components critical to therapy sessions: any error of theirs is critical."""
    events_per_group: PositiveInt = 20
    """Latest events kept with full stack and context per group; counts are kept apart."""


ENGAGEMENT_FIELDS = frozenset({"name", "value", "chapter", "arc", "step", "choice", "quest",
                               "duration_s"})
"""Engagement properties a deployment may keep: none is free text about a person."""


class PrivacyConfig(_Section, frozen=True):
    """The privacy controller, applied to every inbound event."""

    names: list[str] = msgspec.field(default_factory=list)
    """Person names to scrub from free text (besides e-mail, phone, cards, tokens...)."""
    rotate_every_days: Positive = 90.0
    """Pseudonym key epochs: a player's pseudonym changes every this many days, so
    identities cannot be linked across epochs (day-30 retention needs >= 30)."""
    keep_keys_days: NonNegative = 90.0
    """An epoch's key is destroyed this long after the epoch ends: at least the
    engagement retention, or erasure could no longer find that epoch's rows."""
    engagement_fields: dict[str, list[str]] = msgspec.field(
        default_factory=lambda: {"*": ["name", "value", "chapter", "arc"]}
    )
    """Engagement event properties kept, per event kind ("*": any kind; an event's own
    list adds to it); any other property is dropped (and counted)."""
    k: Annotated[int, msgspec.Meta(ge=2)] = 5
    """Engagement reports show no group with fewer distinct players than this."""
    epsilon: NonNegative = 0.0
    """Laplace noise on engagement counts, privacy budget per count; 0: no noise."""
    scan_every: Annotated[float, msgspec.Meta(ge=1.0)] = 3600.0
    """Seconds between scans of stored text for personal data that got through: a hit
    is redacted, audited and raised as a critical alert."""

    def __post_init__(self) -> None:
        if any(not name.strip() for name in self.names):
            raise ValueError("names: an entry is empty")
        for event, fields in self.engagement_fields.items():
            unknown = sorted(set(fields) - ENGAGEMENT_FIELDS)
            if unknown:
                raise ValueError(f"engagement_fields.{event}: {unknown[0]!r} is not an"
                                 f" engagement field (one of:"
                                 f" {', '.join(sorted(ENGAGEMENT_FIELDS))})")


class CarbonConfig(_Section, frozen=True):
    """Energy and CO2 through CodeCarbon's offline tracker, and per-operation sessions."""

    enabled: bool = False
    """Off by default: CodeCarbon brings pandas, about +60 MB of resident memory."""
    country_iso_code: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "USA"
    """Where the host draws its power (ISO 3166-1 alpha-3): sets the grid intensity."""
    region: str = ""
    """Optional region within the country (CodeCarbon's names, e.g. "california")."""
    measure_interval: Annotated[float, msgspec.Meta(ge=1.0)] = 15.0
    session_timeout: Positive = 3600.0
    """A session never stopped (its client died) expires after this many seconds."""
    intensity_by_hour: list[Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=list
    )
    """Optional: 24 grid intensities (g CO2e/kWh), local hours 0-23, when the supply
    varies by hour; enables the "move work to cleaner hours" advice."""
    baseline_since: str = ""
    baseline_until: str = ""
    """A baseline period as ISO dates (2026-11-01); empty: the first full week of data."""

    def __post_init__(self) -> None:
        if self.intensity_by_hour and len(self.intensity_by_hour) != 24:
            raise ValueError(f"intensity_by_hour: expected 24 values (hours 0-23), got"
                             f" {len(self.intensity_by_hour)}")
        for name in ("baseline_since", "baseline_until"):
            value = getattr(self, name)
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"{name}: expected a date like 2026-11-01, got"
                                     f" {value!r}") from None
        if bool(self.baseline_since) != bool(self.baseline_until):
            raise ValueError("baseline_since and baseline_until go together")


class HealthConfig(_Section, frozen=True):
    """Health checks, component and dependency health, predictions."""

    enabled: bool = True
    checks: list[AnyCheck] = msgspec.field(default_factory=list)
    components: list[ComponentConfig] = msgspec.field(default_factory=list)
    predictions: list[PredictionConfig] = msgspec.field(
        default_factory=lambda: list(DEFAULT_PREDICTIONS)
    )
    evaluate_every: Positive = 5.0
    """Seconds between component evaluations (stale checks, heartbeats, dependencies)."""
    predict_every: Positive = 60.0
    predict_window_hours: Positive = 6.0
    """The window each prediction is fitted over."""

    def __post_init__(self) -> None:
        names = [check.name for check in self.checks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"checks: the name {duplicates[0]!r} is used twice")
        declared = [ComponentSpec(c.name, list(c.checks), list(c.depends_on), c.heartbeat)
                    for c in self.components]
        specs = merge_specs(declared, {c.name: c.component_name for c in self.checks})
        problems = validate_components(specs, names)
        if problems:
            raise ValueError(problems[0])


class NotifyConfig(_Section, frozen=True):
    """Where notifications go: one [[notify.channels]] table per channel."""

    channels: list[AnyChannel] = msgspec.field(
        default_factory=lambda: [LogChannel(name="log")]
    )

    def __post_init__(self) -> None:
        problems = validate_channels(self.channels)
        if problems:
            raise ValueError(problems[0])


class SelfmonConfig(_Section, frozen=True):
    """The daemon's own health series."""

    enabled: bool = True
    interval: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0


class LoggingConfig(_Section, frozen=True):
    """Log verbosity."""

    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section, frozen=True):
    """Everything ttamond.toml can say; every field has a default."""

    paths: PathsConfig = msgspec.field(default_factory=PathsConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    supervisor: SupervisorConfig = msgspec.field(default_factory=SupervisorConfig)
    control: ControlConfig = msgspec.field(default_factory=ControlConfig)
    collectors: CollectorsConfig = msgspec.field(default_factory=CollectorsConfig)
    selfmon: SelfmonConfig = msgspec.field(default_factory=SelfmonConfig)
    web: WebConfig = msgspec.field(default_factory=WebConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    errors: ErrorsConfig = msgspec.field(default_factory=ErrorsConfig)
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    carbon: CarbonConfig = msgspec.field(default_factory=CarbonConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    analytics: AnalyticsSettings = msgspec.field(default_factory=AnalyticsSettings)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        kinds = {channel.name: channel.kind for channel in self.notify.channels}
        for policy in self.alerts.escalations:
            for level in policy.levels:
                for name in level.channels:
                    if name not in kinds:
                        close = difflib.get_close_matches(name, list(kinds), n=1)
                        hint = f" (did you mean {close[0]!r}?)" if close else ""
                        raise ValueError(
                            f"alerts.escalations {policy.name!r}: no channel {name!r} in"
                            f" [[notify.channels]]{hint}")
                    if kinds[name] == "alertmanager":
                        raise ValueError(
                            f"alerts.escalations {policy.name!r}: {name!r} is an Alertmanager"
                            " channel, which receives every alert; leave it out of levels")


class ConfigError(Exception):
    """A config file that cannot be used; str() is the one line to show a person."""


def load_config(path: Path | None) -> Config:
    """Read and validate `path`, or return the embedded defaults when it is None.

    Raises ConfigError naming the file, the key path and what was expected.
    """
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "ttamond.toml") -> Config:
    """Validate TOML text; `source` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    try:
        return msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(str(exc))}") from exc


def config_to_builtins(config: Config) -> dict[str, Any]:
    """The config as plain dicts and lists, ready for TOML or JSON output."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    return result


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")
_WRONG_TYPE = re.compile(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`")
_CONSTRAINT = re.compile(r"Expected `(?P<want>[^`]*)` (?P<rule>.+)")
_ENUM = re.compile(r"Invalid enum value (?P<value>.+)")
_TYPE_WORDS = {
    "float": "a number",
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
}


def _explain(raw: str) -> str:
    match = _AT.match(raw)
    msg, path = (match["msg"], match["path"] or "") if match else (raw, "")
    keys = [part for part in re.split(r"\.|\[(\d+)\]", path.lstrip(".")) if part]
    where = ".".join(keys)
    if unknown := _UNKNOWN.match(msg):
        return _explain_unknown(unknown["key"], keys)
    if wrong := _WRONG_TYPE.match(msg):
        want = _TYPE_WORDS.get(wrong["want"], wrong["want"])
        return f"{where}: expected {want}, got {_TYPE_WORDS.get(wrong['got'], wrong['got'])}"
    if enum := _ENUM.match(msg):
        choices = _literal_choices(keys)
        allowed = f" (expected one of: {', '.join(choices)})" if choices else ""
        return f"{where}: invalid value {enum['value']}{allowed}"
    if rule := _CONSTRAINT.match(msg):
        return f"{where}: expected {_TYPE_WORDS.get(rule['want'], rule['want'])} {rule['rule']}"
    table = f"[{where}]" if where else "top level"
    return f"{table}: {msg}"


def _explain_unknown(key: str, keys: list[str]) -> str:
    table = f"in [{'.'.join(keys)}]" if keys else "at the top level"
    known = _field_names(keys)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}' {table}{hint}"


def _type_at(keys: list[str]) -> Any:
    current: Any = Config
    for key in keys:
        if not (isinstance(current, type) and issubclass(current, msgspec.Struct)):
            return None
        current = get_type_hints(current, include_extras=True).get(key)
    return current


def _field_names(keys: list[str]) -> list[str]:
    struct = _type_at(keys)
    if isinstance(struct, type) and issubclass(struct, msgspec.Struct):
        return list(struct.__struct_fields__)
    return []


def _literal_choices(keys: list[str]) -> list[str]:
    hint = _type_at(keys)
    if get_origin(hint) is Literal:
        return [str(choice) for choice in get_args(hint)]
    return []
