"""The NAB scorer on hand-made files whose scores can be worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ttamond.analytics.nab import (
    PROFILES,
    STANDARD,
    LabelledSeries,
    Profile,
    load_corpus,
    normalise,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep,
    two_fold,
)

ROWS = 1000  # probation: the first 150 rows
LEFT, RIGHT = 400, 499  # one window, 100 rows wide
LOW_FN = next(p for p in PROFILES if p.name == "reward_low_FN")


def series(windows: list[tuple[int, int]], rows: int = ROWS, name: str = "t/a.csv"
           ) -> LabelledSeries:
    """A file with one row a second from 0; windows given in rows."""
    return LabelledSeries(name=name, timestamps=[float(i) for i in range(rows)],
                          values=[0.0] * rows,
                          windows=[(float(a), float(b)) for a, b in windows])


def firing_at(*rows: int, length: int = ROWS) -> list[float]:
    scores = [0.0] * length
    for row in rows:
        scores[row] = 1.0
    return scores


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probation_rows(ROWS) == 150
    assert probation_rows(1243) == 186
    assert probation_rows(15902) == 750


def test_a_detection_at_the_left_edge_earns_exactly_a_tp() -> None:
    score = score_file(series([(LEFT, RIGHT)]), firing_at(LEFT), 0.5)
    assert (score.tp, score.fp, score.fn) == (1, 0, 0)
    assert score.raw == pytest.approx(STANDARD.tp)


def test_a_later_detection_in_the_window_earns_less() -> None:
    row = 450  # position -(499 - 450 + 1) / 100 = -0.5
    score = score_file(series([(LEFT, RIGHT)]), firing_at(row), 0.5)
    expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0)
    assert score.raw == pytest.approx(expected)
    assert 0.5 < score.raw < 1.0
    at_right_edge = score_file(series([(LEFT, RIGHT)]), firing_at(RIGHT), 0.5)
    assert 0.0 < at_right_edge.raw < score.raw


def test_a_false_positive_before_any_window_costs_a_full_fp() -> None:
    score = score_file(series([]), firing_at(200), 0.5)
    assert (score.tp, score.fp, score.fn) == (0, 1, 0)
    assert score.raw == pytest.approx(-STANDARD.fp)


def test_a_false_positive_after_a_window_is_weighted_by_its_distance() -> None:
    file = series([(LEFT, RIGHT)])
    near = score_file(file, firing_at(LEFT, 510), 0.5)
    far = score_file(file, firing_at(LEFT, 600), 0.5)
    very_far = score_file(file, firing_at(LEFT, 900), 0.5)
    assert near.fp == far.fp == very_far.fp == 1
    # q = |499 - row| / (100 - 1); a false positive costs A_FP * sigmoid(q).
    assert near.raw == pytest.approx(1.0 + STANDARD.fp * scaled_sigmoid(11 / 99))
    assert far.raw == pytest.approx(1.0 + STANDARD.fp * scaled_sigmoid(101 / 99))
    assert very_far.raw == pytest.approx(1.0 - STANDARD.fp)  # past 3 widths: -1 exactly
    assert 1.0 > near.raw > far.raw > very_far.raw


def test_detections_in_the_probation_period_are_ignored() -> None:
    score = score_file(series([]), firing_at(10, 100, 149), 0.5)
    assert (score.tp, score.fp, score.fn, score.raw) == (0, 0, 0, 0.0)


def test_a_missed_window_costs_a_fn() -> None:
    standard = score_file(series([(LEFT, RIGHT)]), [0.0] * ROWS, 0.5)
    low_fn = score_file(series([(LEFT, RIGHT)]), [0.0] * ROWS, 0.5, LOW_FN)
    assert (standard.tp, standard.fn) == (0, 1)
    assert standard.raw == pytest.approx(-1.0)
    assert low_fn.raw == pytest.approx(-2.0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    first_only = score_file(series([(LEFT, RIGHT)]), firing_at(410), 0.5)
    many = score_file(series([(LEFT, RIGHT)]), firing_at(410, 420, 430, 499), 0.5)
    assert (many.tp, many.fp) == (1, 0)
    assert many.raw == pytest.approx(first_only.raw)


def test_the_threshold_decides_what_is_a_detection() -> None:
    scores = [0.0] * ROWS
    scores[LEFT] = 0.7
    scores[300] = 0.4
    file = series([(LEFT, RIGHT)])
    assert score_file(file, scores, 0.5).raw == pytest.approx(1.0)
    assert score_file(file, scores, 0.4).raw == pytest.approx(1.0 - STANDARD.fp)
    assert score_file(file, scores, 0.7).raw == pytest.approx(1.0)  # at least: detected


def test_normalisation_puts_null_at_0_and_perfect_at_100() -> None:
    corpus = [series([(LEFT, RIGHT), (700, 749)], name="t/a.csv"),
              series([(300, 399)], rows=800, name="t/b.csv"),
              series([], name="t/none.csv")]
    null = [[0.0] * ROWS, [0.0] * 800, [0.0] * ROWS]
    perfect = [firing_at(LEFT, 700), firing_at(300, length=800), [0.0] * ROWS]
    for profile in PROFILES:
        null_files = score_corpus(corpus, null, 0.5, profile)
        assert normalise(sum(f.raw for f in null_files), 3, profile) == pytest.approx(0.0)
        perfect_files = score_corpus(corpus, perfect, 0.5, profile)
        assert normalise(sum(f.raw for f in perfect_files), 3, profile) == pytest.approx(100.0)
    by_profile = {r.profile: r for r in sweep(corpus, perfect)}
    assert all(r.normalised == pytest.approx(100.0) for r in by_profile.values())
    assert all(r.normalised == pytest.approx(0.0) for r in sweep(corpus, null))
    assert all(math.isinf(r.threshold) for r in sweep(corpus, null))


def test_the_sweep_finds_the_best_corpus_wide_threshold() -> None:
    corpus = [series([(LEFT, RIGHT)], name="t/a.csv"), series([], name="t/b.csv")]
    a = [0.0] * ROWS
    a[LEFT + 50] = 0.6  # the window, a little late
    a[300] = 0.3  # a false positive below it
    b = [0.0] * ROWS
    b[500] = 0.5  # a false positive that a 0.6 threshold avoids
    b[600] = 0.9  # one that costs less than the window earns
    results = {r.profile: r for r in sweep(corpus, [a, b])}
    standard = results["standard"]
    assert standard.threshold == 0.6
    files = score_corpus(corpus, [a, b], standard.threshold)
    assert standard.raw == pytest.approx(sum(f.raw for f in files))
    expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0) - STANDARD.fp
    assert standard.raw == pytest.approx(expected)
    assert standard.normalised == pytest.approx(normalise(expected, 1))


def test_a_profile_with_costly_false_positives_may_prefer_silence() -> None:
    corpus = [series([(LEFT, RIGHT)])]
    scores = [0.0] * ROWS
    scores[RIGHT] = 0.9  # earns almost nothing...
    for row in range(160, 200):
        scores[row] = 0.95  # ...and these 40 cost far more
    strict = Profile("strict", tp=1.0, fp=1.0, fn=1.0)
    (result,) = sweep(corpus, [scores], [strict])
    assert math.isinf(result.threshold)
    assert result.raw == pytest.approx(-1.0)


def test_two_fold_scores_each_half_at_the_threshold_the_other_chose() -> None:
    corpus = [series([(LEFT, RIGHT)], name=f"t/{n}.csv") for n in "abcd"]
    odd = firing_at(LEFT)
    odd[LEFT] = 0.6  # files 1 and 3: a 0.6 threshold catches their windows
    even = firing_at(LEFT)
    even[LEFT] = 0.9
    noisy_even = list(even)
    noisy_even[300] = 0.7  # file 2: a false positive that only a 0.9 threshold avoids
    by_half = {f.tuned_on: f for f in two_fold(corpus, [odd, noisy_even, odd, even])}
    assert by_half["odd"].threshold == 0.6
    assert by_half["odd"].tuned == pytest.approx(100.0)
    # The even files at 0.6: both windows at their left edge, one false positive.
    assert by_half["odd"].held_out == pytest.approx(normalise(2.0 - STANDARD.fp, 2))
    assert by_half["even"].threshold == 0.9
    assert by_half["even"].tuned == pytest.approx(100.0)
    assert by_half["even"].held_out == pytest.approx(0.0)  # 0.9 misses the odd files' 0.6


def test_two_fold_refuses_a_half_without_windows() -> None:
    corpus = [series([(LEFT, RIGHT)], name="t/a.csv"), series([], name="t/b.csv")]
    with pytest.raises(ValueError, match="without anomaly windows cannot be normalised"):
        two_fold(corpus, [firing_at(LEFT), [0.0] * ROWS])


def test_scores_must_match_the_rows() -> None:
    with pytest.raises(ValueError, match=r"t/a.csv: 3 scores for 1000 rows"):
        score_file(series([]), [0.0, 0.0, 0.0], 0.5)


def test_load_corpus_reads_the_nab_layout(tmp_path: Path) -> None:
    data = tmp_path / "data" / "realThings"
    data.mkdir(parents=True)
    (data / "a.csv").write_text("timestamp,value\n2014-04-01 00:00:00,1.5\n"
                                "2014-04-01 00:05:00,2\n2014-04-01 00:10:00,-3\n")
    labels = tmp_path / "windows.json"
    labels.write_text(json.dumps({
        "realThings/a.csv": [["2014-04-01 00:05:00.000000", "2014-04-01 00:10:00.000000"]],
        "realThings/held_back.csv": [],
    }))
    (corpus_file,) = load_corpus(tmp_path / "data", labels)
    assert corpus_file.name == "realThings/a.csv"
    assert corpus_file.values == [1.5, 2.0, -3.0]
    assert corpus_file.timestamps[1] - corpus_file.timestamps[0] == 300.0
    assert corpus_file.timestamps[0] == 1396310400.0  # UTC
    assert corpus_file.windows == [(corpus_file.timestamps[1], corpus_file.timestamps[2])]


def test_load_corpus_refuses_a_file_without_labels(tmp_path: Path) -> None:
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "x" / "b.csv").write_text("timestamp,value\n2014-04-01 00:00:00,1\n")
    labels = tmp_path / "windows.json"
    labels.write_text("{}")
    with pytest.raises(ValueError, match=r"no windows for x/b.csv \(give \[\] for none\)"):
        load_corpus(tmp_path / "data", labels)


def test_load_corpus_names_a_bad_row(tmp_path: Path) -> None:
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "x" / "b.csv").write_text(
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,lots\n")
    labels = tmp_path / "windows.json"
    labels.write_text('{"x/b.csv": []}')
    with pytest.raises(ValueError, match=r"b.csv:3: could not convert string to float"):
        load_corpus(tmp_path / "data", labels)


def test_load_corpus_refuses_rows_out_of_time_order(tmp_path: Path) -> None:
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "x" / "b.csv").write_text(
        "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n")
    labels = tmp_path / "windows.json"
    labels.write_text('{"x/b.csv": []}')
    with pytest.raises(ValueError, match=r"b.csv:3: timestamp 2014-04-01 00:00:00 goes back"):
        load_corpus(tmp_path / "data", labels)
