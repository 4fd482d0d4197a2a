"""Control commands of the alert escalator: list, acknowledge, resolve, silence, test a
channel, fatigue figures, and the platform's alert calls."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ttamond.alerts.escalator import Escalator
from ttamond.alerts.history import read_history
from ttamond.alerts.lifecycle import AlertRecord
from ttamond.alerts.matchers import describe
from ttamond.alerts.operations import (
    OperationError,
    acknowledge,
    escalate,
    raise_alert,
    resolve,
    silence,
    unsilence,
)
from ttamond.control import CommandError, Handler
from ttamond.messages import Message, now_ms
from ttamond.receipts import NotStored

if TYPE_CHECKING:
    from ttamond.actors.alerts import AlertsActor
    from ttamond.actors.notify import NotifyActor

STATES = ("pending", "firing", "resolved")


def alert_view(escalator: Escalator, record: AlertRecord) -> dict[str, Any]:
    """One alert as `alerts list` shows it."""
    muted = escalator.muted.get(record.fingerprint, "") if record.state == "firing" else ""
    return {
        "fingerprint": record.fingerprint,
        "alertname": record.labels.get("alertname", ""),
        "state": record.state,
        "muted": muted,
        "severity": record.severity,
        "priority": record.priority,
        "labels": record.labels,
        "annotations": record.annotations,
        "value": record.value,
        "active_since_ms": record.active_since_ms,
        "fired_ms": record.fired_ms,
        "resolved_ms": record.resolved_ms,
        "acknowledged_by": record.acked_by,
        "acknowledged_ms": record.acked_ms,
        "ack_comment": record.ack_comment,
        "escalation": record.escalation,
        "level": record.level,
        "flapping": record.flapping,
    }


def fatigue(escalator: Escalator, notify: NotifyActor | None) -> dict[str, Any]:
    """Notifications sent and suppressed, by reason; flapping alerts; channel health."""
    channels: dict[str, Any] = msgspec.to_builtins(notify.stats()) if notify is not None else {}
    rate_limited = sum(int(c.get("rate_limited", 0)) for c in channels.values()
                       if isinstance(c, dict))
    return {
        "counters": {**escalator.counters, "suppressed_rate_limit": rate_limited},
        "flapping": sorted(r.fingerprint for r in escalator.records.values() if r.flapping),
        "firing": sum(r.state == "firing" for r in escalator.records.values()),
        "muted": dict(escalator.muted),
        "channels": channels,
        "untracked_series": escalator.windows.dropped_series,
    }


def alert_handlers(
    escalator: Callable[[], Escalator | None],
    actor: Callable[[], AlertsActor | None],
    notify: Callable[[], NotifyActor | None],
    database: Path | None = None,
) -> dict[str, Handler]:
    """Handlers on the live escalator; `not_available` while [alerts] is off."""

    def running() -> tuple[Escalator, AlertsActor]:
        found, loop = escalator(), actor()
        if found is None or loop is None:
            raise CommandError("not_available", "the alert escalator is off ([alerts] enabled"
                               " = false) or still starting")
        return found, loop

    async def commit(loop: AlertsActor, saves: list[Message]) -> None:
        try:
            await loop.persist(saves)
        except NotStored as exc:
            raise CommandError("not_stored", str(exc)) from None
        loop.wake()

    def operation(body: Callable[[Escalator, dict[str, Any]], Awaitable[Any]]) -> Handler:
        async def handler(args: dict[str, Any]) -> Any:
            found, _ = running()
            try:
                return await body(found, args)
            except OperationError as exc:
                raise CommandError(exc.code, str(exc)) from None

        return handler

    async def alerts_list(args: dict[str, Any]) -> Any:
        found, _ = running()
        state = _text(args, "state", "")
        if state and state not in (*STATES, "all"):
            raise CommandError("bad_request", f"state must be one of {', '.join(STATES)} or all")
        wanted = STATES if state == "all" else (state,) if state else ("pending", "firing")
        records = sorted((r for r in found.records.values() if r.state in wanted),
                         key=lambda r: (r.priority, -r.updated_ms))
        now = now_ms()
        return {
            "alerts": [alert_view(found, r) for r in records],
            "silences": [{"id": s.id, "matchers": describe(s.matchers), "state": s.state(now),
                          "starts_ms": s.starts_ms, "ends_ms": s.ends_ms, "author": s.author,
                          "comment": s.comment}
                         for s in sorted(found.silences.values(), key=lambda s: s.ends_ms)
                         if s.ends_ms > now or state == "all"],
            "fatigue": fatigue(found, notify()),
        }

    async def _ack(found: Escalator, args: dict[str, Any]) -> Any:
        record, saves = acknowledge(found, _text(args, "alert"), by=_text(args, "by"),
                                    comment=_text(args, "comment", ""), now_ms=now_ms())
        await commit(running()[1], saves)
        return alert_view(found, record)

    async def _resolve(found: Escalator, args: dict[str, Any]) -> Any:
        record, saves = resolve(found, _text(args, "alert"), now_ms=now_ms())
        await commit(running()[1], saves)
        return alert_view(found, record)

    async def _escalate(found: Escalator, args: dict[str, Any]) -> Any:
        record, saves = escalate(found, _text(args, "alert"), now_ms=now_ms())
        await commit(running()[1], saves)
        return alert_view(found, record)

    async def _silence(found: Escalator, args: dict[str, Any]) -> Any:
        duration = args.get("duration_s")
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            raise CommandError("bad_request", "'duration_s' (seconds) is required")
        created, saves = silence(found, _text(args, "matchers"), duration_s=float(duration),
                                 author=_text(args, "author", ""),
                                 comment=_text(args, "comment", ""), now_ms=now_ms())
        await commit(running()[1], saves)
        return {"id": created.id, "matchers": describe(created.matchers),
                "starts_ms": created.starts_ms, "ends_ms": created.ends_ms}

    async def _unsilence(found: Escalator, args: dict[str, Any]) -> Any:
        expired, saves = unsilence(found, _text(args, "silence"), now_ms=now_ms())
        await commit(running()[1], saves)
        return {"id": expired.id, "ends_ms": expired.ends_ms}

    async def _trigger(found: Escalator, args: dict[str, Any]) -> Any:
        labels = args.get("labels") or {}
        if not isinstance(labels, dict):
            raise CommandError("bad_request", "'labels' must be an object")
        fp = raise_alert(found, name=_text(args, "name"),
                         severity=_text(args, "severity", "warning"),
                         summary=_text(args, "summary", ""),
                         component=_text(args, "component", ""), labels=labels)
        await running()[1].evaluate_once()
        record = found.records.get(fp)
        return alert_view(found, record) if record is not None else {"fingerprint": fp}

    async def alerts_test(args: dict[str, Any]) -> Any:
        sender = notify()
        if sender is None:
            raise CommandError("not_available", "the notifier is not running")
        channel = _text(args, "channel")
        try:
            return await sender.test(channel)
        except KeyError as exc:
            raise CommandError("not_found", str(exc.args[0]) if exc.args else channel) from None

    async def alerts_stats(args: dict[str, Any]) -> Any:
        return fatigue(running()[0], notify())

    async def alerts_history(args: dict[str, Any]) -> Any:
        if database is None:
            raise CommandError("not_available", "no database to read the history from")
        since = args.get("since_ms", 0)
        limit = args.get("limit", 50)
        if not isinstance(since, int) or not isinstance(limit, int) or limit < 1:
            raise CommandError("bad_request", "'since_ms' and 'limit' must be integers")
        alert = _text(args, "alert", "")
        try:
            return await trio.to_thread.run_sync(
                lambda: read_history(database, since_ms=since, limit=limit, fingerprint=alert))
        except sqlite3.Error as exc:
            raise CommandError("not_available", f"cannot read {database}: {exc}") from None

    async def configure_alert_rules(args: dict[str, Any]) -> Any:
        raise CommandError("not_supported", "alert rules live in ttamond.toml ([[alerts.rules]]);"
                           " edit it, run `ttamond config check`, then reload (SIGHUP)")

    return {
        "alerts_list": alerts_list,
        "alerts_ack": operation(_ack),
        "alerts_resolve": operation(_resolve),
        "alerts_silence": operation(_silence),
        "alerts_unsilence": operation(_unsilence),
        "alerts_test": alerts_test,
        "alerts_stats": alerts_stats,
        "alerts_history": alerts_history,
        # The platform's names for the same things.
        "trigger_alert": operation(_trigger),
        "create_alert": operation(_trigger),
        "escalate_alert": operation(_escalate),
        "resolve_alert": operation(_resolve),
        "get_alert_metrics": alerts_stats,
        "configure_alert_rules": configure_alert_rules,
    }


def _text(args: dict[str, Any], key: str, default: str | None = None) -> str:
    value = args.get(key)
    if value is None:
        value = default
    if value is None:
        raise CommandError("bad_request", f"'{key}' is required")
    if not isinstance(value, str):
        raise CommandError("bad_request", f"'{key}' must be a string")
    return value
