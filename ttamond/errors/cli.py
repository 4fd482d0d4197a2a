"""`ttamond errors list|show|resolve|ignore|reopen|patterns`: error groups from the CLI."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ttamond.cliparts import Ask, finish_action


def add_errors_commands(
    commands: Any,
    *,
    common: Callable[[argparse.ArgumentParser], None],
    duration: Callable[[str], int],
    ask: Ask,
) -> None:
    """Register the `errors` command and its actions on `commands` (a subparsers object)."""
    errors = commands.add_parser("errors", help="error groups: list, show, resolve, ignore")
    actions = errors.add_subparsers(metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="groups, most recently seen first")
    listing.add_argument("--state", choices=("unresolved", "resolved", "ignored", "regressed"))
    listing.add_argument("--component")
    listing.add_argument("--since", type=duration, metavar="DURATION",
                         help="seen within, e.g. 1h or 7d")
    listing.add_argument("--limit", type=int, default=50)
    finish_action(listing, common, lambda a: ask(a, "errors_list", render_list, {
        "state": a.state, "component": a.component, "limit": a.limit,
        "since_ms": _since(a.since)}))

    show = actions.add_parser("show", help="one group with its latest events and stacks")
    show.add_argument("group", help="group id or fingerprint prefix")
    show.add_argument("--events", type=int, default=5)
    finish_action(show, common, lambda a: ask(a, "errors_show", render_show,
                                        {"group": a.group, "events": a.events}))

    resolve = actions.add_parser("resolve", help="mark a group resolved")
    resolve.add_argument("group")
    resolve.add_argument("--in", dest="version", default="",
                         help="the version with the fix: older versions do not regress it")
    finish_action(resolve, common, lambda a: ask(a, "resolve_error", render_change,
                                           {"group": a.group, "resolved_in": a.version}))
    for name, command, text in (("ignore", "ignore_error", "stop showing a group"),
                                ("reopen", "reopen_error", "mark a group unresolved again")):
        action = actions.add_parser(name, help=text)
        action.add_argument("group")
        finish_action(action, common, _change(ask, command))

    patterns = actions.add_parser("patterns", help="new groups, spikes, top groups, rates")
    patterns.add_argument("--since", type=duration, default=86_400_000, metavar="DURATION",
                          help="how far back (default 1d)")
    finish_action(patterns, common, lambda a: ask(a, "analyze_error_patterns", render_patterns,
                                            {"since_ms": _since(a.since)}))


def _change(ask: Ask, command: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        return ask(args, command, render_change, {"group": args.group})

    return handler


def _since(duration_ms: int | None) -> int | None:
    return None if duration_ms is None else int(time.time() * 1000) - duration_ms


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def render_list(groups: list[dict[str, Any]]) -> str:
    """A table of groups."""
    if not groups:
        return "no error groups"
    lines = [f"{'ID':>5}  {'STATE':<10} {'COUNT':>7}  {'LAST SEEN':<19}  TITLE"]
    for g in groups:
        lines.append(f"{g['id']:>5}  {g['state']:<10} {g['count']:>7}  "
                     f"{_when(g['last_seen_ms'])}  {g['title'][:90]}")
    return "\n".join(lines)


def render_show(detail: dict[str, Any]) -> str:
    """A group's facts, then each stored event with its stack, innermost frame last."""
    g = detail["group"]
    resolved = f" in {g['resolved_in']}" if g["resolved_in"] else ""
    lines = [
        f"error group {g['id']} ({g['fingerprint'][:12]}): {g['title']}",
        f"  state      {g['state']}{resolved}",
        f"  severity   {g['severity']}",
        f"  count      {g['count']} events, {g['sessions']} sessions",
        f"  seen       {_when(g['first_seen_ms'])} .. {_when(g['last_seen_ms'])}",
        f"  components {', '.join(g['components'])} ({', '.join(g['environments'])})",
    ]
    for event in detail["events"]:
        release = f" {event['release']}" if event["release"] else ""
        lines += ["", f"event {event['id']} at {_when(event['timestamp_ms'])} from"
                  f" {event['component']}{release}: {event['message']}"]
        lines += [f"    {f['module']}.{f['function']} ({f['filename']}:{f['lineno']})"
                  + ("" if f["in_app"] else "  [library]") for f in event["stack"]]
        if event["context"]:
            lines.append(f"    context: {event['context']}")
    return "\n".join(lines)


def render_change(change: dict[str, Any]) -> str:
    """One line saying what changed."""
    fix = f" in {change['resolved_in']}" if change.get("resolved_in") else ""
    return f"group {change['group']}: {change['previous_state']} -> {change['state']}{fix}"


def render_patterns(patterns: dict[str, Any]) -> str:
    """New groups, spikes, top groups and per-component rates."""
    lines = [f"{patterns['events']} error events since {_when(patterns['since_ms'])}"]
    lines.append(f"new groups: {len(patterns['new_groups'])}")
    lines += [f"  {g['id']:>5}  {g['count']:>6}  {g['title'][:90]}"
              for g in patterns["new_groups"]]
    lines.append(f"spikes: {len(patterns['spikes'])}")
    lines += [f"  {s['group_id']:>5}  {s['count']} in the hour of {_when(s['hour_ms'])}"
              f" (usually {s['baseline_per_hour']}/h)  {s['title'][:70]}"
              for s in patterns["spikes"]]
    lines.append("top groups:")
    lines += [f"  {g['id']:>5}  {g['count']:>6}  {g['title'][:90]}" for g in patterns["top_groups"]]
    lines.append("per component:")
    lines += [f"  {c['component']:<24} {c['events']:>6} events  {c['per_hour']}/h"
              f"  {c['groups']} groups" for c in patterns["per_component"]]
    return "\n".join(lines)
