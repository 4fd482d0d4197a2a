"""`ttamond privacy erase|purge|audit` and `ttamond engagement report` from the CLI."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ttamond.cliparts import Ask, finish_action

EXIT_TAMPERED = 3


def add_privacy_commands(commands: Any, *, common: Callable[[argparse.ArgumentParser], None],
                         duration: Callable[[str], int], ask: Ask) -> None:
    """Register `privacy` and `engagement` on `commands` (a subparsers object)."""
    privacy = commands.add_parser("privacy", help="erasure, emergency purge, the audit trail")
    actions = privacy.add_subparsers(metavar="ACTION", required=True)

    erase = actions.add_parser("erase", help="remove everything about one person")
    erase.add_argument("--subject", required=True,
                       help="the person's identifier as the components report it")
    erase.add_argument("--by", default="", help="who asked (kept in the audit trail)")
    finish_action(erase, common, lambda a: ask(a, "privacy_erase", render_erasure,
                                               {"subject": a.subject, "by": a.by}))

    purge = actions.add_parser("purge", help="emergency purge of personal data")
    scope = purge.add_mutually_exclusive_group(required=True)
    scope.add_argument("--engagement", action="store_const", const="engagement", dest="scope",
                       help="every engagement row")
    scope.add_argument("--all", action="store_const", const="all", dest="scope",
                       help="engagement rows and every session link of error events")
    purge.add_argument("--yes", action="store_true", help="confirm: the data is gone for good")
    purge.add_argument("--by", default="")
    finish_action(purge, common, lambda a: ask(a, "privacy_purge", render_erasure, {
        "scope": a.scope, "confirm": a.yes, "by": a.by}))

    audit = actions.add_parser("audit", help="the audit trail, its hash chain verified")
    audit.add_argument("--verify", action="store_true",
                       help="exit 3 when the chain is broken (tampering)")
    audit.add_argument("--limit", type=int, default=20)
    finish_action(audit, common, lambda a: _audit(a, ask))

    engagement = commands.add_parser("engagement", help="engagement analytics (aggregates)")
    reports = engagement.add_subparsers(metavar="ACTION", required=True)
    report = reports.add_parser("report", help="k-anonymous engagement figures")
    report.add_argument("--since", type=duration, default=30 * 86_400_000, metavar="DURATION",
                        help="how far back, e.g. 7d (default 30d)")
    finish_action(report, common, lambda a: ask(a, "engagement_report", render_report, {
        "since_ms": int(time.time() * 1000) - a.since}))


def _audit(args: argparse.Namespace, ask: Ask) -> int:
    broken: list[bool] = []

    def render(reply: dict[str, Any]) -> str:
        broken.append(not reply["verify"]["ok"])
        return render_audit(reply)

    status = ask(args, "privacy_audit", render, {"limit": args.limit})
    return EXIT_TAMPERED if status == 0 and args.verify and any(broken) else status


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def render_erasure(reply: dict[str, Any]) -> str:
    """What was erased, as the audit entry recorded it."""
    entry = reply.get("audit") or {}
    rows = entry.get("detail", {}).get("rows", {})
    counted = ", ".join(f"{table} {count}" for table, count in rows.items()) or "nothing"
    return (f"{reply['scope']}: {counted} (audit entry {entry.get('id', '?')},"
            f" {reply['pseudonyms']} pseudonyms looked for)")


def render_audit(reply: dict[str, Any]) -> str:
    """The verification, then the newest entries."""
    check = reply["verify"]
    head = (f"audit chain intact: {check['entries']} entries" if check["ok"] else
            f"AUDIT CHAIN BROKEN at entry {check['first_bad_id']}: {check['problem']}")
    lines = [head]
    lines += [f"  {e['id']:>5}  {_when(e['timestamp_ms'])}  {e['action']:<16} {e['actor']:<16}"
              f" {e['detail']}" for e in reply["entries"]]
    return "\n".join(lines)


def render_report(reply: dict[str, Any]) -> str:
    """The headline figures; --json has everything."""
    def fmt(value: float | None, unit: str = "") -> str:
        return "suppressed (fewer than k people)" if value is None else f"{value:.3g}{unit}"

    lines = [f"engagement since {_when(reply['since_ms'])} (k = {reply['k']}):"
             f" {reply['people']} people, {reply['sessions']} sessions",
             f"  mean session        {fmt(reply['mean_session_seconds'], ' s')}",
             f"  interactions/minute {fmt(reply['interactions_per_minute'])}",
             f"  completion rate     {fmt(reply['completion_rate'])}"]
    for outcome in reply["outcomes"]:
        lines.append(f"  {outcome}")
    suppressed = sum(reply["suppressed"].values())
    lines.append(f"  groups suppressed for k-anonymity: {suppressed}")
    return "\n".join(lines)
