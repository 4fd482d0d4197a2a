"""`ttamond alerts list|ack|silence|unsilence|resolve|history|test`: alerts from the CLI."""

from __future__ import annotations

import argparse
import getpass
import time
from collections.abc import Callable
from typing import Any

from ttamond.cliparts import Ask, finish_action


def add_alerts_commands(
    commands: Any,
    *,
    common: Callable[[argparse.ArgumentParser], None],
    duration: Callable[[str], int],
    ask: Ask,
) -> None:
    """Register the `alerts` command and its actions on `commands` (a subparsers object)."""
    alerts = commands.add_parser("alerts", help="alerts: list, acknowledge, silence, test")
    actions = alerts.add_subparsers(metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="pending and firing alerts, silences, fatigue")
    listing.add_argument("--state", choices=("pending", "firing", "resolved", "all"))
    finish_action(listing, common, lambda a: ask(a, "alerts_list", render_list,
                                                 {"state": a.state}))

    ack = actions.add_parser("ack", help="acknowledge a firing alert: stops its escalation")
    ack.add_argument("alert", help="fingerprint (or 4+ leading characters) or alert name")
    ack.add_argument("--by", default=_user(), help="who acknowledges (default: you)")
    ack.add_argument("--comment", default="")
    finish_action(ack, common, lambda a: ask(a, "alerts_ack", render_alert,
                                             {"alert": a.alert, "by": a.by,
                                              "comment": a.comment}))

    resolve = actions.add_parser("resolve", help="resolve an alert by hand")
    resolve.add_argument("alert")
    finish_action(resolve, common, lambda a: ask(a, "alerts_resolve", render_alert,
                                                 {"alert": a.alert}))

    silence = actions.add_parser("silence", help="mute alerts matching label matchers")
    silence.add_argument("matchers", help='e.g. \'{alertname="DiskFull", instance=~"web.*"}\''
                                          " or an alert name")
    silence.add_argument("--for", dest="duration", type=duration, default=3_600_000,
                         metavar="DURATION", help="how long, e.g. 30m, 2h (default 1h)")
    silence.add_argument("--comment", required=True, help="why (required)")
    silence.add_argument("--author", default=_user(), help="default: you")
    finish_action(silence, common, lambda a: ask(a, "alerts_silence", render_silence, {
        "matchers": a.matchers, "duration_s": a.duration / 1000, "author": a.author,
        "comment": a.comment}))

    unsilence = actions.add_parser("unsilence", help="expire a silence now")
    unsilence.add_argument("silence", help="silence id (or its leading characters)")
    finish_action(unsilence, common, lambda a: ask(a, "alerts_unsilence", render_silence,
                                                   {"silence": a.silence}))

    history = actions.add_parser("history", help="transitions and deliveries, newest first")
    history.add_argument("alert", nargs="?", default="", help="only this alert (fingerprint)")
    history.add_argument("--since", type=duration, default=86_400_000, metavar="DURATION",
                         help="how far back (default 1d)")
    history.add_argument("--limit", type=int, default=50)
    finish_action(history, common, lambda a: ask(a, "alerts_history", render_history, {
        "alert": a.alert, "since_ms": int(time.time() * 1000) - a.since, "limit": a.limit}))

    test = actions.add_parser("test", help="send a test notification to a channel")
    test.add_argument("channel")
    finish_action(test, common, lambda a: ask(a, "alerts_test", render_test,
                                              {"channel": a.channel}))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _labels(alert: dict[str, Any]) -> str:
    rest = {k: v for k, v in alert["labels"].items()
            if k not in ("alertname", "severity", "instance")}
    return ",".join(f"{k}={v}" for k, v in sorted(rest.items()))


def render_list(reply: dict[str, Any]) -> str:
    """Alerts by priority, then silences, then the fatigue figures."""
    alerts = reply["alerts"]
    lines = [f"{'FINGERPRINT':<16}  {'PRI':<3} {'STATE':<8} {'SINCE':<19}  ALERT"]
    for a in alerts:
        state = a["state"]
        notes = []
        if a["acknowledged_by"]:
            notes.append(f"acked by {a['acknowledged_by']}")
        if a["muted"]:
            notes.append(a["muted"])
        if a["flapping"]:
            notes.append("flapping")
        extra = f"  [{'; '.join(notes)}]" if notes else ""
        lines.append(f"{a['fingerprint']:<16}  {a['priority']:<3} {state:<8} "
                     f"{_when(a['fired_ms'] or a['active_since_ms'])}  {a['alertname']}"
                     f"{{{_labels(a)}}}{extra}")
        summary = a["annotations"].get("summary")
        if summary:
            lines.append(f"{'':<18}{summary}")
    if not alerts:
        lines = ["no alerts pending or firing"]
    if reply["silences"]:
        lines += ["", "silences:"]
        lines += [f"  {s['id']}  {s['state']:<7} until {_when(s['ends_ms'])}  {s['matchers']}"
                  f"  ({s['author']}: {s['comment']})" for s in reply["silences"]]
    counters = reply["fatigue"]["counters"]
    lines += ["", "notifications: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                               for k, v in counters.items())]
    return "\n".join(lines)


def render_alert(alert: dict[str, Any]) -> str:
    """One line: the alert and its state."""
    acked = f", acknowledged by {alert['acknowledged_by']}" if alert.get("acknowledged_by") else ""
    name = f"{alert['alertname']}{{{_labels(alert)}}}"
    return f"{alert['fingerprint']} {name}: {alert['state']}{acked}"


def render_silence(silence: dict[str, Any]) -> str:
    """One line: the silence and when it ends."""
    matchers = f" {silence['matchers']}" if "matchers" in silence else ""
    return f"silence {silence['id']}{matchers} until {_when(silence['ends_ms'])}"


def render_history(reply: dict[str, Any]) -> str:
    """Transitions, then deliveries."""
    lines = ["transitions:"]
    lines += [f"  {_when(t['timestamp_ms'])}  {t['fingerprint']}  {t['transition']:<12}"
              f" {t['alertname']}" for t in reply["transitions"]] or ["  none"]
    lines.append("deliveries:")
    lines += [f"  {_when(d['timestamp_ms'])}  {d['channel']:<16} {d['reason']:<11}"
              f" try {d['attempt']}: {d['outcome']}" + (f" ({d['error']})" if d["error"] else "")
              for d in reply["deliveries"]] or ["  none"]
    return "\n".join(lines)


def render_test(outcome: dict[str, Any]) -> str:
    """The test delivery's outcome."""
    error = f": {outcome['error']}" if outcome.get("error") else ""
    return (f"{outcome['channel']}: {outcome['outcome']} in {outcome['duration_ms']:.0f} ms"
            f"{error}")
