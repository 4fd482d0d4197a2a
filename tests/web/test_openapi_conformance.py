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
        # The report, from the page's navigation: the same document `ttamond report` makes.
        page = httpx.get(f"{url}/report", params={"since": "1h"}, timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "ttamond report for" in page.text and "<svg" in page.text
        markdown = httpx.get(f"{url}/report", params={"since": "1h", "format": "md"}, timeout=30)
        assert markdown.text.startswith("# ttamond report for")
        assert "attachment" in markdown.headers["content-disposition"]
        wrong = httpx.get(f"{url}/report", params={"format": "pdf"}, timeout=30)
        assert wrong.status_code == 400 and "html, md or json" in wrong.json()["error"]["message"]
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
