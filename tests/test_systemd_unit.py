"""The shipped unit file passes systemd's own verifier."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "ttamond.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_verifies(tmp_path: Path) -> None:
    ttamond = Path(sys.executable).with_name("ttamond")
    assert ttamond.exists(), "the ttamond console script is installed beside python"
    unit = tmp_path / "ttamond.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/ttamond", str(ttamond)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Type=notify" in unit.read_text()
