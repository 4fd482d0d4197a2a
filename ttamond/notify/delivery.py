"""Delivery to one channel: a rate limit, retries with back-off, and the channel's health."""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Awaitable, Callable

import msgspec
import trio

from ttamond.messages import (
    ChannelHealthChanged,
    DeliveryAttempted,
    DeliveryOutcome,
    Message,
    Notification,
    NotificationReason,
    now_ms,
)
from ttamond.notify import senders
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.settings import AnyChannel

log = logging.getLogger(__name__)

Publish = Callable[[Message], Awaitable[None]]

UNLIMITED: frozenset[NotificationReason] = frozenset({"test", "sync"})
"""Neither counted nor refused by the rate limit: a test is asked for by a person, and
an Alertmanager sync is state kept alive, not a message to people."""

NEVER_REFUSED: frozenset[NotificationReason] = frozenset({"resolved", "channel_failing"})
"""Counted by the rate limit but always sent, as is any notification whose alerts have
all resolved: holding back "it is over" would leave people chasing a problem that has
gone, and a failing channel must be heard of."""

TIMEOUT_GRACE = 5.0
"""Seconds past a channel's timeout before a try is abandoned. Each sender keeps the
timeout itself, with a better message; this catches one that does not."""


class RateLimiter:
    """At most `limit` notifications in any `period` seconds (a sliding window over
    the times of those sent); a limit of 0 allows everything."""

    def __init__(self, limit: int, period: float) -> None:
        if limit < 0 or period <= 0:
            raise ValueError(f"rate limit needs limit >= 0 and period > 0, got {limit}, {period}")
        self.limit = limit
        self.period = period
        self._times: collections.deque[float] = collections.deque()

    def used(self, now: float) -> int:
        """Notifications counted in the window ending at `now`."""
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        return len(self._times)

    def allows(self, now: float) -> bool:
        """Whether one more notification at `now` stays within the limit."""
        return self.limit == 0 or self.used(now) < self.limit

    def record(self, now: float) -> None:
        """Count one notification at `now`."""
        if self.limit:
            self._times.append(now)


class ChannelStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of one channel's delivery counters, for status and the web page."""

    name: str
    kind: str
    sent: int
    """Notifications delivered (to at least one target)."""
    failed_attempts: int
    """Tries that failed, the last try of a notification given up included."""
    gave_up: int
    """Notifications not delivered after their last try."""
    rate_limited: int
    dropped: int
    """Notifications not even tried: the channel's queue was full."""
    queued: int
    failing: bool
    consecutive_failures: int
    last_error: str
    last_error_ms: int
    last_success_ms: int


def not_tried(notification: Notification, outcome: DeliveryOutcome,
              error: str) -> DeliveryAttempted:
    """The delivery-log row of a notification never tried (rate limited, dropped, or
    for no such channel); its attempt number is 0."""
    return DeliveryAttempted(
        notification_id=notification.id, channel=notification.channel,
        reason=notification.reason, group_key=notification.group_key, attempt=0,
        outcome=outcome, timestamp_ms=now_ms(), error=error,
        fingerprints=tuple(alert.fingerprint for alert in notification.alerts))


class ChannelDelivery:
    """Delivers notifications to one channel, one at a time, and keeps its counters.

    Every try is published as a DeliveryAttempted; the channel's health changes
    (failing after `fail_after` notifications given up in a row, working again at the
    next one delivered) as ChannelHealthChanged. A delivery that reached some targets
    and not others (one Alertmanager of two, some mail recipients) counts as sent,
    with the targets that never took it in its error.
    """

    def __init__(self, channel: AnyChannel, publish: Publish, *,
                 send: senders.Sender = senders.send, rng: random.Random | None = None) -> None:
        self.channel = channel
        self.publish = publish
        self.send = send
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(channel.rate_limit, channel.rate_period)
        self.sent = 0
        self.failed_attempts = 0
        self.gave_up = 0
        self.rate_limited = 0
        self.dropped = 0
        self.failing = False
        self.consecutive_failures = 0
        self.last_error = ""
        self.last_error_ms = 0
        self.last_success_ms = 0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt`: doubling from
        backoff_initial up to backoff_max, the upper half of it random ("equal jitter")
        so channels failing together do not retry in step; never under backoff_initial."""
        initial, ceiling = self.channel.backoff_initial, self.channel.backoff_max
        top = min(ceiling, initial * 2.0 ** (attempt - 1))
        return max(initial, top / 2 + self.rng.uniform(0, top / 2))

    async def deliver(self, notification: Notification) -> DeliveryAttempted:
        """Deliver `notification` within the rate limit, retrying transient failures up
        to max_attempts tries. Returns the last row published."""
        if notification.reason not in UNLIMITED:
            now = trio.current_time()
            refusable = (notification.reason not in NEVER_REFUSED
                         and notification.status == "firing")
            if refusable and not self.limiter.allows(now):
                return await self._refuse(notification)
            self.limiter.record(now)
        target = self.channel
        reached = False
        attempts = self.channel.max_attempts
        for attempt in range(1, attempts + 1):
            failure, duration_ms = await self._try(target, notification)
            if failure is None:
                return await self._delivered(notification, attempt, duration_ms, "")
            self._failed(failure.message)
            reached = reached or failure.partial
            if failure.permanent or attempt == attempts:
                if reached:
                    return await self._delivered(
                        notification, attempt, duration_ms,
                        f"{failure.message} (delivered to the other targets)")
                return await self._gave_up(notification, attempt, duration_ms, failure)
            delay = self.backoff(attempt)
            log.warning("channel %s: try %d of %d failed, next in %.1f s: %s",
                        self.channel.name, attempt, attempts, delay, failure.message)
            await self.publish(self._row(notification, attempt, "failed", duration_ms,
                                         failure.message))
            await trio.sleep(delay)
            target = failure.retry or target
        raise RuntimeError("the retry loop ended without an outcome")

    async def deliver_once(self, notification: Notification) -> DeliveryAttempted:
        """One try, outside the rate limit and the channel's health (for a test a person
        asked for). Returns the row published: `sent` or `gave_up`."""
        failure, duration_ms = await self._try(self.channel, notification)
        if failure is None:
            self.last_success_ms = now_ms()
            row = self._row(notification, 1, "sent", duration_ms, "")
        else:
            self.last_error, self.last_error_ms = failure.message, now_ms()
            outcome: DeliveryOutcome = "sent" if failure.partial else "gave_up"
            row = self._row(notification, 1, outcome, duration_ms, failure.message)
        await self.publish(row)
        return row

    async def drop(self, notification: Notification, error: str) -> DeliveryAttempted:
        """Count and publish a notification that could not even be queued."""
        self.dropped += 1
        log.error("channel %s: notification %s dropped: %s",
                  self.channel.name, notification.id, error)
        row = not_tried(notification, "gave_up", error)
        await self.publish(row)
        return row

    def stats(self, *, queued: int = 0) -> ChannelStats:
        """A snapshot of the counters; `queued` is what waits in the caller's queue."""
        return ChannelStats(
            name=self.channel.name, kind=self.channel.kind, sent=self.sent,
            failed_attempts=self.failed_attempts, gave_up=self.gave_up,
            rate_limited=self.rate_limited, dropped=self.dropped, queued=queued,
            failing=self.failing, consecutive_failures=self.consecutive_failures,
            last_error=self.last_error, last_error_ms=self.last_error_ms,
            last_success_ms=self.last_success_ms)

    async def _try(self, target: AnyChannel,
                   notification: Notification) -> tuple[DeliveryFailed | None, float]:
        started = trio.current_time()
        failure: DeliveryFailed | None = None
        with trio.move_on_after(target.timeout + TIMEOUT_GRACE) as scope:
            try:
                await self.send(target, notification, now_ms=now_ms())
            except DeliveryFailed as exc:
                failure = exc
        if scope.cancelled_caught:
            failure = DeliveryFailed(f"{target.kind} {target.name}: no answer within"
                                     f" {target.timeout + TIMEOUT_GRACE:g} s")
        return failure, (trio.current_time() - started) * 1000

    def _failed(self, error: str) -> None:
        self.failed_attempts += 1
        self.last_error, self.last_error_ms = error, now_ms()

    async def _refuse(self, notification: Notification) -> DeliveryAttempted:
        self.rate_limited += 1
        error = (f"rate limit reached: {self.channel.rate_limit} notifications per"
                 f" {self.channel.rate_period:g} s")
        log.warning("channel %s: notification %s not sent: %s",
                    self.channel.name, notification.id, error)
        row = not_tried(notification, "rate_limited", error)
        await self.publish(row)
        return row

    async def _delivered(self, notification: Notification, attempt: int,
                         duration_ms: float, error: str) -> DeliveryAttempted:
        self.sent += 1
        self.last_success_ms = now_ms()
        if error:
            log.warning("channel %s: notification %s delivered in part: %s",
                        self.channel.name, notification.id, error)
        elif attempt > 1:
            log.info("channel %s: notification %s delivered at try %d",
                     self.channel.name, notification.id, attempt)
        row = self._row(notification, attempt, "sent", duration_ms, error)
        await self.publish(row)
        recovered = self.failing
        self.failing, self.consecutive_failures = False, 0
        if recovered:
            log.warning("channel %s works again", self.channel.name)
            await self.publish(ChannelHealthChanged(
                channel=self.channel.name, failing=False, consecutive_failures=0, error="",
                timestamp_ms=now_ms()))
        return row

    async def _gave_up(self, notification: Notification, attempt: int, duration_ms: float,
                       failure: DeliveryFailed) -> DeliveryAttempted:
        self.gave_up += 1
        self.consecutive_failures += 1
        why = "permanent failure" if failure.permanent else f"{attempt} tries failed"
        log.error("channel %s: gave up on notification %s (%s): %s",
                  self.channel.name, notification.id, why, failure.message)
        row = self._row(notification, attempt, "gave_up", duration_ms, failure.message)
        await self.publish(row)
        if not self.failing and self.consecutive_failures >= self.channel.fail_after:
            self.failing = True
            log.error("channel %s is failing: %d notifications in a row given up",
                      self.channel.name, self.consecutive_failures)
            await self.publish(ChannelHealthChanged(
                channel=self.channel.name, failing=True,
                consecutive_failures=self.consecutive_failures, error=failure.message,
                timestamp_ms=now_ms()))
        return row

    def _row(self, notification: Notification, attempt: int, outcome: DeliveryOutcome,
             duration_ms: float, error: str) -> DeliveryAttempted:
        return DeliveryAttempted(
            notification_id=notification.id, channel=notification.channel,
            reason=notification.reason, group_key=notification.group_key, attempt=attempt,
            outcome=outcome, timestamp_ms=now_ms(), error=error,
            fingerprints=tuple(alert.fingerprint for alert in notification.alerts),
            duration_ms=round(duration_ms, 3))
