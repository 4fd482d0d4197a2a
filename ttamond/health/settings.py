"""Health settings: one table per check, by kind, and the components they belong to."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

CheckName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]
RunWindow = tuple[Annotated[int, msgspec.Meta(ge=1)], Annotated[int, msgspec.Meta(ge=1)]]


class CheckBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                tag_field="kind"):
    """What every check has: a name, the component it belongs to, its schedule, and
    the Monit rule "fails N times within M runs" before its state changes."""

    name: CheckName
    component: str = ""
    """Empty: a component of the check's own name."""
    interval: Annotated[float, msgspec.Meta(ge=1.0)] = 10.0
    timeout: Positive = 5.0
    fail_after: RunWindow = (2, 3)
    """[N, M]: worse only when N of the last M runs were at least that bad."""
    recover_after: RunWindow = (1, 1)

    @property
    def component_name(self) -> str:
        """The component this check belongs to."""
        return self.component or self.name


class HttpCheck(CheckBase, frozen=True, kw_only=True, tag="http"):
    """An HTTP(S) endpoint: status, latency, optional body match, certificate expiry."""

    url: str
    expect_status: list[int] = msgspec.field(default_factory=list)
    """Empty: any 2xx or 3xx."""
    body_contains: str = ""
    latency_warn_ms: Positive | None = None
    latency_crit_ms: Positive | None = None
    cert_warn_days: float = 14.0
    cert_crit_days: float = 3.0
    verify_tls: bool = True
    ca_file: str = ""


class TcpCheck(CheckBase, frozen=True, kw_only=True, tag="tcp"):
    """A TCP port accepts connections."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    latency_warn_ms: Positive | None = None
    latency_crit_ms: Positive | None = None


class RedisCheck(CheckBase, frozen=True, kw_only=True, tag="redis"):
    """Redis answers PING; a few INFO fields."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6379
    password: str = ""
    latency_warn_ms: Positive | None = None
    latency_crit_ms: Positive | None = None
    memory_warn_ratio: Ratio | None = 0.85
    memory_crit_ratio: Ratio | None = 0.95


class Neo4jCheck(CheckBase, frozen=True, kw_only=True, tag="neo4j"):
    """Neo4j: the Bolt handshake on its port, or its HTTP discovery endpoint."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 7687
    mode: Literal["bolt", "http"] = "bolt"


class ProcessCheck(CheckBase, frozen=True, kw_only=True, tag="process"):
    """A process by name, command-line pattern or pidfile: alive, restarts, CPU, memory."""

    process_name: str = ""
    pattern: str = ""
    pidfile: str = ""
    cpu_warn_percent: Positive | None = None
    cpu_crit_percent: Positive | None = None
    rss_warn_bytes: Positive | None = None
    rss_crit_bytes: Positive | None = None

    def __post_init__(self) -> None:
        if sum(bool(x) for x in (self.process_name, self.pattern, self.pidfile)) != 1:
            raise ValueError(f"check {self.name!r}: give one of process_name, pattern, pidfile")


class ContainerCheck(CheckBase, frozen=True, kw_only=True, tag="container"):
    """A container's Docker health status, from the container collector."""

    container: str


class DiskCheck(CheckBase, frozen=True, kw_only=True, tag="disk"):
    """Space and inodes of the filesystem holding `path`."""

    path: str = "/"
    used_warn_ratio: Ratio | None = 0.85
    used_crit_ratio: Ratio | None = 0.95
    inodes_warn_ratio: Ratio | None = 0.85
    inodes_crit_ratio: Ratio | None = 0.95


class FreshnessCheck(CheckBase, frozen=True, kw_only=True, tag="freshness"):
    """A file (or SQLite database, with its WAL) modified recently."""

    path: str
    max_age_warn: Positive | None = None
    max_age_crit: Positive = 300.0


class CommandCheck(CheckBase, frozen=True, kw_only=True, tag="command"):
    """A command's exit status (timeout kills it); the first line of its output."""

    command: Annotated[list[str], msgspec.Meta(min_length=1)]
    ok_codes: list[int] = msgspec.field(default_factory=lambda: [0])
    warn_codes: list[int] = msgspec.field(default_factory=lambda: [1])


AnyCheck = (HttpCheck | TcpCheck | RedisCheck | Neo4jCheck | ProcessCheck | ContainerCheck
            | DiskCheck | FreshnessCheck | CommandCheck)


class ComponentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A platform component: its checks, what it depends on, whether it sends heartbeats
    through the client library (and so is down when they stop)."""

    name: CheckName
    checks: list[str] = msgspec.field(default_factory=list)
    depends_on: list[str] = msgspec.field(default_factory=list)
    heartbeat: bool = False


class PredictionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A series heading for a limit: when will it reach it?"""

    selector: str
    limit: float
    rising: bool = True
    period_hours: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    """A cycle to see through (24 for a daily one), when the window holds more than one;
    0: none."""


DEFAULT_PREDICTIONS = [
    PredictionConfig(selector="host_disk_percent", limit=100.0),
    PredictionConfig(selector="host_disk_inodes_percent", limit=100.0),
    PredictionConfig(selector="host_memory_percent", limit=100.0),
    PredictionConfig(selector="host_fds_percent", limit=100.0),
]
