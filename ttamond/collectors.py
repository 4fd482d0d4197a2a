"""Which collectors the config turns on, and how to build each one's probe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ttamond.config import Config
from ttamond.probes.base import Probe


class CollectorPlan(msgspec.Struct, frozen=True):
    """One collector actor to run: its name, schedule and probe factory."""

    name: str
    interval: float
    unavailable_retry: float
    make_probe: Callable[[], Probe]
    section: Any
    """The config table it was built from; a reload restarts it when this changes."""


def collector_plans(config: Config) -> list[CollectorPlan]:
    """The enabled collectors, in start order. Probe modules are imported only when
    their collector is on (NVML and the Docker SDK cost memory even unused)."""
    collectors = config.collectors
    plans: list[CollectorPlan] = []
    host = collectors.host
    if host.enabled:
        def make_host() -> Probe:
            from ttamond.probes.host import HostProbe

            return HostProbe(per_cpu=host.per_cpu, mounts_refresh=host.mounts_refresh,
                             exclude_fstypes=host.exclude_fstypes,
                             exclude_interfaces=host.exclude_interfaces,
                             exclude_disks=host.exclude_disks)

        plans.append(CollectorPlan("collector:host", host.interval, 300.0, make_host, host))
    cgroup = collectors.cgroup
    if cgroup.enabled:
        def make_cgroup() -> Probe:
            from ttamond.probes.cgroup import CgroupProbe

            return CgroupProbe()

        plans.append(CollectorPlan("collector:cgroup", cgroup.interval, 300.0, make_cgroup,
                                   cgroup))
    process = collectors.process
    if process.enabled:
        def make_process() -> Probe:
            from ttamond.probes.process import ProcessProbe

            return ProcessProbe(process.top_n, process.watch)

        plans.append(CollectorPlan("collector:process", process.interval, 300.0, make_process,
                                   process))
    gpu = collectors.gpu
    if gpu.enabled:
        def make_gpu() -> Probe:
            from ttamond.probes.gpu import GpuProbe

            return GpuProbe(per_process=gpu.per_process)

        plans.append(CollectorPlan("collector:gpu", gpu.interval, gpu.unavailable_retry,
                                   make_gpu, gpu))
    docker = collectors.docker
    if docker.enabled:
        def make_docker() -> Probe:
            from ttamond.probes.docker import DockerProbe

            return DockerProbe(docker.url, timeout=docker.timeout)

        plans.append(CollectorPlan("collector:docker", docker.interval, docker.unavailable_retry,
                                   make_docker, docker))
    return plans
