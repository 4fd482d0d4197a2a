"""Compact encoding of one series' samples: delta-of-delta times, scaled or XOR'd values.

A chunk holds the samples of one series over one hour. Layout before zlib:

    varint count | varint first ts | zigzag varint first delta | zigzag dod ...
    byte value mode | values...

Value modes:
- SCALED (0..6): every value is an integer after multiplying by 10**mode (counters,
  byte counts, psutil's one-decimal percentages): zigzag varint deltas of the scaled
  integers, usually one or two bytes.
- XOR (255): anything else: the float's bits XOR the previous float's bits, written as
  one header byte (leading zero bytes << 4 | trailing zero bytes) and the bytes between;
  a repeated value is the header 0x88 alone.

zlib then squeezes the repetition out of both streams.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence

_XOR = 255
_MAX_SCALE = 6
_REPEAT = 0x88
_DOUBLE = struct.Struct(">d")
_BITS = struct.Struct(">Q")


class ChunkError(Exception):
    """A chunk that cannot be decoded (corrupt or from a newer format)."""


def encode(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
    """Encode samples sorted by time (distinct timestamps)."""
    if len(timestamps) != len(values):
        raise ValueError("timestamps and values differ in length")
    out = bytearray()
    _varint(out, len(timestamps))
    if timestamps:
        _varint(out, timestamps[0])
        previous_delta = 0
        for before, now in itertools.pairwise(timestamps):
            delta = now - before
            _varint(out, _zigzag(delta - previous_delta))
            previous_delta = delta
        scale = _scale_for(values)
        out.append(_XOR if scale is None else scale)
        if scale is None:
            _encode_xor(out, values)
        else:
            _encode_scaled(out, values, scale)
    return zlib.compress(bytes(out), 6)


def decode(blob: bytes) -> tuple[list[int], list[float]]:
    """The (timestamps, values) a chunk holds. Raises ChunkError."""
    try:
        data = zlib.decompress(blob)
        reader = _Reader(data)
        count = reader.varint()
        if count == 0:
            return [], []
        timestamps = [reader.varint()]
        delta = 0
        for _ in range(count - 1):
            delta += _unzigzag(reader.varint())
            timestamps.append(timestamps[-1] + delta)
        mode = reader.byte()
        if mode == _XOR:
            values = _decode_xor(reader, count)
        elif mode <= _MAX_SCALE:
            values = _decode_scaled(reader, count, mode)
        else:
            raise ChunkError(f"unknown value mode {mode}")
    except (zlib.error, IndexError, struct.error) as exc:
        raise ChunkError(f"corrupt chunk: {exc}") from exc
    return timestamps, values


def _scale_for(values: Sequence[float]) -> int | None:
    for scale in range(_MAX_SCALE + 1):
        factor = 10**scale
        if all(math.isfinite(v) and abs(v) < 2**53 / factor
               and round(v * factor) / factor == v for v in values):
            return scale
    return None


def _encode_scaled(out: bytearray, values: Sequence[float], scale: int) -> None:
    factor = 10**scale
    previous = 0
    for value in values:
        scaled = round(value * factor)
        _varint(out, _zigzag(scaled - previous))
        previous = scaled


def _decode_scaled(reader: _Reader, count: int, scale: int) -> list[float]:
    factor = 10**scale
    values: list[float] = []
    current = 0
    for _ in range(count):
        current += _unzigzag(reader.varint())
        values.append(current / factor if scale else float(current))
    return values


def _encode_xor(out: bytearray, values: Sequence[float]) -> None:
    previous = 0
    for value in values:
        bits = _BITS.unpack(_DOUBLE.pack(value))[0]
        xor = bits ^ previous
        previous = bits
        if xor == 0:
            out.append(_REPEAT)
            continue
        raw = xor.to_bytes(8, "big")
        leading = min(len(raw) - len(raw.lstrip(b"\0")), 7)
        trailing = min(len(raw) - len(raw.rstrip(b"\0")), 7 - leading)
        out.append(leading << 4 | trailing)
        out += raw[leading : 8 - trailing]


def _decode_xor(reader: _Reader, count: int) -> list[float]:
    values: list[float] = []
    previous = 0
    for _ in range(count):
        header = reader.byte()
        if header != _REPEAT:
            leading, trailing = header >> 4, header & 0x0F
            middle = reader.take(8 - leading - trailing)
            previous ^= int.from_bytes(b"\0" * leading + middle + b"\0" * trailing, "big")
        values.append(_DOUBLE.unpack(_BITS.pack(previous))[0])
    return values


def _zigzag(number: int) -> int:
    return number * 2 if number >= 0 else -number * 2 - 1


def _unzigzag(number: int) -> int:
    return number // 2 if number % 2 == 0 else -(number + 1) // 2


def _varint(out: bytearray, number: int) -> None:
    if number < 0:
        raise ValueError(f"varint cannot hold {number}")
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def byte(self) -> int:
        value = self.data[self.offset]
        self.offset += 1
        return value

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise IndexError("chunk ends early")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def varint(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
