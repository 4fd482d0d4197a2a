"""Probes read the world and return readings; no channels, no storage, no config parsing."""

from ttamond.probes.base import FieldInfo, Probe, ProbeError, ProbeUnavailable
from ttamond.probes.host import HostProbe

REGISTRY: dict[str, type[Probe]] = {"host": HostProbe}
"""Every collector probe by its config name. Listed here, never discovered."""

__all__ = ["REGISTRY", "FieldInfo", "HostProbe", "Probe", "ProbeError", "ProbeUnavailable"]
