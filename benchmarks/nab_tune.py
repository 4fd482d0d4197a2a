"""How the anomaly detector's defaults were chosen: a random local search on NAB.

Run from the repository root:

    python benchmarks/nab_tune.py --iterations 300 --seed 1            # tune on all files
    python benchmarks/nab_tune.py --fit odd --iterations 200 --seed 11 # does tuning transfer?

Starts from `--start` (default: the current DetectorSettings defaults) and, each
iteration, multiplies one or two randomly chosen fields by exp(N(0, 0.3)), clipped to
the ranges in SPACE. A candidate is kept only when the standard NAB score of the files
it is tuned on rises by more than MIN_GAIN *and* neither interleaved half of those
files scores less: a change that one half pays for is noise, however good the total.

`--fit all` tunes on every file (how the shipped defaults were found). `--fit odd` or
`--fit even` tunes on every other file and reports the files left out at each kept
step (at their own best threshold), which shows whether the tuning carries over to
data it has not seen. Each evaluation runs the whole corpus (about 3 s a process); the
files are spread over `--jobs` processes. Prints one line per kept step and, at the
end, the changed fields as JSON for `benchmarks/nab.py --detector`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path

import msgspec

from ttamond.analytics.detector import DetectorSettings
from ttamond.analytics.nab import STANDARD, LabelledSeries, load_corpus, sweep

try:
    from benchmarks.nab import NAB, run_detector
except ModuleNotFoundError:  # run as `python benchmarks/nab_tune.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.nab import NAB, run_detector

SPACE: dict[str, tuple[float, float, bool]] = {
    # field: (lowest, highest, integer)
    "window": (240, 2400, True),
    "spread_alpha": (0.002, 0.05, False),
    "level_tau": (3600.0, 86400.0, False),
    "season_gamma": (0.05, 0.6, False),
    "rhythm_advantage": (0.2, 0.9, False),
    "week_advantage": (0.1, 0.9, False),
    "error_alpha": (0.002, 0.05, False),
    "short_mean": (3, 30, True),
    "long_mean": (15, 150, True),
    "tail_horizon": (500.0, 10000.0, False),
    "tail_bins_per_e": (2.0, 8.0, False),
    "tail_prior": (0.2, 4.0, False),
    "tail_extrapolation": (1.0, 15.0, False),
    "calibration": (30, 400, True),
    "score_scale": (8.0, 18.0, False),
    "surprise_floor": (1.0, 7.0, False),
    "range_tolerance": (0.03, 0.2, False),
    "stuck_run": (10, 120, True),
    "quiet_samples": (40, 250, True),
}
STEP_SIGMA = 0.3
MIN_GAIN = 0.05
"""Normalised points a kept step must add to the tuned files' score."""

_corpus: list[LabelledSeries] = []


def _load(data: Path, labels: Path) -> None:
    _corpus[:] = load_corpus(data, labels)


def _scores(job: tuple[str, int]) -> list[float]:
    changes, index = job
    settings = msgspec.json.decode(changes.encode(), type=DetectorSettings)
    return run_detector(_corpus[index], settings)[0]


def _normalised(indices: Sequence[int], scores: Sequence[list[float]]) -> float:
    result = sweep([_corpus[k] for k in indices], [scores[k] for k in indices], [STANDARD])[0]
    return round(result.normalised, 2)


def _neighbour(current: dict[str, float], rng: random.Random) -> dict[str, float]:
    defaults = msgspec.to_builtins(DetectorSettings())
    candidate = dict(current)
    for name in rng.sample(sorted(SPACE), rng.choice((1, 2))):
        low, high, integer = SPACE[name]
        value = candidate.get(name, defaults[name]) * math.exp(rng.gauss(0.0, STEP_SIGMA))
        value = min(max(value, low), high)
        candidate[name] = round(value) if integer else round(value, 4)
    return candidate


def _jittered(changes: dict[str, float], jitter: dict[str, float]) -> dict[str, float]:
    """`changes` with every tunable field moved by its jitter factor, within SPACE."""
    defaults = msgspec.to_builtins(DetectorSettings())
    moved = dict(changes)
    for name, factor in jitter.items():
        low, high, integer = SPACE[name]
        value = min(max(changes.get(name, defaults[name]) * factor, low), high)
        moved[name] = round(value) if integer else value
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=NAB / "data")
    parser.add_argument("--labels", type=Path, default=NAB / "combined_windows.json")
    parser.add_argument("--fit", choices=("all", "odd", "even"), default="all",
                        help="files to tune on, by their position in the sorted corpus")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="{}", help="JSON of DetectorSettings fields")
    parser.add_argument("--jitter", type=int, default=0, metavar="K",
                        help="score each candidate as the mean over K fixed jitters of it")
    parser.add_argument("--jitter-sigma", type=float, default=0.1)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        _load(args.data, args.labels)
        current: dict[str, float] = json.loads(args.start)
        msgspec.convert(current, DetectorSettings)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        print(f"nab_tune: {exc}", file=sys.stderr)
        return 1
    every = range(len(_corpus))
    fit = [k for k in every if args.fit == "all" or (k % 2 == 1) == (args.fit == "odd")]
    left_out = [k for k in every if k not in fit]
    halves = (fit[0::2], fit[1::2])
    rng = random.Random(args.seed)
    shake = random.Random(args.seed + 1_000)
    jitters = [{name: math.exp(shake.gauss(0.0, args.jitter_sigma)) for name in sorted(SPACE)}
               for _ in range(args.jitter)]

    with Pool(args.jobs, initializer=_load, initargs=(args.data, args.labels)) as pool:

        def evaluate(changes: dict[str, float],
                     smooth: bool = True) -> tuple[float, float, float, float | None]:
            variants = ([_jittered(changes, jitter) for jitter in jitters]
                        if smooth and jitters else [changes])
            try:
                for variant in variants:
                    msgspec.convert(variant, DetectorSettings)
            except msgspec.ValidationError:
                return (-math.inf, -math.inf, -math.inf, None)
            texts = [json.dumps(variant) for variant in variants]
            flat = pool.map(_scores, [(text, k) for text in texts for k in every])
            runs = [flat[i * len(every):(i + 1) * len(every)] for i in range(len(texts))]
            groups = (fit, halves[0], halves[1], left_out)
            means = [round(sum(_normalised(group, scores) for scores in runs) / len(runs), 2)
                     if group else None for group in groups]
            return (means[0] or 0.0, means[1] or 0.0, means[2] or 0.0, means[3])

        best = evaluate(current)
        print(f"start {best} {json.dumps(current)}", flush=True)
        for step in range(args.iterations):
            candidate = _neighbour(current, rng)
            result = evaluate(candidate)
            if (result[0] > best[0] + MIN_GAIN and result[1] >= best[1]
                    and result[2] >= best[2]):
                current, best = candidate, result
                print(f"{step} {result} {json.dumps(candidate)}", flush=True)
        point = evaluate(current, smooth=False)
    print(f"tuned files {best[0]} (halves {best[1]} / {best[2]})"
          + (f", left-out files {best[3]}" if best[3] is not None else "")
          + (f"; without jitter {point}" if jitters else ""))
    print(json.dumps(current))
    return 0


if __name__ == "__main__":
    sys.exit(main())
