"""Shared helpers of the client tests: polling with a deadline, and reading what was stored."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from tests.daemon_process import DaemonProcess
from ttamond.client import Monitor
from ttamond.client._batch import Record

T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s (last: {value!r})")
        time.sleep(0.02)


def stored_values(daemon: DaemonProcess, name: str) -> list[float]:
    """Values of every stored sample of the series called `name`, oldest first."""
    if not daemon.database.exists():
        return []
    connection = sqlite3.connect(daemon.database)
    try:
        rows = connection.execute(
            "SELECT samples.value FROM samples JOIN series ON series.id = samples.series_id "
            "WHERE series.name = ? ORDER BY samples.ts",
            (name,),
        ).fetchall()
    except sqlite3.OperationalError:  # the store has not created its tables yet
        return []
    finally:
        connection.close()
    return [float(row[0]) for row in rows]


def buffered(monitor: Monitor) -> list[Record]:
    """What a monitor holds now, oldest first."""
    with monitor._buffer.lock:
        return list(monitor._buffer.records)
