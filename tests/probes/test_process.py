"""The process probe against real child processes on this machine."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import psutil
import pytest

from ttamond.config import WatchedProcess
from ttamond.messages import MetricPoint
from ttamond.probes.base import ProbeError
from ttamond.probes.process import FIELDS, ProcessProbe

SLEEPER = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)"
BURNER = "import sys; sys.stdout.write('up\\n'); sys.stdout.flush()\nwhile True: pass"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `python -c CODE MARKER...`; each child is killed and reaped at teardown."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str, *argv: str) -> subprocess.Popen[str]:
        child = subprocess.Popen([sys.executable, "-c", code, *argv], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        children.append(child)
        if child.stdout is None or child.stdout.readline() != "up\n":
            raise RuntimeError("child did not start")
        return child

    yield start
    for child in children:
        child.kill()
        child.wait()


def marker() -> str:
    return f"ttamond-test-{uuid.uuid4().hex}"


def of_pid(points: list[MetricPoint], pid: int) -> dict[str, MetricPoint]:
    found = {p.name: p for p in points if ("pid", str(pid)) in p.labels}
    assert len(found) == len([p for p in points if ("pid", str(pid)) in p.labels])
    return found


def wait_for_cpu_seconds(pid: int, seconds: float) -> None:
    """Block until `pid` has burnt `seconds` more CPU time (its work, not a fixed nap)."""
    process = psutil.Process(pid)
    start = sum(process.cpu_times()[:2])
    deadline = time.monotonic() + 30
    while sum(process.cpu_times()[:2]) - start < seconds:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} burnt no CPU")
        time.sleep(0.02)


def test_a_watched_process_is_reported_with_its_details(
    spawn: Callable[..., subprocess.Popen[str]],
) -> None:
    tag = marker()
    child = spawn(SLEEPER, tag)
    probe = ProcessProbe(0, [WatchedProcess(name="sleeper", pattern=rf"{tag}\b"),
                             WatchedProcess(name="absent", pattern=marker())])
    first = probe.read()
    mine = of_pid(first, child.pid)
    assert "process_cpu_percent" not in mine  # no previous sample yet
    labels = dict(mine["process_resident_bytes"].labels)
    assert labels == {"name": psutil.Process(child.pid).name(), "pid": str(child.pid),
                      "watch": "sleeper"}
    assert 1_000_000 < mine["process_resident_bytes"].value < 1_000_000_000
    assert mine["process_threads"].value >= 1
    assert mine["process_open_fds"].value >= 3  # stdin, stdout, stderr
    assert mine["process_read_bytes_total"].value >= 0
    assert mine["process_written_bytes_total"].value >= 0
    counts = {dict(p.labels)["watch"]: p.value for p in first if p.name == "process_watch_count"}
    assert counts == {"sleeper": 1, "absent": 0}

    second = of_pid(probe.read(), child.pid)
    assert 0.0 <= second["process_cpu_percent"].value < 50.0


def test_a_busy_process_tops_the_cpu_list(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    burner = spawn(BURNER, marker())
    probe = ProcessProbe(5)
    probe.read()
    wait_for_cpu_seconds(burner.pid, 0.3)
    points = probe.read()
    mine = of_pid(points, burner.pid)
    assert dict(mine["process_cpu_percent"].labels)["watch"] == ""
    assert 10.0 < mine["process_cpu_percent"].value <= 100.0 * (psutil.cpu_count() or 1)
    cpu = [p for p in points if p.name == "process_cpu_percent"]
    assert 0 < len(cpu) <= 10  # top 5 by CPU and top 5 by memory may overlap


def test_the_memory_top_list_holds_the_largest(
    spawn: Callable[..., subprocess.Popen[str]],
) -> None:
    big = spawn("import sys, time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]);"
                " sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)", marker())
    points = ProcessProbe(3).read()
    rss = {int(dict(p.labels)["pid"]): p.value for p in points
           if p.name == "process_resident_bytes"}
    assert len(rss) == 3
    assert rss[big.pid] > 300 * 2**20
    others = [proc for proc in psutil.process_iter(["memory_info"])
              if proc.info["memory_info"] and proc.pid not in rss]
    assert all(proc.info["memory_info"].rss < min(rss.values()) * 1.1 for proc in others)


def test_a_process_exiting_between_reads_is_dropped(
    spawn: Callable[..., subprocess.Popen[str]],
) -> None:
    tag = marker()
    child = spawn(SLEEPER, tag)
    probe = ProcessProbe(3, [WatchedProcess(name="doomed", pattern=tag)])
    assert of_pid(probe.read(), child.pid)
    assert child.pid in probe._tracked
    child.kill()
    child.wait()
    points = probe.read()
    assert not of_pid(points, child.pid)
    assert child.pid not in probe._tracked
    assert [p.value for p in points if p.name == "process_watch_count"] == [0]


def test_a_zombie_does_not_break_the_read(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    tag = marker()
    child = spawn(SLEEPER, tag)
    probe = ProcessProbe(3, [WatchedProcess(name="zombie", pattern=tag)])
    probe.read()
    child.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            raise TimeoutError("child never became a zombie")
        time.sleep(0.01)
    for point in probe.read():
        assert point.name in FIELDS  # reported or skipped, it never raises


def test_exec_starts_the_process_afresh(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    tag = marker()
    child = spawn("import os, sys; sys.stdout.write('up\\n'); sys.stdout.flush();"
                  " sys.stdin.readline(); os.execvp('sleep', ['sleep', '60'])", tag)
    probe = ProcessProbe(0, [WatchedProcess(name="before", pattern=tag),
                             WatchedProcess(name="after", pattern=r"^sleep 60$")])
    probe.read()
    assert dict(of_pid(probe.read(), child.pid)["process_cpu_percent"].labels)["watch"] == "before"
    assert child.stdin is not None
    child.stdin.write("exec\n")
    child.stdin.flush()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).name() != "sleep":
        if time.monotonic() > deadline:
            raise TimeoutError("child never exec'd")
        time.sleep(0.01)
    after = of_pid(probe.read(), child.pid)
    assert "process_cpu_percent" not in after
    assert dict(after["process_resident_bytes"].labels) == {
        "name": "sleep", "pid": str(child.pid), "watch": "after"}


def test_points_match_their_declared_fields(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    tag = marker()
    spawn(SLEEPER, tag)
    probe = ProcessProbe(10, [WatchedProcess(name="w", pattern=tag)])
    probe.read()
    points = probe.read()
    assert {p.name for p in points} >= {"process_count", "process_watch_count",
                                        "process_cpu_percent", "process_resident_bytes",
                                        "process_threads"}
    for point in points:
        field = FIELDS[point.name]
        assert tuple(key for key, _ in point.labels) == tuple(sorted(field.labels))
        assert (point.kind, point.unit) == (field.kind, field.unit)
        assert point.value >= 0


def test_no_top_and_no_watch_reports_only_the_count() -> None:
    probe = ProcessProbe(0, [])
    points = probe.read()
    assert [p.name for p in points] == ["process_count"]
    assert abs(points[0].value - len(psutil.pids())) < 20
    assert probe._tracked == {}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="top_n must be 0 or more, not -1"):
        ProcessProbe(-1)


def test_an_unlistable_proc_is_a_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Mocked: /proc cannot be made unreadable for a test without another mount namespace.
    def no_proc() -> list[int]:
        raise FileNotFoundError(2, "No such file or directory", "/proc")

    monkeypatch.setattr(psutil, "pids", no_proc)
    with pytest.raises(ProbeError, match=r"cannot list processes: .*No such file"):
        ProcessProbe(1).read()
