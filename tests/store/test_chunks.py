"""Chunk encoding: exact round trips, and how small real-looking series get."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttamond.store.chunks import ChunkError, decode, encode

times = st.lists(st.integers(min_value=0, max_value=2**40), unique=True).map(sorted)


@given(st.data())
def test_any_floats_round_trip_bit_for_bit(data: st.DataObject) -> None:
    timestamps = data.draw(times)
    values = data.draw(st.lists(st.floats(allow_nan=True), min_size=len(timestamps),
                                max_size=len(timestamps)))
    got_times, got_values = decode(encode(timestamps, values))
    assert got_times == timestamps
    assert len(got_values) == len(values)
    for got, want in zip(got_values, values, strict=True):
        assert got == want or (math.isnan(got) and math.isnan(want))


@given(st.data())
def test_decimal_and_integer_values_round_trip(data: st.DataObject) -> None:
    timestamps = data.draw(times)
    ints = data.draw(st.lists(st.integers(min_value=-(2**50), max_value=2**50),
                              min_size=len(timestamps), max_size=len(timestamps)))
    values = [i / 10 for i in ints]
    assert decode(encode(timestamps, values)) == (timestamps, values)


def test_a_counter_and_a_percentage_cost_a_few_bits_per_sample() -> None:
    rng = random.Random(7)
    timestamps = [1_700_000_000_000 + i * 1000 + rng.randint(0, 3) for i in range(3600)]
    counter, value = [], 10_000_000_000
    for _ in timestamps:
        value += rng.randint(0, 50_000)
        counter.append(float(value))
    percent = [round(rng.uniform(0, 100), 1) for _ in timestamps]
    assert len(encode(timestamps, counter)) / 3600 < 4
    assert len(encode(timestamps, percent)) / 3600 < 3
    assert len(encode(timestamps, [42.0] * 3600)) / 3600 < 0.6  # the timestamp jitter


def test_corrupt_chunks_raise_chunk_error() -> None:
    blob = encode([1, 2, 3], [1.5, 2.5, 3.25])
    with pytest.raises(ChunkError, match="corrupt chunk"):
        decode(blob[:-3])
    with pytest.raises(ChunkError, match="corrupt chunk"):
        decode(b"not zlib")
