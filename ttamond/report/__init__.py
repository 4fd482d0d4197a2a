"""The report generator: `ttamond report` and the `get_performance_summary` call.

`summary.build_report` reads every section from the database, read-only;
`render.render` writes it as Markdown, HTML or JSON; `performance.performance_summary`
answers the service call. This module stays light: the CLI imports it at every start.
"""

from __future__ import annotations

from typing import Final, Literal

Format = Literal["md", "html", "json"]
FORMATS: Final[tuple[Format, ...]] = ("md", "html", "json")

__all__ = ["FORMATS", "Format"]
