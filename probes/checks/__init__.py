"""Health checks: each looks at one service once and returns a CheckResult, never raising."""

from ttamond.probes.checks.command import check_command
from ttamond.probes.checks.container import container_status
from ttamond.probes.checks.disk import check_disk
from ttamond.probes.checks.freshness import check_freshness
from ttamond.probes.checks.http import check_http
from ttamond.probes.checks.neo4j import check_neo4j
from ttamond.probes.checks.process import ProcessCheck, check_process
from ttamond.probes.checks.redis import check_redis
from ttamond.probes.checks.result import CheckResult, Status, Thresholds
from ttamond.probes.checks.tcp import check_tcp

__all__ = [
    "CheckResult",
    "ProcessCheck",
    "Status",
    "Thresholds",
    "check_command",
    "check_disk",
    "check_freshness",
    "check_http",
    "check_neo4j",
    "check_process",
    "check_redis",
    "check_tcp",
    "container_status",
]
