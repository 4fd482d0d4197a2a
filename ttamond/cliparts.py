"""What the CLI's command groups share: the options every querying action takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

Ask = Callable[[argparse.Namespace, str, Callable[[Any], str], dict[str, Any]], int]
"""Send a command to the daemon and print its reply rendered (cli._ask)."""


def finish_action(parser: argparse.ArgumentParser,
                  common: Callable[[argparse.ArgumentParser], None],
                  handler: Callable[[argparse.Namespace], int]) -> None:
    """Add --config, --json and --socket to an action and set what it runs."""
    common(parser)
    parser.add_argument("--json", action="store_true", help="print the raw JSON reply")
    parser.add_argument("--socket", type=Path, help="control socket (default: from the config)")
    parser.set_defaults(handler=handler)
