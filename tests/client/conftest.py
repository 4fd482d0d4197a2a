"""Fixtures of the client tests: monitors that are closed at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ttamond.client import Monitor

MonitorFactory = Callable[..., Monitor]


@pytest.fixture
def make_monitor(short_tmp: Path) -> Iterator[MonitorFactory]:
    """Build monitors (by default aimed at a socket nobody listens on); closed at teardown."""
    made: list[Monitor] = []

    def make(component: str = "narrative", **options: Any) -> Monitor:
        options.setdefault("socket_path", short_tmp / "absent.sock")
        monitor = Monitor(component, **options)
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        monitor.close(timeout=0.5)
