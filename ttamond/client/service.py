"""The platform's monitoring service interface as async calls to the daemon (trio or asyncio)."""

from __future__ import annotations

import os
from typing import Any

import anyio
import msgspec
from anyio.streams.buffered import BufferedByteReceiveStream

from ttamond.client._transport import (
    MAX_REPLY_BYTES,
    ServiceError,
    ServiceUnavailable,
    request_line,
    resolve_socket_path,
    result_of,
)

SERVICE_COMMANDS: tuple[str, ...] = (
    # Monitoring sessions and configuration.
    "start_monitoring", "stop_monitoring", "get_system_status", "configure_monitoring",
    "get_monitoring_metrics",
    # Performance.
    "collect_component_metrics", "collect_ai_model_metrics", "collect_database_metrics",
    "collect_network_metrics", "get_performance_summary",
    # Errors.
    "track_error", "analyze_error_patterns", "trigger_alert", "resolve_error",
    "get_error_metrics",
    # Carbon.
    "start_carbon_tracking", "stop_carbon_tracking", "generate_carbon_report",
    "analyze_carbon_efficiency", "get_carbon_metrics",
    # Engagement.
    "track_engagement_event", "analyze_session_patterns", "generate_engagement_insights",
    "correlate_engagement_outcomes", "get_engagement_metrics",
    # Health.
    "monitor_component_health", "check_dependency_health", "predict_system_issues",
    "perform_health_check", "get_system_health_summary",
    # Alerts.
    "create_alert", "escalate_alert", "resolve_alert", "configure_alert_rules",
    "get_alert_metrics",
)
"""Every service call, by the control command name the daemon registers for it."""

_encode = msgspec.json.Encoder().encode


class MonitoringClient:
    """Async client of the daemon's service commands; works under trio and asyncio.

    Each method sends the control command of the same name with its keyword arguments
    and returns the result. It raises ServiceUnavailable when the daemon cannot be
    reached or does not answer within `timeout` seconds, and ServiceError for an error
    reply (code `not_available` when the daemon's part for that call is not running,
    `unknown_command` from a daemon that predates it).

    Each call opens its own connection: Unix sockets connect in microseconds, and no
    stream outlives the event loop that opened it, so one client may serve several.
    """

    def __init__(self, socket_path: str | os.PathLike[str] | None = None,
                 timeout: float = 5.0) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        self.timeout = timeout

    async def _call(self, command: str, args: dict[str, Any]) -> Any:
        """Send one command; return its result (see the class docstring for errors)."""
        line = request_line(command, _encode(args), 1)
        try:
            with anyio.fail_after(self.timeout):
                stream = await anyio.connect_unix(self.socket_path)
                async with stream:
                    await stream.send(line)
                    reader = BufferedByteReceiveStream(stream)
                    reply = await reader.receive_until(b"\n", MAX_REPLY_BYTES)
        except TimeoutError:
            raise ServiceUnavailable(
                f"no reply on {self.socket_path} within {self.timeout:g} s") from None
        except FileNotFoundError:
            raise ServiceUnavailable(
                f"no control socket at {self.socket_path}: is ttamond running?") from None
        except ConnectionRefusedError:
            raise ServiceUnavailable(f"nothing answers on {self.socket_path} "
                                     "(a stale socket: is ttamond running?)") from None
        except PermissionError:
            raise ServiceUnavailable(
                f"permission denied on {self.socket_path}: join the daemon's group") from None
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, anyio.IncompleteRead,
                anyio.DelimiterNotFound) as exc:
            raise ServiceUnavailable(
                f"cannot talk to {self.socket_path}: {exc or type(exc).__name__}") from None
        return result_of(reply, 1)

    # Monitoring sessions and configuration.

    async def start_monitoring(self, **args: Any) -> Any:
        """Start a monitoring session for a component; returns the session."""
        return await self._call("start_monitoring", args)

    async def stop_monitoring(self, **args: Any) -> Any:
        """Stop a monitoring session."""
        return await self._call("stop_monitoring", args)

    async def get_system_status(self, **args: Any) -> Any:
        """The overall system status: components, dependencies, alerts."""
        return await self._call("get_system_status", args)

    async def configure_monitoring(self, **args: Any) -> Any:
        """Change monitoring settings (intervals, thresholds) at run time."""
        return await self._call("configure_monitoring", args)

    async def get_monitoring_metrics(self, **args: Any) -> Any:
        """The monitoring system's own metrics."""
        return await self._call("get_monitoring_metrics", args)

    # Performance.

    async def collect_component_metrics(self, **args: Any) -> Any:
        """Collect one component's metrics now."""
        return await self._call("collect_component_metrics", args)

    async def collect_ai_model_metrics(self, **args: Any) -> Any:
        """AI model metrics: inference times, tokens, GPU use."""
        return await self._call("collect_ai_model_metrics", args)

    async def collect_database_metrics(self, **args: Any) -> Any:
        """Database metrics: operation latencies, rows, failures."""
        return await self._call("collect_database_metrics", args)

    async def collect_network_metrics(self, **args: Any) -> Any:
        """Network metrics: traffic, latency, WebSocket connections."""
        return await self._call("collect_network_metrics", args)

    async def get_performance_summary(self, **args: Any) -> Any:
        """A performance summary over a time range."""
        return await self._call("get_performance_summary", args)

    # Errors.

    async def track_error(self, **args: Any) -> Any:
        """Record one error event."""
        return await self._call("track_error", args)

    async def analyze_error_patterns(self, **args: Any) -> Any:
        """Error groups, trends and regressions over a time range."""
        return await self._call("analyze_error_patterns", args)

    async def trigger_alert(self, **args: Any) -> Any:
        """Raise an alert for an error."""
        return await self._call("trigger_alert", args)

    async def resolve_error(self, **args: Any) -> Any:
        """Mark an error group resolved."""
        return await self._call("resolve_error", args)

    async def get_error_metrics(self, **args: Any) -> Any:
        """Error counts and rates."""
        return await self._call("get_error_metrics", args)

    # Carbon.

    async def start_carbon_tracking(self, **args: Any) -> Any:
        """Start tracking the energy and emissions of an operation."""
        return await self._call("start_carbon_tracking", args)

    async def stop_carbon_tracking(self, **args: Any) -> Any:
        """Stop a carbon tracking session; returns what it measured."""
        return await self._call("stop_carbon_tracking", args)

    async def generate_carbon_report(self, **args: Any) -> Any:
        """A carbon report over a time range."""
        return await self._call("generate_carbon_report", args)

    async def analyze_carbon_efficiency(self, **args: Any) -> Any:
        """Emissions per unit of work, and where to save."""
        return await self._call("analyze_carbon_efficiency", args)

    async def get_carbon_metrics(self, **args: Any) -> Any:
        """Energy and emission totals."""
        return await self._call("get_carbon_metrics", args)

    # Engagement.

    async def track_engagement_event(self, **args: Any) -> Any:
        """Record one therapy-session engagement event."""
        return await self._call("track_engagement_event", args)

    async def analyze_session_patterns(self, **args: Any) -> Any:
        """Session patterns (k-anonymous)."""
        return await self._call("analyze_session_patterns", args)

    async def generate_engagement_insights(self, **args: Any) -> Any:
        """Engagement insights over a time range."""
        return await self._call("generate_engagement_insights", args)

    async def correlate_engagement_outcomes(self, **args: Any) -> Any:
        """Correlate engagement with therapeutic outcomes."""
        return await self._call("correlate_engagement_outcomes", args)

    async def get_engagement_metrics(self, **args: Any) -> Any:
        """Engagement counts and rates."""
        return await self._call("get_engagement_metrics", args)

    # Health.

    async def monitor_component_health(self, **args: Any) -> Any:
        """One component's health now."""
        return await self._call("monitor_component_health", args)

    async def check_dependency_health(self, **args: Any) -> Any:
        """A dependency's health (Neo4j, Redis, ...)."""
        return await self._call("check_dependency_health", args)

    async def predict_system_issues(self, **args: Any) -> Any:
        """Issues the trends predict."""
        return await self._call("predict_system_issues", args)

    async def perform_health_check(self, **args: Any) -> Any:
        """Run the health checks now."""
        return await self._call("perform_health_check", args)

    async def get_system_health_summary(self, **args: Any) -> Any:
        """Health of every component and dependency."""
        return await self._call("get_system_health_summary", args)

    # Alerts.

    async def create_alert(self, **args: Any) -> Any:
        """Create an alert."""
        return await self._call("create_alert", args)

    async def escalate_alert(self, **args: Any) -> Any:
        """Escalate an alert to its next level."""
        return await self._call("escalate_alert", args)

    async def resolve_alert(self, **args: Any) -> Any:
        """Resolve an alert."""
        return await self._call("resolve_alert", args)

    async def configure_alert_rules(self, **args: Any) -> Any:
        """Replace or change alert rules."""
        return await self._call("configure_alert_rules", args)

    async def get_alert_metrics(self, **args: Any) -> Any:
        """Alert counts, states and times to resolve."""
        return await self._call("get_alert_metrics", args)


__all__ = ["SERVICE_COMMANDS", "MonitoringClient", "ServiceError", "ServiceUnavailable"]
