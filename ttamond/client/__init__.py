"""The library TTA components import to report to the ttamond daemon on their host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ttamond.client._transport import ServiceError, ServiceUnavailable, default_socket_path
from ttamond.client.errors import error_type_name, in_app, stack_frames
from ttamond.client.hooks import MonitorHandler, install_excepthook
from ttamond.client.monitor import Monitor, MonitorStats
from ttamond.client.session import MonitoringSession
from ttamond.client.tracking import DatabaseTracker, InferenceTracker, NetworkTracker, Timer

if TYPE_CHECKING:
    from ttamond.client.service import SERVICE_COMMANDS, MonitoringClient

_LAZY = {"MonitoringClient", "SERVICE_COMMANDS"}


def __getattr__(name: str) -> Any:
    # The async service client needs anyio; a component that only records never pays
    # for importing it.
    if name in _LAZY:
        from ttamond.client import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SERVICE_COMMANDS",
    "DatabaseTracker",
    "InferenceTracker",
    "Monitor",
    "MonitorHandler",
    "MonitorStats",
    "MonitoringClient",
    "MonitoringSession",
    "NetworkTracker",
    "ServiceError",
    "ServiceUnavailable",
    "Timer",
    "default_socket_path",
    "error_type_name",
    "in_app",
    "install_excepthook",
    "stack_frames",
]
