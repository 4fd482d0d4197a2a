"""Shared fixtures: a real daemon subprocess under a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess


@pytest.fixture
def short_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short temp folder: Unix socket paths must fit in 108 bytes."""
    return tmp_path_factory.mktemp("d", numbered=True)


@pytest.fixture
def daemon(short_tmp: Path) -> Iterator[DaemonProcess]:
    """A configured, not yet started daemon; killed at teardown if still running."""
    process = DaemonProcess(short_tmp)
    yield process
    process.close()
