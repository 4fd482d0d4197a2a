"""The `ttamond` command: run the daemon, query it, check and show the config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ttamond import __version__
from ttamond.config import Config, ConfigError, config_to_builtins, load_config
from ttamond.control import CommandError, ControlUnavailable, request
from ttamond.paths import default_config_file, resolve_paths

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_CONFIG = 2

log = logging.getLogger("ttamond")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    try:
        result: int = args.handler(args)
    except ConfigError as exc:
        _fail(args, f"ttamond: {exc}")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return result


def _fail(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr)
    if getattr(args, "debug", False) and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttamond", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ttamond {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon in the foreground")
    _config_option(run)
    run.set_defaults(handler=_run)

    status = commands.add_parser("status", help="show the running daemon's state")
    _config_option(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON reply")
    status.add_argument("--socket", type=Path, help="control socket (default: from the config)")
    status.set_defaults(handler=_status)

    latest = commands.add_parser("latest", help="show the newest value of each series")
    _config_option(latest)
    latest.add_argument("prefix", nargs="?", default="", help="only series starting with this")
    latest.add_argument("--json", action="store_true", help="print the raw JSON reply")
    latest.add_argument("--socket", type=Path, help="control socket (default: from the config)")
    latest.set_defaults(handler=_latest)

    query = commands.add_parser("query", help="points of the selected series over a range")
    _config_option(query)
    query.add_argument("selector", help='e.g. \'host_cpu_percent{cpu="total"}\'')
    query.add_argument("--since", type=_duration, default=3_600_000, metavar="DURATION",
                       help="how far back, e.g. 90s, 15m, 1h, 7d (default 1h)")
    query.add_argument("--step", type=_duration, default=0, metavar="DURATION",
                       help="bucket width, e.g. 1m; default: raw points")
    query.add_argument("--agg", default="avg", choices=("avg", "min", "max", "sum", "count",
                                                        "last"), help="per bucket (default avg)")
    query.add_argument("--json", action="store_true", help="print the raw JSON reply")
    query.add_argument("--socket", type=Path, help="control socket (default: from the config)")
    query.set_defaults(handler=_query)

    from ttamond.alerts.cli import add_alerts_commands
    from ttamond.carbon.cli import add_carbon_commands
    from ttamond.errors.cli import add_errors_commands
    from ttamond.install import add_service_commands

    add_alerts_commands(commands, common=_config_option, duration=_duration, ask=_ask)
    from ttamond.engagement.cli import add_privacy_commands

    add_privacy_commands(commands, common=_config_option, duration=_duration, ask=_ask)
    add_errors_commands(commands, common=_config_option, duration=_duration, ask=_ask)
    add_carbon_commands(commands, common=_config_option, duration=_duration, ask=_ask)
    from ttamond.report.cli import add_report_commands

    add_report_commands(commands, common=_config_option, duration=_duration)
    add_service_commands(commands)

    health = commands.add_parser("health", help="components, checks and predictions")
    _config_option(health)
    health.add_argument("--json", action="store_true", help="print the raw JSON reply")
    health.add_argument("--socket", type=Path, help="control socket (default: from the config)")
    health.set_defaults(handler=_health)

    config = commands.add_parser("config", help="check or show the configuration")
    config_commands = config.add_subparsers(metavar="ACTION", required=True)
    check = config_commands.add_parser("check", help="validate a config file")
    check.add_argument("file", nargs="?", type=Path, help="default: the file `run` would use")
    check.set_defaults(handler=_config_check)
    show = config_commands.add_parser("show", help="print the effective config")
    _config_option(show)
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")
    show.set_defaults(handler=_config_show)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", type=Path, metavar="FILE",
        help="config file (default: $TTAMOND_CONFIG, /etc/ttamond/ttamond.toml for root or "
        "~/.config/ttamond/ttamond.toml, else the embedded defaults)",
    )


def _load(args: argparse.Namespace) -> tuple[Config, Path | None]:
    path: Path | None = args.config if getattr(args, "config", None) else default_config_file()
    return load_config(path), path


def _run(args: argparse.Namespace) -> int:
    config, path = _load(args)
    from ttamond.daemon import DaemonAlreadyRunning, run_daemon
    from ttamond.logs import setup_logging
    from ttamond.pseudonyms import KeyFileUnsafe

    setup_logging("debug" if args.debug else config.logging.level)
    log.info("starting ttamond %s with %s", __version__, path or "the embedded defaults")
    try:
        return run_daemon(config, path)
    except (DaemonAlreadyRunning, KeyFileUnsafe, OSError) as exc:
        _fail(args, f"ttamond: {exc}")
        return EXIT_UNREACHABLE


def _socket(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    config, _ = _load(args)
    return resolve_paths(config.paths).control_socket


def _ask(args: argparse.Namespace, command: str, render: Callable[[Any], str],
         params: dict[str, Any] | None = None) -> int:
    params = {key: value for key, value in (params or {}).items() if value is not None}
    try:
        reply = request(_socket(args), command, params)
    except ControlUnavailable as exc:
        _fail(args, f"ttamond: daemon not reachable: {exc}")
        return EXIT_UNREACHABLE
    except CommandError as exc:
        _fail(args, f"ttamond: {command}: the daemon refused ({exc.code}): {exc}")
        return EXIT_UNREACHABLE
    print(json.dumps(reply, indent=2) if args.json else render(reply))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from ttamond.statusview import render_status

    return _ask(args, "status", render_status)


def _latest(args: argparse.Namespace) -> int:
    from ttamond.statusview import render_latest

    return _ask(args, "latest", render_latest, {"prefix": args.prefix})


def _health(args: argparse.Namespace) -> int:
    from ttamond.statusview import render_health

    return _ask(args, "health", render_health)


def _query(args: argparse.Namespace) -> int:
    from ttamond.statusview import render_query

    params = {"selector": args.selector, "since_ms": args.since, "step_ms": args.step,
              "aggregate": args.agg}
    return _ask(args, "query", render_query, params)


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _duration(text: str) -> int:
    """`90s`, `15m`, `1h`, `7d` (or plain seconds) in milliseconds."""
    number, unit = text.rstrip("smhdw"), text[len(text.rstrip("smhdw")):] or "s"
    if unit not in _UNITS_MS or not number.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(
            f"bad duration {text!r}: use a number and one of ms, s, m, h, d, w (e.g. 15m)"
        )
    return int(float(number) * _UNITS_MS[unit])


def _config_check(args: argparse.Namespace) -> int:
    path: Path | None = args.file or default_config_file()
    if path is None:
        print("ttamond: no config file; the embedded defaults are valid")
        return EXIT_OK
    config = load_config(path)
    from ttamond.alerts.lint import rule_warnings

    for warning in rule_warnings(config.alerts.rules):
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(f"{path}: ok")
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    import tomli_w

    config, path = _load(args)
    data = config_to_builtins(config)
    paths = resolve_paths(config.paths)
    resolved = {name: str(getattr(paths, name)) for name in paths.__struct_fields__}
    if args.json:
        print(json.dumps({"config": data, "resolved_paths": resolved, "source": str(path)},
                         indent=2))
        return EXIT_OK
    print(f"# effective config from {path or 'the embedded defaults'}")
    print("# resolved paths: " + ", ".join(f"{k}={v}" for k, v in resolved.items()))
    print(tomli_w.dumps(data), end="")
    return EXIT_OK
