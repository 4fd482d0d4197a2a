"""What privacy costs per event: µs to pseudonymise, scrub and allow-list one typical event.

Run from the repository root, either way:

    python benchmarks/privacy_cost.py
    python -m benchmarks.privacy_cost --events 20000 --repeat 7

A typical event is a play event with a user id, a session id, nine other fields (two of
them outside the allow-list) and an error message, half of which carry personal data
(an e-mail address, an IP address, a phone number). Per event the benchmark makes the
pseudonym of the user id under the current epoch's key (`ttamond.keyring.Keyring`),
scrubs the message (`ttamond.privacy.Scrubber`) and keeps the allowed fields, counting
the dropped ones. "warm" draws user ids from 500 players, so most pseudonyms come from
the keyring's cache; "cold" gives every event a new id, so each costs an HMAC. Medians of
`--repeat` timed runs; the target is 20 µs per typical event. "daemon" is the same work
through the daemon's own converter (engagement events with their allow-list, and error
events with personal data in the message, pseudonyms from the keyring's current epoch).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from ttamond.keyring import Keyring
from ttamond.privacy import Scrubber

TARGET_US = 20.0
START_S = 1_767_225_600.0  # 2026-01-01 00:00 UTC
ALLOWED = frozenset(
    {"user_id", "session_id", "event", "ts_ms", "chapter", "arc", "name", "value", "message"}
)
MESSAGES = (
    "TimeoutError: narrative service did not answer within 5.0 s (attempt 2 of 3)",
    "ValueError: choice 'open the door' is not available in chapter 4",
    "could not deliver reminder to jane.doe@example.org: mailbox full",
    "ConnectionRefusedError: [Errno 111] connect to 10.20.3.7:8443 refused",
    "callback to +44 20 7946 0958 failed: line busy",
    "KeyError: 'inventory' while loading save slot 3 of arc forest",
)

Event = dict[str, object]


def events(count: int, *, players: int | None) -> list[Event]:
    """``count`` typical events; user ids from ``players`` players, or all distinct."""
    made: list[Event] = []
    for number in range(count):
        player = number % players if players is not None else number
        made.append({
            "user_id": f"user-{player:06d}", "session_id": f"session-{number // 20}",
            "event": "interaction", "ts_ms": 1_767_225_600_000 + number, "chapter": "c4",
            "arc": "forest", "name": None, "value": None,
            "message": MESSAGES[number % len(MESSAGES)],
            "client_ip": "192.0.2.44", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        })
    return made


def controller(
    keyring: Keyring, scrubber: Scrubber
) -> tuple[Callable[[Event], Event], Counter[str]]:
    """The per-event work the privacy controller does, as one function."""
    dropped: Counter[str] = Counter()
    epoch = keyring.current()
    pseudonym = keyring.pseudonym
    scrub = scrubber.scrub

    def process(event: Mapping[str, object]) -> Event:
        kept = {key: value for key, value in event.items() if key in ALLOWED}
        if len(kept) != len(event):
            dropped.update(key for key in event if key not in ALLOWED)
        kept["user_id"] = pseudonym(str(kept["user_id"]), epoch)
        message = kept.get("message")
        if isinstance(message, str):
            kept["message"] = scrub(message)
        return kept

    return process, dropped


def run_once(batch: list[Event], keyring: Keyring) -> float:
    process, _ = controller(keyring, Scrubber())
    started = time.perf_counter_ns()
    for event in batch:
        process(event)
    return (time.perf_counter_ns() - started) / 1000 / len(batch)


def daemon_path(state: Path, count: int, repeat: int) -> list[float]:
    """µs per message through the daemon's own converter (`ttamond.ingest.convert`):
    engagement events (two properties outside the allow-list) and, every fourth,
    an error event whose message carries personal data; ids from 500 players."""
    from ttamond.ingest.convert import Converter
    from ttamond.messages import EngagementEvent, ErrorEvent
    from ttamond.privacyops import EpochPseudonyms

    reported: list[EngagementEvent | ErrorEvent] = []
    for index in range(count):
        player = f"player-{index % 500}@example.org"
        if index % 4 == 3:
            reported.append(ErrorEvent(
                component="narrative", environment="prod", error_type="ValueError",
                message=f"{MESSAGES[index % len(MESSAGES)]} for {player}",
                user_session_id=f"{player}/s1"))
        else:
            reported.append(EngagementEvent(
                component="narrative", environment="prod", event="choice", user_id=player,
                session_id=f"{player}/s1",
                properties={"chapter": str(index % 9), "name": "door", "value": index % 3,
                            "arc": "harbour", "client_ip": "10.1.2.3", "user_agent": "x"}))
    runs = []
    for _ in range(repeat):
        keyring = Keyring(state / "daemon-keys", rotate_every_days=30, keep_days=90,
                          now=time.time())
        converter = Converter(Scrubber(), EpochPseudonyms(keyring))
        started = time.perf_counter_ns()
        for message in reported:
            converter.convert(message, 0)
        runs.append((time.perf_counter_ns() - started) / 1000 / count)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs; medians reported")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as state:
        results: dict[str, list[float]] = {}
        for label, players in (("warm", 500), ("cold", None)):
            batch = events(options.events, players=players)
            runs: list[float] = []
            for _ in range(options.repeat):
                # A fresh keyring per run: "cold" must not find last run's pseudonyms.
                keyring = Keyring(Path(state) / "keys", rotate_every_days=30, keep_days=90,
                                  now=START_S)
                runs.append(run_once(batch, keyring))
            results[label] = runs
        process, dropped = controller(
            Keyring(Path(state) / "keys", rotate_every_days=30, keep_days=90, now=START_S),
            scrubber := Scrubber(),
        )
        for event in events(len(MESSAGES), players=None):
            process(event)
        results["daemon"] = daemon_path(Path(state), options.events, options.repeat)
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{options.events} events x {options.repeat} runs")
    worst = 0.0
    for label, runs in results.items():
        median = statistics.median(runs)
        worst = max(worst, median)
        print(f"{label:>5}: median {median:6.2f} µs/event "
              f"(fastest {min(runs):.2f}, slowest {max(runs):.2f})")
    print(f"dropped per {len(MESSAGES)} events: {dict(dropped)}; "
          f"scrubber hits: {dict(scrubber.hits)}")
    verdict = "met" if worst <= TARGET_US else "MISSED"
    print(f"target {TARGET_US:.0f} µs per typical event: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
