"""Delivery to one channel: the rate limit, back-off, and the channel's health."""

from __future__ import annotations

import logging
import random

import pytest
import trio

from tests.notify import alert, notification
from tests.notify.receivers import HttpReceiver
from ttamond.messages import ChannelHealthChanged, DeliveryAttempted, Message
from ttamond.notify.delivery import ChannelDelivery, RateLimiter
from ttamond.notify.settings import LogChannel, WebhookChannel


class Log:
    """What a delivery published, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.messages.append(message)

    def outcomes(self) -> list[tuple[str, int, str]]:
        return [(m.notification_id, m.attempt, m.outcome) for m in self.messages
                if isinstance(m, DeliveryAttempted)]

    def health(self) -> list[tuple[bool, int]]:
        return [(m.failing, m.consecutive_failures) for m in self.messages
                if isinstance(m, ChannelHealthChanged)]


def test_the_rate_limiter_is_a_sliding_window() -> None:
    limiter = RateLimiter(2, 10.0)
    assert limiter.allows(0.0)
    limiter.record(0.0)
    limiter.record(4.0)
    assert not limiter.allows(9.9)
    assert limiter.allows(10.0) and limiter.used(10.0) == 1
    unlimited = RateLimiter(0, 1.0)
    for _ in range(1000):
        unlimited.record(0.0)
    assert unlimited.allows(0.0) and unlimited.used(0.0) == 0
    with pytest.raises(ValueError, match="rate limit needs limit >= 0 and period > 0"):
        RateLimiter(-1, 1.0)


def test_back_off_doubles_with_jitter_within_its_bounds() -> None:
    channel = LogChannel(name="j", backoff_initial=1.0, backoff_max=30.0)
    delivery = ChannelDelivery(channel, Log().publish, rng=random.Random(7))
    waits = [[delivery.backoff(attempt) for attempt in range(1, 9)] for _ in range(200)]
    assert all(w[0] == 1.0 for w in waits)
    for attempt in range(2, 9):
        top = min(30.0, 2.0 ** (attempt - 1))
        observed = [w[attempt - 1] for w in waits]
        assert all(max(1.0, top / 2) <= x <= top for x in observed)
        assert len(set(observed)) > 100


async def test_over_the_rate_limit_a_notification_is_counted_not_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    log = Log()
    delivery = ChannelDelivery(LogChannel(name="journal", rate_limit=2), log.publish)
    with caplog.at_level(logging.WARNING, logger="ttamond.notify"):
        for number in (1, 2, 3):
            await delivery.deliver(notification(id=f"f{number}", channel="journal"))
        refused = log.messages[-1]
        await delivery.deliver(notification(alert(status="resolved", ends_ms=1), id="r",
                                            reason="resolved", channel="journal"))
        await delivery.deliver(notification(id="s", reason="sync", channel="journal"))
        await delivery.deliver_once(notification(id="t", reason="test", channel="journal"))
        await delivery.deliver(notification(id="f4", channel="journal"))
    assert log.outcomes() == [("f1", 1, "sent"), ("f2", 1, "sent"), ("f3", 0, "rate_limited"),
                              ("r", 1, "sent"), ("s", 1, "sent"), ("t", 1, "sent"),
                              ("f4", 0, "rate_limited")]
    assert isinstance(refused, DeliveryAttempted)
    assert refused.error == "rate limit reached: 2 notifications per 3600 s"
    assert refused.fingerprints == ("HighCpu-web1",)
    stats = delivery.stats()
    # The test is in the log, not in the counters: those are for real notifications.
    assert (stats.sent, stats.rate_limited, stats.gave_up) == (4, 2, 0)
    lines = [r.getMessage() for r in caplog.records if r.name == "ttamond.notify.log"]
    assert lines[0] == ('channel journal: [FIRING:1] HighCpu: HighCpu on web1'
                        ' [group {}:{alertname="HighCpu"}, notification f1]')
    assert lines[2].startswith("channel journal: [RESOLVED] HighCpu: ")


async def test_a_channel_fails_after_give_ups_in_a_row_and_recovers_at_the_next_success(
        nursery: trio.Nursery) -> None:
    receiver = HttpReceiver(statuses=[500, 500, 500])
    base = await receiver.serve(nursery)
    log = Log()
    channel = WebhookChannel(name="hook", url=f"{base}/in", max_attempts=1, fail_after=2)
    delivery = ChannelDelivery(channel, log.publish)
    for number in (1, 2, 3, 4):
        await delivery.deliver(notification(id=f"n{number}", channel="hook"))
        if number == 3:
            assert delivery.stats().failing
            assert delivery.stats().consecutive_failures == 3
    assert log.outcomes() == [("n1", 1, "gave_up"), ("n2", 1, "gave_up"), ("n3", 1, "gave_up"),
                              ("n4", 1, "sent")]
    assert log.health() == [(True, 2), (False, 0)]
    failing = next(m for m in log.messages if isinstance(m, ChannelHealthChanged))
    assert failing.channel == "hook"
    assert failing.error.startswith(f"webhook {base}/in: HTTP 500")
    stats = delivery.stats()
    assert (stats.sent, stats.gave_up, stats.failed_attempts, stats.failing) == (1, 3, 3, False)
    assert stats.last_error.startswith("webhook") and stats.last_success_ms > 0


async def test_a_test_leaves_the_channels_health_alone(nursery: trio.Nursery) -> None:
    receiver = HttpReceiver(default=500)
    base = await receiver.serve(nursery)
    log = Log()
    delivery = ChannelDelivery(WebhookChannel(name="hook", url=f"{base}/in", fail_after=1),
                               log.publish)
    result = await delivery.deliver_once(notification(reason="test", channel="hook"))
    assert (result.attempt, result.outcome) == (1, "gave_up")
    assert len(receiver.requests) == 1
    assert log.health() == [] and not delivery.stats().failing
    assert delivery.stats().last_error == result.error
