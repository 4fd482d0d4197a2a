"""The anomaly detector on the Numenta Anomaly Benchmark (NAB): normalised scores.

Run from the repository root, either way:

    python benchmarks/nab.py
    python -m benchmarks.nab --data DIR --labels FILE --json

Streams every CSV under the data folder through a fresh `Detector` (default settings,
one parameter set for every file), then scores the corpus the way NAB does
(ttamond.analytics.nab): for each profile (standard, reward_low_FP, reward_low_FN) the
one corpus-wide threshold that maximises the raw score, normalised so that a detector
that never fires scores 0 and a perfect one 100. Prints those, the per-file figures at
the standard profile's threshold, a two-fold check (the standard threshold chosen on
the odd-numbered files and scored on the even ones, and the other way round), the
detector's cost (µs per sample, the median of the per-file figures) and the run time.
`--detector '{"window": 480}'` runs other settings (unknown keys are errors).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import msgspec

from ttamond.analytics.detector import Detector, DetectorSettings
from ttamond.analytics.nab import (
    PROFILES,
    STANDARD,
    LabelledSeries,
    load_corpus,
    score_corpus,
    sweep,
    two_fold,
)

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent / "shared" / "datasets" / "nab"


def run_detector(series: LabelledSeries, settings: DetectorSettings) -> tuple[list[float], float]:
    """One fresh detector over one file: its scores and its cost in µs per sample."""
    detector = Detector(settings)
    update = detector.update
    started = time.perf_counter()
    scores = [update(ts, value) for ts, value in zip(series.timestamps, series.values,
                                                      strict=True)]
    elapsed = time.perf_counter() - started
    return scores, elapsed / max(len(scores), 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=NAB / "data",
                        help="folder of <category>/<name>.csv files (default: %(default)s)")
    parser.add_argument("--labels", type=Path, default=NAB / "combined_windows.json",
                        help="windows JSON of the same layout (default: %(default)s)")
    parser.add_argument("--detector", default="{}",
                        help="JSON object of DetectorSettings fields to change")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        settings = msgspec.json.decode(args.detector.encode(), type=DetectorSettings)
        corpus = load_corpus(args.data, args.labels)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        print(f"nab: {exc}", file=sys.stderr)
        return 1
    if not corpus:
        print(f"nab: no CSV files under {args.data}", file=sys.stderr)
        return 1

    started = time.perf_counter()
    scores: list[list[float]] = []
    costs: list[float] = []
    for series in corpus:
        file_scores, cost = run_detector(series, settings)
        scores.append(file_scores)
        costs.append(cost)
    detector_s = time.perf_counter() - started
    swept = sweep(corpus, scores, PROFILES)
    sweep_s = time.perf_counter() - started - detector_s
    standard = next(result for result in swept if result.profile == STANDARD.name)
    files = score_corpus(corpus, scores, standard.threshold, STANDARD)
    try:
        folds = two_fold(corpus, scores, STANDARD)
    except ValueError:
        folds = []  # a corpus too small to split into halves that both hold windows
    rows = sum(len(series.values) for series in corpus)

    report = {
        "files": len(corpus),
        "rows": rows,
        "windows": sum(f.windows for f in files),
        "profiles": {r.profile: {"normalised": round(r.normalised, 2), "raw": round(r.raw, 3),
                                 "threshold": r.threshold} for r in swept},
        "per_file": [{"file": f.name, "rows": f.rows, "windows": f.windows, "tp": f.tp,
                      "fp": f.fp, "fn": f.fn, "raw": round(f.raw, 3),
                      "us_per_sample": round(cost, 2)} for f, cost in zip(files, costs,
                                                                          strict=True)],
        "two_fold": [{"tuned_on": f.tuned_on, "threshold": f.threshold,
                      "tuned": round(f.tuned, 2), "held_out": round(f.held_out, 2)}
                     for f in folds],
        "us_per_sample_median": round(statistics.median(costs), 2),
        "detector_seconds": round(detector_s, 2),
        "sweep_seconds": round(sweep_s, 2),
        "python": platform.python_version(),
        "settings": msgspec.to_builtins(settings),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"NAB: {len(corpus)} files, {rows} rows, {report['windows']} windows"
          f" (data {args.data})")
    print(f"{'file':58} {'rows':>6} {'win':>4} {'TP':>3} {'FP':>4} {'FN':>3} {'raw':>7}")
    for f in files:
        print(f"{f.name:58} {f.rows:6} {f.windows:4} {f.tp:3} {f.fp:4} {f.fn:3} {f.raw:7.2f}")
    print()
    for result in swept:
        print(f"{result.profile:14} normalised {result.normalised:6.2f}"
              f"  raw {result.raw:8.2f}  threshold {result.threshold:.4f}")
    for fold in folds:
        other = "even" if fold.tuned_on == "odd" else "odd"
        print(f"two-fold       tuned on {fold.tuned_on:4} files {fold.tuned:6.2f}"
              f"  threshold {fold.threshold:.4f}  -> {other:4} files {fold.held_out:6.2f}")
    print(f"detector: {report['us_per_sample_median']} µs per sample (median of files),"
          f" {detector_s:.1f} s for the corpus; sweep {sweep_s:.1f} s;"
          f" Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
