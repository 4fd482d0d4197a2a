"""Probes read the world and return readings; no channels, no storage, no config parsing."""

from ttamond.probes.base import FieldInfo, Probe, ProbeError, ProbeUnavailable
from ttamond.probes.cgroup import CgroupProbe
from ttamond.probes.docker import DockerProbe
from ttamond.probes.gpu import GpuProbe
from ttamond.probes.host import HostProbe
from ttamond.probes.process import ProcessProbe

REGISTRY: dict[str, type[Probe]] = {
    "host": HostProbe,
    "cgroup": CgroupProbe,
    "process": ProcessProbe,
    "gpu": GpuProbe,
    "docker": DockerProbe,
}
"""Every collector probe by its config name. Listed here, never discovered."""

__all__ = [
    "REGISTRY",
    "CgroupProbe",
    "DockerProbe",
    "FieldInfo",
    "GpuProbe",
    "HostProbe",
    "Probe",
    "ProbeError",
    "ProbeUnavailable",
    "ProcessProbe",
]
