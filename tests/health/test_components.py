"""Component health: own checks and heartbeats, dependencies traced to the root cause,
configuration errors, the overall level and which alerts to inhibit."""

from __future__ import annotations

import pytest

from ttamond.health.components import (
    ComponentHealth,
    ComponentSpec,
    Level,
    evaluate,
    inhibited,
    merge_specs,
    overall,
    validate,
)

PLATFORM = [
    ComponentSpec("redis", checks=["redis_ping"]),
    ComponentSpec("neo4j", checks=["neo4j_bolt"]),
    ComponentSpec("narrative", checks=["narrative_http"], depends_on=["redis", "neo4j"],
                  heartbeat=True),
    ComponentSpec("web", checks=["web_http", "web_cert"], depends_on=["narrative"]),
]
CHECKS = ["redis_ping", "neo4j_bolt", "narrative_http", "web_http", "web_cert"]
ACTIVE = {"narrative": "active"}


def all_ok(**changed: str) -> dict[str, str]:
    return {check: changed.get(check, "ok") for check in CHECKS}


def health(level: Level, reason: str, *, root_cause: bool = False,
           failing: list[str] | None = None, down: list[str] | None = None) -> ComponentHealth:
    return ComponentHealth(level=level, reason=reason, root_cause=root_cause,
                           failing_checks=failing or [], down_dependencies=down or [])


def test_all_ok() -> None:
    healths = evaluate(PLATFORM, all_ok(), ACTIVE)
    assert list(healths) == ["redis", "neo4j", "narrative", "web"]
    assert all(h == health("ok", "ok") for h in healths.values())
    assert overall(healths) == "ok"
    assert inhibited(healths) == set()


def test_dependency_down_is_not_a_second_root_cause() -> None:
    healths = evaluate(PLATFORM, all_ok(redis_ping="crit"), ACTIVE)
    assert healths["redis"] == health("critical", "check redis_ping crit", root_cause=True,
                                      failing=["redis_ping"])
    assert healths["narrative"] == health("degraded", "dependency redis down", down=["redis"])
    assert healths["narrative"].describe() == "degraded (dependency redis down)"
    assert healths["neo4j"] == health("ok", "ok")


def test_dependencies_are_transitive() -> None:
    healths = evaluate(PLATFORM, all_ok(redis_ping="crit"), ACTIVE)
    assert healths["web"] == health("degraded", "dependency redis down", down=["redis"])


def test_own_failure_while_a_dependency_is_down_is_derived() -> None:
    healths = evaluate(PLATFORM, all_ok(redis_ping="crit", narrative_http="crit"), ACTIVE)
    assert healths["narrative"] == health(
        "critical", "check narrative_http crit; dependency redis down",
        failing=["narrative_http"], down=["redis"])
    # Both are down, nearest first; the reason names only where it starts.
    assert healths["web"] == health("degraded", "dependency redis down",
                                    down=["narrative", "redis"])
    assert overall(healths) == "critical"
    assert inhibited(healths) == {"narrative", "web"}


def test_several_root_causes_are_named() -> None:
    healths = evaluate(PLATFORM, all_ok(redis_ping="crit", neo4j_bolt="crit"), ACTIVE)
    assert healths["narrative"].reason == "dependencies redis, neo4j down"
    assert healths["web"].down_dependencies == ["redis", "neo4j"]


def test_a_degraded_dependency_is_not_down() -> None:
    healths = evaluate(PLATFORM, all_ok(redis_ping="warn"), ACTIVE)
    assert healths["redis"] == health("degraded", "check redis_ping warn", root_cause=True,
                                      failing=["redis_ping"])
    assert healths["narrative"] == health("ok", "ok")
    assert overall(healths) == "degraded"
    assert inhibited(healths) == set()


def test_crit_and_warn_checks() -> None:
    healths = evaluate(PLATFORM, all_ok(web_http="warn", web_cert="crit"), ACTIVE)
    assert healths["web"] == health("critical", "check web_cert crit; check web_http warn",
                                    root_cause=True, failing=["web_cert", "web_http"])
    healths = evaluate(PLATFORM, all_ok(web_http="warn", web_cert="warn"), ACTIVE)
    assert healths["web"] == health("degraded", "checks web_http, web_cert warn",
                                    root_cause=True, failing=["web_http", "web_cert"])


@pytest.mark.parametrize("heartbeat", ["silent", "stopped"])
def test_heartbeat_silent_or_stopped_is_critical(heartbeat: str) -> None:
    healths = evaluate(PLATFORM, all_ok(), {"narrative": heartbeat})
    assert healths["narrative"] == health(
        "critical", f"no heartbeat for narrative ({heartbeat})", root_cause=True)
    assert healths["web"] == health("degraded", "dependency narrative down", down=["narrative"])
    assert overall(healths) == "critical"


def test_heartbeat_counts_only_where_one_is_expected() -> None:
    healths = evaluate(PLATFORM, all_ok(), {"narrative": "active", "redis": "stopped"})
    assert healths["redis"] == health("ok", "ok")


def test_unknown_when_nothing_is_known() -> None:
    specs = [ComponentSpec("redis", checks=["redis_ping", "redis_memory"]),
             ComponentSpec("worker", heartbeat=True),
             ComponentSpec("platform", depends_on=["redis", "worker"])]
    healths = evaluate(specs, {"redis_ping": "unknown"}, {})
    assert healths["redis"] == health("unknown", "no result for checks redis_ping, redis_memory")
    assert healths["worker"] == health("unknown", "no heartbeat yet from worker")
    assert healths["platform"] == health("unknown", "no checks and no heartbeat")
    assert overall(healths) == "unknown"
    assert evaluate(specs, {}, {"worker": "absent"})["worker"].level == "unknown"


def test_some_checks_unknown_is_ok() -> None:
    specs = [ComponentSpec("redis", checks=["redis_ping", "redis_memory"])]
    assert evaluate(specs, {"redis_ping": "ok"}, {})["redis"] == health("ok", "ok")


def test_a_component_made_of_dependencies_only() -> None:
    specs = [ComponentSpec("redis", checks=["redis_ping"]),
             ComponentSpec("platform", depends_on=["redis"])]
    healths = evaluate(specs, {"redis_ping": "crit"}, {})
    assert healths["platform"] == health("degraded", "dependency redis down", down=["redis"])


def test_evaluate_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match=r"component 'redis': check 'redis_ping' has unknown "
                                         r"state 'down' \(expected unknown, ok, warn or crit\)"):
        evaluate(PLATFORM, all_ok(redis_ping="down"), ACTIVE)
    with pytest.raises(ValueError, match=r"component 'narrative': unknown heartbeat state "
                                         r"'gone' \(expected active, silent, stopped or absent\)"):
        evaluate(PLATFORM, all_ok(), {"narrative": "gone"})
    with pytest.raises(ValueError, match=r"component 'redis': defined more than once"):
        evaluate([*PLATFORM, ComponentSpec("redis")], all_ok(), ACTIVE)


def test_evaluate_does_not_loop_on_a_cycle() -> None:
    specs = [ComponentSpec("a", checks=["a_check"], depends_on=["b"]),
             ComponentSpec("b", checks=["b_check"], depends_on=["a", "missing"])]
    healths = evaluate(specs, {"a_check": "ok", "b_check": "crit"}, {})
    assert healths["a"] == health("degraded", "dependency b down", down=["b"])
    assert healths["b"] == health("critical", "check b_check crit", root_cause=True,
                                  failing=["b_check"])


def test_validate_accepts_a_sound_platform() -> None:
    assert validate(PLATFORM, CHECKS) == []


def test_validate_reports_unknown_names() -> None:
    specs = [ComponentSpec("redis", checks=["redis_pnig"]),
             ComponentSpec("narrative", checks=["narrative_http"], depends_on=["rediss", "cache"])]
    assert validate(specs, CHECKS) == [
        "component 'redis': unknown check 'redis_pnig' (did you mean 'redis_ping'?)",
        "component 'narrative': depends on unknown component 'rediss' (did you mean 'redis'?)",
        "component 'narrative': depends on unknown component 'cache'",
    ]


def test_validate_reports_cycles_once() -> None:
    specs = [ComponentSpec("a", depends_on=["b"]),
             ComponentSpec("b", depends_on=["c"]),
             ComponentSpec("c", depends_on=["a"]),
             ComponentSpec("d", depends_on=["d", "a"])]
    assert validate(specs, CHECKS) == [
        "component 'd': depends on itself",
        "component 'a': dependency cycle a -> b -> c -> a",
    ]


def test_validate_reports_each_cycle_through_a_new_component() -> None:
    specs = [ComponentSpec("a", depends_on=["b", "c"]),
             ComponentSpec("b", depends_on=["a"]),
             ComponentSpec("c", depends_on=["a"])]
    assert validate(specs, CHECKS) == [
        "component 'a': dependency cycle a -> b -> a",
        "component 'c': dependency cycle c -> a -> c",
    ]


def test_validate_reports_duplicate_and_empty_names() -> None:
    specs = [ComponentSpec("redis"), ComponentSpec("redis"), ComponentSpec("")]
    assert validate(specs, CHECKS) == [
        "component 'redis': defined more than once",
        "component '': empty name",
    ]


def test_merge_specs_adds_checks_that_name_their_component() -> None:
    declared = [ComponentSpec("narrative", checks=["narrative_http"], depends_on=["redis"])]
    check_components = {"narrative_http": "narrative", "narrative_queue": "narrative",
                        "redis_ping": "redis", "redis_memory": "redis", "disk_root": "disk_root"}
    assert merge_specs(declared, check_components) == [
        ComponentSpec("narrative", checks=["narrative_http", "narrative_queue"],
                      depends_on=["redis"]),
        ComponentSpec("redis", checks=["redis_ping", "redis_memory"]),
        ComponentSpec("disk_root", checks=["disk_root"]),
    ]
    assert validate(merge_specs(declared, check_components), list(check_components)) == []


def test_overall() -> None:
    ok = health("ok", "ok")
    unknown = health("unknown", "no checks and no heartbeat")
    derived_critical = health("critical", "check x crit; dependency y down", down=["y"])
    root_critical = health("critical", "check y crit", root_cause=True)
    degraded = health("degraded", "check z warn", root_cause=True)
    assert overall({}) == "unknown"
    assert overall({"a": unknown, "b": unknown}) == "unknown"
    assert overall({"a": unknown, "b": ok}) == "ok"
    assert overall({"a": ok, "b": degraded}) == "degraded"
    assert overall({"a": ok, "b": derived_critical}) == "degraded"
    assert overall({"a": degraded, "b": root_critical, "c": derived_critical}) == "critical"


def test_inhibited_names_derived_problems_only() -> None:
    healths = {
        "redis": health("critical", "check redis_ping crit", root_cause=True),
        "narrative": health("degraded", "dependency redis down", down=["redis"]),
        "web": health("critical", "check web_http crit; dependency redis down", down=["redis"]),
        "disk": health("degraded", "check disk_root warn", root_cause=True),
        "neo4j": health("ok", "ok"),
    }
    assert inhibited(healths) == {"narrative", "web"}
