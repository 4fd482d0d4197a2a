"""Numenta Anomaly Benchmark scoring: per file, per corpus, normalised, threshold sweep."""

from __future__ import annotations

import bisect
import csv
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

PROBATION_SHARE = 0.15
PROBATION_CAP_ROWS = 5000


class Profile(msgspec.Struct, frozen=True):
    """NAB's application profile: weights of a true positive, a false positive and a
    missed window."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES: tuple[Profile, ...] = (
    Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    Profile("reward_low_FP", tp=1.0, fp=0.22, fn=1.0),
    Profile("reward_low_FN", tp=1.0, fp=0.11, fn=2.0),
)
STANDARD = PROFILES[0]


class LabelledSeries(msgspec.Struct, frozen=True):
    """One data file: its name relative to the data folder, its rows and its windows."""

    name: str
    timestamps: list[float]
    """Seconds since the epoch, UTC."""
    values: list[float]
    windows: list[tuple[float, float]]
    """Labelled anomaly windows, inclusive bounds in the same timebase."""


class FileScore(msgspec.Struct, frozen=True):
    """How one file scored at one threshold under one profile."""

    name: str
    rows: int
    windows: int
    tp: int
    """Windows detected (the first detection in each)."""
    fp: int
    """Detections outside every window."""
    fn: int
    """Windows missed."""
    raw: float


class SweepResult(msgspec.Struct, frozen=True):
    """The best corpus-wide threshold for one profile, and what it scores."""

    profile: str
    threshold: float
    raw: float
    normalised: float


def parse_timestamp(text: str) -> float:
    """NAB's `YYYY-mm-dd HH:MM:SS[.ffffff]`, read as UTC, in seconds since the epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def probation_rows(rows: int) -> int:
    """Leading rows that are not scored: 15% of the file, at most 15% of 5000 rows."""
    return int(min(math.floor(PROBATION_SHARE * rows), PROBATION_SHARE * PROBATION_CAP_ROWS))


def scaled_sigmoid(position: float) -> float:
    """NAB's weighting curve: 1 well before a window's right edge, 0 at it, down to -1
    after it (and exactly -1 past three window-widths)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


_SIGMOID_LEFT_EDGE = scaled_sigmoid(-1.0)


def window_indices(timestamps: Sequence[float],
                   windows: Iterable[tuple[float, float]]) -> list[tuple[int, int]]:
    """Each window as (first row, last row) inside it, in time order; windows holding no
    row are left out (NAB labels rows, so such a window cannot be scored). The
    timestamps must be in ascending order, as NAB's files are."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if first <= last:
            spans.append((first, last))
    return spans


def row_weights(rows: int, spans: Sequence[tuple[int, int]]) -> list[tuple[int, float]]:
    """For every row: the window it lies in (-1 outside every window, -2 in probation)
    and its unweighted value, the share of A_TP a detection there earns inside a window
    or the (negative) share of A_FP it costs outside."""
    probation = probation_rows(rows)
    weights: list[tuple[int, float]] = []
    upcoming = 0
    previous: tuple[int, int] | None = None
    for i in range(rows):
        while upcoming < len(spans) and spans[upcoming][1] < i:
            previous = spans[upcoming]
            upcoming += 1
        if i < probation:
            weights.append((-2, 0.0))
        elif upcoming < len(spans) and spans[upcoming][0] <= i:
            left, right = spans[upcoming]
            position = -(right - i + 1) / (right - left + 1)
            weights.append((upcoming, scaled_sigmoid(position) / _SIGMOID_LEFT_EDGE))
        elif previous is None:
            weights.append((-1, -1.0))
        else:
            left, right = previous
            # A one-row window has no width to scale by; treat it as two rows wide.
            past = abs(right - i) / max(right - left, 1)
            weights.append((-1, scaled_sigmoid(past)))
    return weights


def score_file(series: LabelledSeries, scores: Sequence[float], threshold: float,
               profile: Profile = STANDARD) -> FileScore:
    """Score one file: a row is a detection when its score is at least `threshold`.

    Raises ValueError when there is not one score per row.
    """
    rows = len(series.timestamps)
    if len(scores) != rows:
        raise ValueError(f"{series.name}: {len(scores)} scores for {rows} rows")
    spans = window_indices(series.timestamps, series.windows)
    best: dict[int, float] = {}
    fp_count = 0
    fp_total = 0.0
    for score, (window, value) in zip(scores, row_weights(rows, spans), strict=True):
        if window == -2 or score < threshold:
            continue
        if window == -1:
            fp_count += 1
            fp_total += value
        elif window not in best:
            # Rows come in time order, so the first detection is the best-paid one.
            best[window] = value
    missed = len(spans) - len(best)
    raw = profile.tp * sum(best.values()) + profile.fp * fp_total - profile.fn * missed
    return FileScore(name=series.name, rows=rows, windows=len(spans), tp=len(best),
                     fp=fp_count, fn=missed, raw=raw)


def null_raw(windows: int, profile: Profile = STANDARD) -> float:
    """What a detector that never fires scores on a corpus with this many windows."""
    return -profile.fn * windows


def perfect_raw(windows: int, profile: Profile = STANDARD) -> float:
    """What a detector firing once at the left edge of every window scores."""
    return profile.tp * windows


def normalise(raw: float, windows: int, profile: Profile = STANDARD) -> float:
    """A raw corpus score on NAB's scale: null detector 0, perfect detector 100.

    Raises ValueError for a corpus without windows (the scale is undefined).
    """
    if windows <= 0:
        raise ValueError("a corpus without anomaly windows cannot be normalised")
    low, high = null_raw(windows, profile), perfect_raw(windows, profile)
    return 100.0 * (raw - low) / (high - low)


def score_corpus(corpus: Sequence[LabelledSeries], scores: Sequence[Sequence[float]],
                 threshold: float, profile: Profile = STANDARD) -> list[FileScore]:
    """Every file's score at one shared threshold, in corpus order."""
    return [score_file(series, file_scores, threshold, profile)
            for series, file_scores in zip(corpus, scores, strict=True)]


def sweep(corpus: Sequence[LabelledSeries], scores: Sequence[Sequence[float]],
          profiles: Sequence[Profile] = PROFILES) -> list[SweepResult]:
    """For each profile, the corpus-wide threshold that maximises the raw corpus score,
    trying every distinct score value (and "never fire").

    One pass over the scored rows in descending score order serves every profile: the
    raw score at a threshold is A_TP * (sum of each detected window's best share)
    - A_FN * (windows missed) + A_FP * (sum of the false positives' shares), and the
    three sums move together as the threshold falls.
    """
    if len(corpus) != len(scores):
        raise ValueError(f"{len(scores)} score lists for {len(corpus)} files")
    rows: list[tuple[float, int, float]] = []
    total_windows = 0
    for series, file_scores in zip(corpus, scores, strict=True):
        if len(file_scores) != len(series.timestamps):
            raise ValueError(
                f"{series.name}: {len(file_scores)} scores for {len(series.timestamps)} rows"
            )
        spans = window_indices(series.timestamps, series.windows)
        weights = row_weights(len(file_scores), spans)
        for score, (window, value) in zip(file_scores, weights, strict=True):
            if window == -2:
                continue
            rows.append((score, -1 if window == -1 else total_windows + window, value))
        total_windows += len(spans)
    rows.sort(key=lambda row: row[0], reverse=True)

    best_share: dict[int, float] = {}
    tp_total = 0.0
    fp_total = 0.0
    results = {p.name: (math.inf, null_raw(total_windows, p)) for p in profiles}

    def consider(threshold: float) -> None:
        missed = total_windows - len(best_share)
        for p in profiles:
            raw = p.tp * tp_total + p.fp * fp_total - p.fn * missed
            if raw > results[p.name][1]:
                results[p.name] = (threshold, raw)

    for k, (score, window, value) in enumerate(rows):
        if window == -1:
            fp_total += value
        else:
            before = best_share.get(window)
            if before is None:
                best_share[window] = value
                tp_total += value
            elif value > before:
                best_share[window] = value
                tp_total += value - before
        if k + 1 == len(rows) or rows[k + 1][0] != score:
            consider(score)
    return [SweepResult(profile=p.name, threshold=results[p.name][0], raw=results[p.name][1],
                        normalised=normalise(results[p.name][1], total_windows, p)
                        if total_windows else 0.0)
            for p in profiles]


class FoldResult(msgspec.Struct, frozen=True):
    """One half of a two-fold check: a threshold chosen on one half of the files and
    what the other half scores with it."""

    tuned_on: str
    """"odd" or "even": which files (numbered from 1 in corpus order) chose the threshold."""
    threshold: float
    tuned: float
    """Normalised score of the half that chose the threshold."""
    held_out: float
    """Normalised score of the other half at that threshold."""


def two_fold(corpus: Sequence[LabelledSeries], scores: Sequence[Sequence[float]],
             profile: Profile = STANDARD) -> list[FoldResult]:
    """Choose the threshold on the odd-numbered files and score the even ones with it,
    then the other way round: a check that the threshold, and whatever was tuned with
    it, carries over to files it was not chosen on.

    Raises ValueError when a half has no windows (its score cannot be normalised).
    """
    if len(corpus) != len(scores):
        raise ValueError(f"{len(scores)} score lists for {len(corpus)} files")
    halves = {"odd": range(0, len(corpus), 2), "even": range(1, len(corpus), 2)}
    results: list[FoldResult] = []
    for tuned_on, other in (("odd", "even"), ("even", "odd")):
        tuning = halves[tuned_on]
        (best,) = sweep([corpus[i] for i in tuning], [scores[i] for i in tuning], [profile])
        held = halves[other]
        files = score_corpus([corpus[i] for i in held], [scores[i] for i in held],
                             best.threshold, profile)
        held_out = normalise(sum(f.raw for f in files), sum(f.windows for f in files),
                             profile)
        results.append(FoldResult(tuned_on=tuned_on, threshold=best.threshold,
                                  tuned=best.normalised, held_out=held_out))
    return results


def read_series(path: Path) -> tuple[list[float], list[float]]:
    """Timestamps and values of one NAB-style CSV (`timestamp,value` header).

    Raises ValueError naming the file and line of a row that does not parse or that
    goes back in time.
    """
    timestamps: list[float] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected the header 'timestamp,value', got {header}")
        for row in reader:
            try:
                timestamps.append(parse_timestamp(row[0]))
                values.append(float(row[1]))
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
            if len(timestamps) > 1 and timestamps[-1] < timestamps[-2]:
                raise ValueError(f"{path}:{reader.line_num}: timestamp {row[0]} goes back"
                                 " in time (rows must be in time order)")
    return timestamps, values


def load_corpus(data: Path, labels: Path) -> list[LabelledSeries]:
    """Every `*.csv` under `data` (names relative to it, with '/'), with its windows
    from the `labels` JSON (`{"dir/name.csv": [[start, end], ...]}`), sorted by name.
    Labels for files that are not there are ignored (a corpus may be a subset).

    Raises ValueError for a file without labels, FileNotFoundError for a missing folder.
    """
    if not data.is_dir():
        raise FileNotFoundError(f"no data folder at {data}")
    windows_by_name: dict[str, list[list[str]]] = json.loads(labels.read_text())
    corpus: list[LabelledSeries] = []
    for path in sorted(data.rglob("*.csv")):
        name = path.relative_to(data).as_posix()
        if name not in windows_by_name:
            raise ValueError(f"{labels}: no windows for {name} (give [] for none)")
        timestamps, values = read_series(path)
        windows = [(parse_timestamp(start), parse_timestamp(end))
                   for start, end in windows_by_name[name]]
        corpus.append(LabelledSeries(name=name, timestamps=timestamps, values=values,
                                     windows=windows))
    return corpus
