"""`ttamond report`: the report over a past window, read from the database (the daemon
need not run), as Markdown, HTML or JSON, on stdout or into a file."""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ttamond import atomicfile
from ttamond.config import load_config
from ttamond.messages import now_ms
from ttamond.paths import default_config_file, resolve_paths
from ttamond.report import FORMATS

DAY_MS = 86_400_000
EXIT_OK = 0
EXIT_FAILED = 1


def add_report_commands(commands: Any, *, common: Callable[[argparse.ArgumentParser], None],
                        duration: Callable[[str], int]) -> None:
    """Register `report` on `commands` (a subparsers object); `duration` parses the
    CLI's durations (`90s`, `15m`, `7d`) into milliseconds."""
    report = commands.add_parser(
        "report", help="performance, errors, alerts, carbon and engagement over a window")
    common(report)
    report.add_argument("--since", type=positive(duration), default=7 * DAY_MS,
                        metavar="DURATION",
                        help="the window's length, back from --until: 30m, 24h, 7d, 2w"
                        " (default 7d)")
    report.add_argument("--until", type=instant(duration), metavar="TIME",
                        help="the window's end: an ISO time (2026-05-01T12:00, UTC unless"
                        " it gives an offset) or a duration ago (1d); default now")
    report.add_argument("--format", choices=FORMATS, default="md",
                        help="md (default), html (one self-contained file) or json")
    report.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the report to FILE (replaced whole) and print its path")
    report.set_defaults(handler=run_report)


def positive(duration: Callable[[str], int]) -> Callable[[str], int]:
    """`duration`, refusing a window of no length."""
    def parse(text: str) -> int:
        ms = duration(text)
        if ms <= 0:
            raise argparse.ArgumentTypeError(f"bad duration {text!r}: must be more than 0")
        return ms

    return parse


def instant(duration: Callable[[str], int]) -> Callable[[str], int]:
    """An ISO time, or a duration before now, as Unix milliseconds."""
    def parse(text: str) -> int:
        if re.fullmatch(r"[0-9.]+[a-z]+", text):
            return now_ms() - duration(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad time {text!r}: give an ISO time (2026-05-01T12:00) or a duration"
                " ago (1d)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)

    return parse


def run_report(args: argparse.Namespace) -> int:
    """Build the report and print it or write it; 1 with one line on stderr when the
    database is missing or unreadable, or the file cannot be written."""
    # Imported here: every `ttamond` command builds this parser, few make reports.
    from ttamond.report.progress import Progress
    from ttamond.report.render import render
    from ttamond.report.summary import SECTIONS, build_report
    from ttamond.report.window import Window
    from ttamond.selector import SelectorError
    from ttamond.store.queries import QueryError, retention_of

    config = load_config(args.config or default_config_file())
    database = resolve_paths(config.paths).database
    if not database.is_file():
        return _fail(args, f"ttamond: no database at {database} (has the daemon run with"
                           " this config? --config names another)")
    now = now_ms()
    until = args.until if args.until is not None else now
    window = Window(since_ms=until - args.since, until_ms=until, now_ms=now,
                    retention=retention_of(config.store))
    progress = Progress(sys.stderr, len(SECTIONS))
    try:
        report = build_report(database, config, window, generated_ms=now,
                              on_section=progress.step)
    except (sqlite3.Error, QueryError, SelectorError) as exc:
        return _fail(args, f"ttamond: cannot read {database}: {exc}")
    finally:
        progress.finish()
    text = render(report, args.format)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_atomically(args.output, text)
    except OSError as exc:
        return _fail(args, f"ttamond: cannot write {args.output}: {exc}")
    print(args.output)
    return EXIT_OK


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` so that a reader sees the old file or the new
    one, never half of one. Raises OSError."""
    atomicfile.write_atomically(path, text.encode("utf-8"))


def _fail(args: argparse.Namespace, message: str) -> int:
    print(message, file=sys.stderr)
    if getattr(args, "debug", False) and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    return EXIT_FAILED
