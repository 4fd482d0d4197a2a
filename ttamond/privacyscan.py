"""Privacy failure detection: stored text scanned for the personal data the privacy
controller should have kept out; what it finds is redacted in place, audited, and
raised as a critical alert."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec
import trio

from ttamond.bus import Bus
from ttamond.messages import StoredTextRedacted, now_ms
from ttamond.privacy import Scrubber
from ttamond.receipts import Ingested, NotStored, Receipt
from ttamond.store.readonly import open_reader

log = logging.getLogger(__name__)

SCANNED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("error_events", ("message", "stack", "context"), ""),
    ("error_groups", ("title",), ""),
    ("engagement_events", ("name", "chapter", "arc", "extra"), ""),
    ("events", ("detail",),
     " AND kind IN ('engagement', 'monitoring_started', 'monitoring_stopped', 'new_group',"
     " 'regression', 'critical_error')"),
)
"""Tables and columns holding what components reported, error titles included (the
daemon's own events, such as a probe failing to reach 10.0.0.5, are infrastructure, not
personal data)."""
BATCH = 2000


class ScanResult(msgspec.Struct):
    """One scan: rows read, cells to redact, what kinds of data were found."""

    rows: int
    cells: list[tuple[str, int, str, str]]
    """(table, rowid, column, redacted text)."""
    kinds: dict[str, int]


class Scanner:
    """Scans new rows since the last scan (all rows after a start), table by table."""

    def __init__(self, database: Path, names: list[str]) -> None:
        self.database = database
        self.scrubber = Scrubber(names)
        self.high_water: dict[str, int] = {}
        self.hits = 0

    def scan(self) -> ScanResult:
        """Read rows added since the last scan; blocking (run in a worker thread).
        Raises sqlite3.Error when the database cannot be read."""
        before = Counter(self.scrubber.hits)
        cells: list[tuple[str, int, str, str]] = []
        rows = 0
        conn = open_reader(self.database)
        try:
            for table, columns, where in SCANNED:
                start = self.high_water.get(table, 0)
                for row in conn.execute(
                        f"SELECT rowid, {', '.join(columns)} FROM {table}"
                        f" WHERE rowid > ?{where} ORDER BY rowid", (start,)):
                    rows += 1
                    rowid = int(row[0])
                    self.high_water[table] = rowid
                    for column, text in zip(columns, row[1:], strict=True):
                        if isinstance(text, str) and text:
                            clean = self.scrubber.scrub(text)
                            if clean != text:
                                cells.append((table, rowid, column, clean))
        finally:
            conn.close()
        kinds = dict(Counter(self.scrubber.hits) - before)
        self.hits += len(cells)
        return ScanResult(rows=rows, cells=cells, kinds=kinds)


async def scan_forever(scanner: Scanner, bus: Bus, *, every: float,
                       raised: Callable[[str], None]) -> None:
    """Until cancelled: scan, and for any hit have the store redact the cells (and
    audit it), then `raised(summary)` the critical alert. A database that cannot be
    read is logged and tried again at the next round."""
    while True:
        try:
            result = await trio.to_thread.run_sync(scanner.scan)
        except sqlite3.Error as exc:
            log.warning("privacy scan: cannot read %s: %s", scanner.database, exc)
            result = None
        if result is not None and result.cells:
            summary = (f"personal data found stored in {len(result.cells)} fields"
                       f" ({', '.join(f'{k} {v}' for k, v in sorted(result.kinds.items()))});"
                       " redacted")
            log.critical("privacy scan: %s", summary)
            receipt = Receipt()
            await bus.publish(Ingested(messages=(StoredTextRedacted(
                cells=tuple(result.cells), kinds=result.kinds, timestamp_ms=now_ms()),),
                receipt=receipt))
            try:
                await receipt.wait()
            except NotStored as exc:
                summary += f", but the redaction was not stored: {exc}"
            raised(summary)
        await trio.sleep(every)
