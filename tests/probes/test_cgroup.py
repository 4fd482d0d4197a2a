"""The cgroup probe against fixture trees (v1 and v2, limited and not) and this machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ttamond.messages import MetricPoint
from ttamond.probes.base import ProbeError, ProbeUnavailable
from ttamond.probes.cgroup import FIELDS, CgroupProbe, detect_layout

TREES = Path(__file__).parent / "cgroup_trees"
MiB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def probe_for(tree: Path, clock: FakeClock | None = None) -> CgroupProbe:
    return CgroupProbe(tree / "cgroup", tree / "proc", clock=clock or FakeClock())


def values(points: list[MetricPoint]) -> dict[str, float]:
    by_name = {point.name: point.value for point in points}
    assert len(by_name) == len(points)
    return by_name


def copy_tree(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(TREES / name, tmp_path / name))


def test_v2_limits_are_the_tightest_of_the_cgroup_and_its_ancestors() -> None:
    points = probe_for(TREES / "v2_limited").read()
    assert values(points) == {
        "container_cpu_limit_cores": 1.5,  # the container's 1.5, inside the pod's 2
        "container_memory_limit_bytes": 512 * MiB,  # the pod's 512 MiB, not the app's 1 GiB
        "container_memory_used_bytes": 128 * MiB,
        "container_memory_percent_of_limit": 25.0,
    }


def test_v2_in_a_cgroup_namespace_reads_the_mount_itself() -> None:
    points = probe_for(TREES / "v2_namespaced").read()
    assert values(points) == {
        "container_cpu_limit_cores": 0.5,
        "container_memory_used_bytes": 50 * MiB,
    }


def test_v1_docker_with_bind_mounted_subtrees() -> None:
    layout = detect_layout(TREES / "v1_limited" / "cgroup", TREES / "v1_limited" / "proc")
    assert layout.version == 1
    assert layout.cpu == (TREES / "v1_limited" / "cgroup" / "cpu,cpuacct",)
    points = probe_for(TREES / "v1_limited").read()
    assert values(points) == {
        "container_cpu_limit_cores": 2.5,
        "container_memory_limit_bytes": 256 * MiB,
        "container_memory_used_bytes": 64 * MiB,
        "container_memory_percent_of_limit": 25.0,
    }


@pytest.mark.parametrize("tree", ["v1_unlimited", "v2_unlimited"])
def test_no_limit_means_no_points(tree: str) -> None:
    probe = probe_for(TREES / tree)
    assert probe.read() == []
    assert probe.read() == []


def test_v1_unlimited_walks_the_memory_cgroup_up_to_its_mount() -> None:
    root = TREES / "v1_unlimited" / "cgroup"
    layout = detect_layout(root, TREES / "v1_unlimited" / "proc")
    assert layout.memory == (root / "memory/sandbox/task7", root / "memory/sandbox",
                             root / "memory")
    assert layout.cpu_usage == root / "cpuacct" / "cpuacct.usage"


def test_cpu_percent_of_limit_v2(tmp_path: Path) -> None:
    tree = copy_tree("v2_limited", tmp_path)
    clock = FakeClock()
    probe = probe_for(tree, clock)
    assert "container_cpu_percent_of_limit" not in values(probe.read())
    stat = tree / "cgroup/kubepods.slice/pod1/app/cpu.stat"
    # 1.5 CPU-seconds over 2 seconds is 0.75 of a CPU: half the 1.5-core limit.
    stat.write_text("usage_usec 6500000\nuser_usec 4000000\nsystem_usec 2500000\n")
    clock.now += 2.0
    assert values(probe.read())["container_cpu_percent_of_limit"] == pytest.approx(50.0)
    clock.now += 1.0
    assert values(probe.read())["container_cpu_percent_of_limit"] == 0.0


def test_cpu_percent_of_limit_v1(tmp_path: Path) -> None:
    tree = copy_tree("v1_limited", tmp_path)
    clock = FakeClock()
    probe = probe_for(tree, clock)
    probe.read()
    usage = tree / "cgroup/cpu,cpuacct/cpuacct.usage"
    usage.write_text(str(123456789000 + 5 * 10**9))
    clock.now += 4.0
    # 5 CPU-seconds over 4 seconds against 2.5 cores.
    assert values(probe.read())["container_cpu_percent_of_limit"] == pytest.approx(50.0)


def test_a_counter_going_back_gives_no_rate_that_read(tmp_path: Path) -> None:
    tree = copy_tree("v2_namespaced", tmp_path)
    clock = FakeClock()
    probe = probe_for(tree, clock)
    probe.read()
    (tree / "cgroup/cpu.stat").write_text("usage_usec 100\n")
    clock.now += 1.0
    assert "container_cpu_percent_of_limit" not in values(probe.read())
    (tree / "cgroup/cpu.stat").write_text("usage_usec 250100\n")
    clock.now += 1.0
    assert values(probe.read())["container_cpu_percent_of_limit"] == pytest.approx(50.0)


def test_limits_are_read_again_each_time(tmp_path: Path) -> None:
    tree = copy_tree("v2_namespaced", tmp_path)
    probe = probe_for(tree)
    (tree / "cgroup/memory.max").write_text("104857600\n")
    assert values(probe.read())["container_memory_percent_of_limit"] == 50.0
    (tree / "cgroup/cpu.max").write_text("max 100000\n")
    (tree / "cgroup/memory.max").write_text("max\n")
    assert probe.read() == []


def test_points_match_their_declared_fields() -> None:
    for tree in ("v2_limited", "v2_namespaced", "v1_limited"):
        probe = probe_for(TREES / tree)
        probe.read()
        for point in probe.read():
            field = FIELDS[point.name]
            assert point.labels == ()
            assert (point.kind, point.unit) == (field.kind, field.unit)


def test_an_unreadable_file_is_a_probe_error_naming_it(tmp_path: Path) -> None:
    tree = copy_tree("v2_namespaced", tmp_path)
    current = tree / "cgroup/memory.current"
    current.unlink()
    current.mkdir()  # unreadable as a file, even for root
    with pytest.raises(ProbeError, match=r"cannot read .*/cgroup/memory\.current: Is a directory"):
        probe_for(tree).read()


def test_garbage_is_a_probe_error_naming_the_file(tmp_path: Path) -> None:
    tree = copy_tree("v1_limited", tmp_path)
    (tree / "cgroup/memory/memory.limit_in_bytes").write_text("lots\n")
    with pytest.raises(ProbeError, match=r"memory\.limit_in_bytes: cannot parse 'lots'"):
        probe_for(tree).read()
    tree = copy_tree("v2_limited", tmp_path)
    (tree / "cgroup/kubepods.slice/pod1/cpu.max").write_text("200000\n")
    with pytest.raises(ProbeError, match=r"pod1/cpu\.max: cannot parse '200000'"):
        probe_for(tree).read()


def test_no_cgroups_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProbeUnavailable, match=r"no cgroups: .*/self/cgroup does not exist"):
        CgroupProbe(tmp_path, tmp_path).read()
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "cgroup").write_text("0::/\n")
    with pytest.raises(ProbeUnavailable, match="no cgroup v2 filesystem mounted at"):
        CgroupProbe(tmp_path / "nothing", tmp_path).read()


def test_this_machine_reads_without_error() -> None:
    if not Path("/proc/self/cgroup").exists():
        pytest.skip("no cgroups on this system")
    probe = CgroupProbe()
    for point in probe.read() + probe.read():
        assert point.name in FIELDS
        assert point.value >= 0
