"""`ttamond report` end to end as a subprocess, the file it writes, its errors; and the
progress bar on a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import TextIO

import pytest

from tests.report import known
from ttamond.report.cli import write_atomically
from ttamond.report.progress import Progress

UNTIL = datetime.fromtimestamp((known.T0 + 3_600_000) / 1000, UTC).strftime("%Y-%m-%dT%H:%M")
"""The end of the known data's "minute" window, as the CLI takes it (no offset: UTC)."""


def ttamond(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttamond", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def config_for(folder: Path, database: Path) -> Path:
    path = folder / "ttamond.toml"
    path.write_text(f'[paths]\ndatabase = "{database}"\n')
    return path


def test_report_into_a_file(known_db: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path, known_db)
    out = tmp_path / "reports" / "week.json"
    out.parent.mkdir()
    done = ttamond("report", "-c", str(config), "--since", "2h", "--until", UNTIL,
                   "--format", "json", "-o", str(out), cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{out}\n", "")
    data = json.loads(out.read_text())
    assert (data["since_ms"], data["until_ms"]) == (known.T0 - 3_600_000, known.T0 + 3_600_000)
    overall = data["performance"]["overall"]
    assert overall["operations"] == known.OPERATIONS
    assert overall["response_avg_s"] == pytest.approx(known.RESPONSE_AVG)
    assert overall["error_rate"] == pytest.approx(known.ERROR_RATE)

    again = ttamond("report", "-c", str(config), "--since", "2h", "--until", UNTIL,
                    "--format", "html", "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["week.json"]  # no temp file left


def test_report_on_stdout_in_markdown_by_default(known_db: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path, known_db)
    done = ttamond("report", "--config", str(config), "--since", "2h", "--until", UNTIL,
                   cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("# ttamond report for ")
    assert "| operations                    |         9 |" in done.stdout


@pytest.mark.parametrize(("since", "message"), [
    ("7x", "argument --since: bad duration '7x': use a number and one of ms, s, m, h, d, w"),
    ("0", "argument --since: bad duration '0': must be more than 0"),
])
def test_a_bad_since_is_a_usage_error(tmp_path: Path, since: str, message: str) -> None:
    done = ttamond("report", "--since", since, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr


def test_a_bad_until_is_a_usage_error(tmp_path: Path) -> None:
    done = ttamond("report", "--until", "yesterday", cwd=tmp_path)
    assert done.returncode == 2
    assert "argument --until: bad time 'yesterday'" in done.stderr


def test_a_missing_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    absent = tmp_path / "state" / "ttamond.db"
    done = ttamond("report", "-c", str(config_for(tmp_path, absent)), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"ttamond: no database at {absent} (has the daemon run with this"
                           " config? --config names another)\n")


def test_an_unwritable_output_is_one_line_and_exit_1(empty_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "report.md"
    done = ttamond("report", "-c", str(config_for(tmp_path, empty_db)), "-o", str(out),
                   cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"ttamond: cannot write {out}: ")
    assert done.stderr.count("\n") == 1


def test_writing_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text("old")
    write_atomically(path, "new report\n")
    assert path.read_text() == "new report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "absent" / "report.md", "x")


class Clock:
    """Seconds that advance by what the test says (the bar waits one second)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def terminal() -> Iterator[tuple[int, TextIO]]:
    """A real pseudo-terminal: (the side the test reads, a text stream on the other)."""
    reader, writer = os.openpty()
    stream = os.fdopen(writer, "w")
    yield reader, stream
    stream.close()
    os.close(reader)


def read_all(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_the_bar_shows_on_a_terminal_once_a_second_has_passed(
    terminal: tuple[int, TextIO],
) -> None:
    reader, stream = terminal
    clock = Clock()
    progress = Progress(stream, 5, clock=clock)
    progress.step("performance")
    clock.now += 0.5
    progress.step("errors")
    assert read_all(reader) == ""  # quick so far: nothing shown
    clock.now += 0.6
    progress.step("alerts")
    progress.step("carbon")
    progress.finish()
    shown = read_all(reader)
    assert shown == ("\r[######....] 3/5 alerts"
                     "\r[########..] 4/5 carbon"
                     "\r" + " " * 23 + "\r")


def test_no_bar_when_not_a_terminal() -> None:
    stream = StringIO()
    clock = Clock()
    progress = Progress(stream, 5, clock=clock)
    clock.now += 5
    for name in ("performance", "errors"):
        progress.step(name)
    progress.finish()
    assert stream.getvalue() == ""
