"""`ttamond service install|uninstall`: real files, checked by systemd's verifier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttamond.install import (
    InstallError,
    exec_command,
    exec_word,
    render_service,
    template,
)

ROOT = Path(__file__).resolve().parent.parent
TTAMOND = Path(sys.executable).with_name("ttamond")

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze not installed (apt install systemd)")


def service(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttamond", "service", *args],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, **(env or {})})


def verify(*units: Path, user: bool = False, runtime: Path | None = None) -> None:
    command = ["systemd-analyze", *(["--user"] if user else []), "verify", *map(str, units)]
    env = {**os.environ, **({"XDG_RUNTIME_DIR": str(runtime)} if runtime else {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                            env=env)
    assert result.returncode == 0, result.stderr


@needs_analyze
def test_install_writes_units_for_this_installation(tmp_path: Path) -> None:
    units = tmp_path / "units"
    result = service("install", "--socket", "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    unit = units / "ttamond.service"
    assert f"ExecStart={TTAMOND} run" in unit.read_text().splitlines()
    assert "ListenStream=%t/ttamond/control.sock" in (units / "ttamond.socket").read_text()
    assert result.stdout.splitlines()[-3:] == [
        "then run:", "  systemctl daemon-reload",
        "  systemctl enable --now ttamond.socket ttamond.service"]
    verify(unit, units / "ttamond.socket")

    removed = service("uninstall", "--unit-dir", str(units))
    assert removed.returncode == 0, removed.stderr
    assert sorted(units.iterdir()) == []
    assert "  systemctl daemon-reload" in removed.stdout.splitlines()
    again = service("uninstall", "--unit-dir", str(units))
    assert again.returncode == 0 and again.stdout.startswith("nothing to remove")


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    units = tmp_path / "units"
    result = service("install", "--dry-run", "--socket", "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    assert not units.exists()
    assert f"would write {units / 'ttamond.service'}:" in result.stdout
    assert f"ExecStart={TTAMOND} run" in result.stdout


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder this user may not write to. Root may write anywhere mode bits forbid, so
    for root it is /sys, where nobody can create a file."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    yield folder
    folder.chmod(0o755)


def test_an_unwritable_folder_is_one_line_and_exit_1(unwritable: Path) -> None:
    before = sorted(unwritable.iterdir())
    result = service("install", "--unit-dir", str(unwritable))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    # Root learns it on writing the file, anyone else before: either way, one line.
    assert line.startswith("ttamond: cannot write ") and str(unwritable) in line
    assert line.endswith(("Permission denied", "permission denied"))
    assert sorted(unwritable.iterdir()) == before


def test_a_unit_it_did_not_write_is_left_alone(tmp_path: Path) -> None:
    handmade = tmp_path / "ttamond.service"
    handmade.write_text("[Service]\nExecStart=/opt/mine\n")
    refused = service("install", "--unit-dir", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"ttamond: {handmade} exists and was not written by `ttamond service install`; "
        "move it away, or pass --force to replace it")
    assert service("uninstall", "--unit-dir", str(tmp_path)).stdout.startswith(
        "nothing to remove")
    assert handmade.read_text() == "[Service]\nExecStart=/opt/mine\n"
    forced = service("install", "--force", "--unit-dir", str(tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert f"ExecStart={TTAMOND} run" in handmade.read_text()


def test_uninstall_waits_until_the_units_are_disabled(tmp_path: Path) -> None:
    assert service("install", "--socket", "--unit-dir", str(tmp_path)).returncode == 0
    wants = tmp_path / "sockets.target.wants"
    wants.mkdir()
    (wants / "ttamond.socket").symlink_to(tmp_path / "ttamond.socket")
    refused = service("uninstall", "--unit-dir", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"ttamond: ttamond.socket is still enabled ({wants / 'ttamond.socket'}); run "
        "`systemctl disable --now ttamond.socket ttamond.service` first\n")
    assert (tmp_path / "ttamond.service").exists()
    (wants / "ttamond.socket").unlink()
    assert service("uninstall", "--unit-dir", str(tmp_path)).returncode == 0
    assert not (tmp_path / "ttamond.service").exists()


@needs_analyze
def test_user_units_go_to_the_users_config(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = service("install", "--user", "--socket",
                     env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""})
    assert result.returncode == 0, result.stderr
    units = tmp_path / ".config" / "systemd" / "user"
    text = (units / "ttamond.service").read_text()
    assert "WantedBy=default.target" in text and "DynamicUser" not in text
    assert "XDG_CONFIG_HOME" not in text and "MemoryDenyWriteExecute=yes" in text
    assert "  systemctl --user enable --now ttamond.socket ttamond.service" in result.stdout
    verify(units / "ttamond.service", units / "ttamond.socket", user=True, runtime=runtime)


@needs_analyze
def test_exec_start_survives_spaces_and_percent(tmp_path: Path) -> None:
    odd = tmp_path / "opt 100%" / "bin"
    odd.mkdir(parents=True)
    (odd / "ttamond").symlink_to(TTAMOND)
    unit = tmp_path / "ttamond.service"
    unit.write_text(render_service([str(odd / "ttamond")], user=False))
    assert f'ExecStart="{tmp_path}/opt 100%%/bin/ttamond" run' in unit.read_text()
    # verify resolves the path, so a wrongly quoted one fails with "not executable".
    verify(unit)


def test_exec_command_falls_back_to_python_m(tmp_path: Path) -> None:
    assert exec_command() == [str(TTAMOND)]
    python = tmp_path / "bin" / "python3"
    assert exec_command(str(python)) == [str(python), "-m", "ttamond"]
    with pytest.raises(InstallError, match="cannot name '/opt/\\$x/ttamond' in ExecStart="):
        exec_word("/opt/$x/ttamond")


def test_templates_are_the_shipped_unit_files() -> None:
    for name in ("ttamond.service", "ttamond.socket"):
        assert template(name) == (ROOT / "systemd" / name).read_text()
