"""Errors the application does not report itself: a logging handler and uncaught-exception hooks."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from ttamond.messages import Severity

if TYPE_CHECKING:
    from ttamond.client.monitor import Monitor

CLIENT_LOGGER = "ttamond.client"
"""The client's own logger: its records are never forwarded, so it cannot feed itself."""


def severity_of(level: int) -> Severity:
    """The ErrorEvent severity of a logging level."""
    if level >= logging.CRITICAL:
        return "critical"
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warning"
    if level >= logging.INFO:
        return "info"
    return "debug"


class MonitorHandler(logging.Handler):
    """Forwards log records at `level` and above to a Monitor as error events.

    A record with exception info becomes the exception's event (type, message, stack;
    the log message goes into the context); one without becomes a message-only event.
    It never raises: a failure goes to `handleError`, as with any logging handler. The
    client's own records, and records logged while this handler is emitting on the same
    thread, are skipped, so it never recurses.
    """

    def __init__(self, monitor: Monitor, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self.monitor = monitor
        self._emitting = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Record one log record; see the class docstring."""
        if record.name == CLIENT_LOGGER or record.name.startswith(CLIENT_LOGGER + "."):
            return
        if getattr(self._emitting, "active", False):
            return
        self._emitting.active = True
        try:
            self._forward(record)
        except Exception:  # noqa: BLE001 - logging's contract: report through handleError
            self.handleError(record)
        finally:
            self._emitting.active = False

    def _forward(self, record: logging.LogRecord) -> None:
        severity = severity_of(record.levelno)
        context: dict[str, str | int] = {
            "logger": record.name,
            "level": record.levelname,
            "location": f"{record.module}.{record.funcName}:{record.lineno}",
        }
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            context["log_message"] = record.getMessage()
            self.monitor.record_error(error, severity=severity, context=context)
        else:
            self.monitor.record_message_error(record.getMessage(), error_type="LogRecord",
                                              severity=severity, context=context)


ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def install_excepthook(monitor: Monitor) -> Callable[[], None]:
    """Record uncaught exceptions (the main thread's and other threads') as critical
    errors, then hand them to the hooks that were installed before.

    KeyboardInterrupt and SystemExit are not errors and are only passed on. Returns a
    function that puts the previous hooks back (where ours are still the installed ones).
    """
    previous_hook: ExceptHook = sys.excepthook
    previous_thread_hook = threading.excepthook

    def excepthook(kind: type[BaseException], error: BaseException,
                   traceback: TracebackType | None) -> None:
        _record_uncaught(monitor, error, "main")
        previous_hook(kind, error, traceback)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            name = args.thread.name if args.thread is not None else "unknown"
            _record_uncaught(monitor, args.exc_value, name)
        previous_thread_hook(args)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook

    def uninstall() -> None:
        if sys.excepthook is excepthook:
            sys.excepthook = previous_hook
        if threading.excepthook is thread_excepthook:
            threading.excepthook = previous_thread_hook

    return uninstall


def _record_uncaught(monitor: Monitor, error: BaseException, thread: str) -> None:
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return
    monitor.record_error(error, severity="critical", context={"uncaught": True, "thread": thread})
