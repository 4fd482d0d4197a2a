"""The analytics actor's detectors on disk: one msgpack file, replaced atomically.

A detector needs 160 steps before it scores, a day and a half before it trusts the
daily rhythm and ten and a half before the weekly one; a daemon restart (an upgrade,
a reboot) should not cost that. The file holds the detector settings and step it was
written under, and each series' name, labels, detector, open step and last counter
reading. It is only read back under the same detector settings and step: other
settings would make the learnt state mean something else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from ttamond.analytics.detector import Detector, DetectorSettings
from ttamond.analytics.snapshot import SnapshotError, dump, load
from ttamond.analytics.steps import StepMean
from ttamond.messages import Labels

VERSION = 1


class SavedSeries(NamedTuple):
    """One series' learnt state, as written and as read back."""

    name: str
    labels: Labels
    detector: Detector
    steps: StepMean
    previous: tuple[float, float] | None


def encode(settings: DetectorSettings, step_seconds: float,
           series: Iterable[SavedSeries]) -> bytes:
    """The file's bytes for these series."""
    return msgspec.msgpack.encode({
        "version": VERSION,
        "detector": msgspec.to_builtins(settings),
        "step_seconds": step_seconds,
        "series": [[s.name, [list(pair) for pair in s.labels], dump(s.detector),
                    dump(s.steps), list(s.previous) if s.previous else None]
                   for s in series],
    })


def decode(blob: bytes, settings: DetectorSettings, step_seconds: float) -> list[SavedSeries]:
    """The series saved in `blob`, their detectors rebuilt with `settings`.

    Raises SnapshotError naming what does not fit: not this format or version,
    other detector settings or another step, a malformed entry.
    """
    try:
        document = msgspec.msgpack.decode(blob)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not a detectors file ({exc})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise SnapshotError(f"not a version {VERSION} detectors file")
    if document.get("detector") != msgspec.to_builtins(settings):
        raise SnapshotError("written under other detector settings")
    if document.get("step_seconds") != step_seconds:
        raise SnapshotError(f"written with step_seconds = {document.get('step_seconds')!r},"
                            f" not {step_seconds!r}")
    entries = document.get("series")
    if not isinstance(entries, list):
        raise SnapshotError("no list of series")
    return [_series(entry, settings, step_seconds, k) for k, entry in enumerate(entries)]


def _series(entry: Any, settings: DetectorSettings, step_seconds: float,
            index: int) -> SavedSeries:
    where = f"series #{index}"
    if not (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)):
        raise SnapshotError(f"{where}: not [name, labels, detector, step, previous]")
    name, pairs, detector_state, steps_state, previous = entry
    if not (isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs)):
        raise SnapshotError(f"{where} ({name}): labels are not [name, value] pairs")
    if previous is not None and not (
            isinstance(previous, list) and len(previous) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in previous)):
        raise SnapshotError(f"{where} ({name}): the last counter reading is not [seconds, value]")
    detector = Detector(settings)
    steps = StepMean(step_seconds)
    try:
        load(detector, detector_state)
        load(steps, steps_state)
    except SnapshotError as exc:
        raise SnapshotError(f"{where} ({name}): {exc}") from None
    labels: Labels = tuple((k, v) for k, v in pairs)
    return SavedSeries(name, labels, detector, steps,
                       (float(previous[0]), float(previous[1])) if previous else None)

