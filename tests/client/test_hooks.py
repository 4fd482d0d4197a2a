"""The logging handler and the uncaught-exception hooks: forward, never raise, never recurse."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from types import TracebackType

import pytest

from tests.client.conftest import MonitorFactory
from tests.client.helpers import buffered
from ttamond.client import Monitor, MonitorHandler, install_excepthook
from ttamond.messages import ErrorEvent


class _Handler(MonitorHandler):
    """The real handler, keeping what logging's handleError is given."""

    def __init__(self, monitor: Monitor, level: int = logging.ERROR) -> None:
        super().__init__(monitor, level)
        self.failed: list[logging.LogRecord] = []

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name for it
        self.failed.append(record)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A private logger that does not propagate to pytest's handlers."""
    log = logging.getLogger("tta.narrative.test")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def _errors(monitor: Monitor) -> list[ErrorEvent]:
    return [r for r in buffered(monitor) if isinstance(r, ErrorEvent)]


def test_error_records_become_error_events(make_monitor: MonitorFactory,
                                           logger: logging.Logger) -> None:
    monitor = make_monitor()
    handler = _Handler(monitor)
    logger.addHandler(handler)
    logger.warning("below the handler's level")
    scenes: dict[str, str] = {}
    try:
        scenes["scene"]
    except KeyError:
        logger.exception("cannot load scene %s", "forest")
    logger.critical("the world store is gone")
    with_exception, critical = _errors(monitor)
    assert with_exception.error_type == "KeyError"
    assert with_exception.message == "'scene'"
    assert with_exception.severity == "error"
    assert with_exception.stack[-1].function == "test_error_records_become_error_events"
    assert with_exception.context["log_message"] == "cannot load scene forest"
    assert with_exception.context["logger"] == "tta.narrative.test"
    assert critical.error_type == "LogRecord"
    assert (critical.message, critical.severity, critical.stack) == (
        "the world store is gone", "critical", [])
    assert handler.failed == []


def test_a_broken_record_goes_to_handle_error_and_nothing_raises(
    make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor()
    handler = _Handler(monitor)
    # Handled directly: through a logger, pytest's own capture handlers would see the
    # broken record too and fail the test for it.
    record = logging.LogRecord("tta.narrative", logging.ERROR, __file__, 1, "%d scenes",
                               ("many",), None)
    handler.handle(record)
    assert handler.failed == [record]
    assert _errors(monitor) == []


def test_the_clients_own_records_are_never_forwarded(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    handler = MonitorHandler(monitor, level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("ttamond.client").error("the client's own trouble")
        # A record the monitor cannot build makes the client log a warning, which must
        # not come back through the handler.
        monitor.record_message_error(None)  # type: ignore[arg-type]
        logging.getLogger("tta.narrative").error("an application error")
    finally:
        root.removeHandler(handler)
    assert [event.message for event in _errors(monitor)] == ["an application error"]
    assert monitor.stats().dropped == 1


def test_uncaught_exceptions_are_recorded_critical_then_passed_on(
    make_monitor: MonitorFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    passed_on: list[object] = []

    def previous_hook(kind: type[BaseException], error: BaseException,
                      traceback: TracebackType | None) -> None:
        passed_on.append(error)

    def previous_thread_hook(args: threading.ExceptHookArgs) -> None:
        passed_on.append(args.exc_value)

    monkeypatch.setattr(sys, "excepthook", previous_hook)
    monkeypatch.setattr(threading, "excepthook", previous_thread_hook)
    monitor = make_monitor()
    uninstall = install_excepthook(monitor)
    try:
        failure = ValueError("main thread")
        sys.excepthook(ValueError, failure, None)
        interrupt = KeyboardInterrupt()
        sys.excepthook(KeyboardInterrupt, interrupt, None)

        def crash() -> None:
            raise LookupError("worker thread")

        worker = threading.Thread(target=crash, name="worker")
        worker.start()
        worker.join()
    finally:
        uninstall()
    assert sys.excepthook is previous_hook
    assert threading.excepthook is previous_thread_hook
    assert passed_on[:2] == [failure, interrupt]
    assert isinstance(passed_on[2], LookupError)
    main, thread = _errors(monitor)
    assert (main.error_type, main.severity, main.context) == (
        "ValueError", "critical", {"uncaught": True, "thread": "main"})
    assert (thread.error_type, thread.message, thread.context["thread"]) == (
        "LookupError", "worker thread", "worker")
    assert thread.stack[-1].function.endswith("crash")
