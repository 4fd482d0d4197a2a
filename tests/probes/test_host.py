"""The host probe against this machine's real /proc."""

from __future__ import annotations

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
