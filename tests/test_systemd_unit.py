"""The shipped unit files pass systemd's own verifier and keep their security rating."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
UNIT = UNITS / "ttamond.service"
SOCKET_UNIT = UNITS / "ttamond.socket"

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze not installed (apt install systemd)")


def settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting, repeated keys included."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.append((section, key, value))
    return found


def promised_exposure() -> float:
    """The rating the unit's own header states."""
    match = re.search(r"rates this unit (\d+\.\d)", UNIT.read_text())
    assert match, "the unit's header states its systemd-analyze security rating"
    return float(match.group(1))


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """Both units as an administrator would have them, ExecStart= naming this venv."""
    ttamond = Path(sys.executable).with_name("ttamond")
    assert ttamond.exists(), "the ttamond console script is installed beside python"
    (tmp_path / SOCKET_UNIT.name).write_text(SOCKET_UNIT.read_text())
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/ttamond", str(ttamond)))
    return unit


@needs_analyze
def test_unit_files_verify(installed: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(installed), str(installed.with_suffix(".socket"))],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@needs_analyze
def test_security_exposure_stays_at_its_level(installed: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(installed)],
        capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for ttamond\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= promised_exposure() <= 2.0


def test_the_daemons_needs_survive_the_hardening() -> None:
    service = settings(UNIT.read_text())
    values = {key: value for _, key, value in service}
    assert values["Type"] == "notify" and values["NotifyAccess"] == "main"
    assert values["WatchdogSec"] and values["Restart"] == "on-failure"
    assert values["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert values["StateDirectory"] == values["RuntimeDirectory"] == "ttamond"
    # ttamond.socket's path lives in the runtime directory between two runs.
    assert values["RuntimeDirectoryPreserve"] == "yes"
    assert values["CapabilityBoundingSet"] == "" and values["DynamicUser"] == "yes"
    # Host-wide process metrics need every process's /proc entry and /proc/stat & co.
    assert "ProtectProc" not in values and "ProcSubset" not in values
    # NVML needs the NVIDIA devices, and nothing else is opened.
    assert values["DevicePolicy"] == "closed"
    assert [v for _, k, v in service if k == "DeviceAllow"] == [
        "char-nvidia-frontend rw", "char-nvidia-caps r"]
    assert set(values["RestrictAddressFamilies"].split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert [v for _, k, v in service if k == "SystemCallFilter"] == [
        "@system-service", "~@privileged @resources"]


def test_the_socket_unit_is_the_daemons_default_path() -> None:
    socket_settings = {key: value for _, key, value in settings(SOCKET_UNIT.read_text())}
    # %t/ttamond is $RUNTIME_DIRECTORY, where `ttamond status` looks by default.
    assert socket_settings["ListenStream"] == "%t/ttamond/control.sock"
    assert socket_settings["SocketMode"] == "0660"
    assert socket_settings["FileDescriptorName"] == "control"
