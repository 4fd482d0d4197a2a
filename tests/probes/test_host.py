"""The host probe against this machine's real /proc."""

from __future__ import annotations

from pathlib import Path

import psutil

from ttamond.probes import REGISTRY
from ttamond.probes.host import FIELDS, HostProbe


def test_every_point_is_a_declared_field_with_its_labels_and_unit() -> None:
    probe = HostProbe(exclude_fstypes=["tmpfs"])
    points = probe.read()
    assert points
    for point in points:
        field = FIELDS[point.name]
        assert tuple(sorted(key for key, _ in point.labels)) == tuple(sorted(field.labels))
        assert (point.kind, point.unit) == (field.kind, field.unit)
        assert isinstance(point.value, int | float)
    names = {point.name for point in points}
    assert {"host_cpu_percent", "host_load_average", "host_memory_total_bytes",
            "host_swap_total_bytes", "host_disk_total_bytes",
            "host_net_received_bytes_total"} <= names


def test_cpu_total_and_per_cpu() -> None:
    points = HostProbe().read()
    cpus = {dict(p.labels)["cpu"]: p.value for p in points if p.name == "host_cpu_percent"}
    assert set(cpus) == {"total", *(str(i) for i in range(psutil.cpu_count() or 1))}
    assert all(0.0 <= value <= 100.0 for value in cpus.values())
    without = HostProbe(per_cpu=False).read()
    assert [dict(p.labels) for p in without if p.name == "host_cpu_percent"] == [{"cpu": "total"}]


def test_exclusions_are_shell_globs() -> None:
    everything = HostProbe(exclude_interfaces=[], exclude_disks=[]).read()
    interfaces = {dict(p.labels)["interface"] for p in everything
                  if p.name == "host_net_sent_bytes_total"}
    assert "lo" in interfaces
    filtered = HostProbe(exclude_interfaces=["l*"], exclude_disks=["*"]).read()
    assert not any(dict(p.labels).get("interface", "").startswith("l") for p in filtered)
    assert not any(p.name.startswith("host_disk_read") for p in filtered)


def test_mounts_are_listed_again_only_after_refresh() -> None:
    now = [0.0]
    probe = HostProbe(mounts_refresh=60, clock=lambda: now[0])
    probe.read()
    listed = probe._mounts_read_at
    now[0] = 30.0
    probe.read()
    assert probe._mounts_read_at == listed
    now[0] = 61.0
    probe.read()
    assert probe._mounts_read_at == 61.0


def test_registry_lists_the_host_probe() -> None:
    assert REGISTRY["host"] is HostProbe


def test_file_handles_from_a_fixture_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "sys/fs").mkdir(parents=True)
    (tmp_path / "sys/fs/file-nr").write_text("1000\t0\t4000\n")
    points = {p.name: p.value for p in HostProbe(proc=tmp_path).read() if "fds" in p.name}
    assert points == {"host_fds_allocated": 1000.0, "host_fds_percent": 25.0}


def test_inodes_are_read_for_filesystems_with_an_inode_table() -> None:
    points = [p for p in HostProbe().read() if p.name == "host_disk_inodes_percent"]
    assert points and all(0 <= p.value <= 100 for p in points)
