"""The JSON API against its own OpenAPI document, on a real daemon: schemathesis with every
check (server errors, undocumented status codes, response schemas, schema-valid input
refused, schema-violating input accepted) and every phase (examples, coverage, fuzzing,
stateful). Its command line runs it, since only that runs all the phases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.web.live import start_demo

pytest.importorskip("schemathesis")


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    daemon, url = start_demo(tmp_path)
    try:
        # A fixed seed: a failure found once is found again, and CI is not a lottery.
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/v1/openapi.json",
             "--checks", "all", "--max-examples", "60", "--seed", "20261127", "--no-color",
             "--workers", "1"],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "Tested: 16" in result.stdout
        # The same app on the Unix socket, which `ttamond status` names.
        unix = daemon.status()["web"]["unix_socket"]
        assert unix == str(daemon.run / "web.sock")
        assert unix in daemon.cli("status", "--socket", str(daemon.socket_path)).stdout
        with httpx.Client(transport=httpx.HTTPTransport(uds=unix)) as client:
            assert client.get("http://ttamond/api/v1/actors").status_code == 200
        assert daemon.process is not None and daemon.process.poll() is None
        assert "Traceback" not in daemon.stderr(), daemon.stderr()[-4000:]
    finally:
        daemon.close()
