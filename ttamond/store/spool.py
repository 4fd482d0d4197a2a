"""Append-only spool of batches the database could not take: CRC-checked, fsync'd frames.

Frame layout: 4-byte big-endian payload length, 4-byte big-endian CRC32 of the
payload, then the payload (msgpack). A frame that ends before its length says is a
torn tail (a crash mid-append); it is cut off and counted. A frame whose CRC does not
match is skipped and counted.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

_HEADER = struct.Struct(">II")
MAX_FRAME_BYTES = 64 * 1024 * 1024


class SpoolScan(msgspec.Struct, frozen=True):
    """What opening the spool found."""

    frames: int
    bytes: int
    torn_bytes: int
    corrupt_frames: int


class Spool:
    """A size-capped append-only file of frames, replayed oldest first."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.frames = 0
        self.size = 0
        self.torn_tails = 0
        self.corrupt_frames = 0

    def open(self) -> SpoolScan:
        """Scan the file, cut a torn tail, and count what is there."""
        if not self.path.exists():
            self.frames = self.size = 0
            return SpoolScan(frames=0, bytes=0, torn_bytes=0, corrupt_frames=0)
        good_end = 0
        frames = corrupt = 0
        with self.path.open("rb") as file:
            data = file.read()
        for end, payload in _parse(data):
            good_end = end
            if payload is None:
                corrupt += 1
            else:
                frames += 1
        torn = len(data) - good_end
        if torn:
            with self.path.open("r+b") as file:
                file.truncate(good_end)
                os.fsync(file.fileno())
            self.torn_tails += 1
        self.frames = frames
        self.size = good_end
        self.corrupt_frames += corrupt
        return SpoolScan(frames=frames, bytes=good_end, torn_bytes=torn, corrupt_frames=corrupt)

    def append(self, payload: bytes) -> bool:
        """Write one frame and fsync it. Returns False, writing nothing, when the frame
        would take the spool past its cap. Raises OSError when the disk refuses."""
        frame_size = _HEADER.size + len(payload)
        if self.size + frame_size > self.max_bytes or len(payload) > MAX_FRAME_BYTES:
            return False
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, frame)
            if written != len(frame):
                os.ftruncate(fd, self.size)
                raise OSError(f"short write to spool {self.path}: {written} of {len(frame)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.size += frame_size
        self.frames += 1
        return True

    def read_from(self, offset: int) -> Iterator[tuple[int, bytes | None]]:
        """Frames at or after `offset`: (offset after the frame, payload or None when
        its CRC does not match)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(offset)
            while len(header := file.read(_HEADER.size)) == _HEADER.size:
                length, crc = _HEADER.unpack(header)
                if length > MAX_FRAME_BYTES:
                    return
                payload = file.read(length)
                if len(payload) < length:
                    return
                offset += _HEADER.size + length
                yield offset, (payload if zlib.crc32(payload) == crc else None)

    def clear(self) -> None:
        """Empty the spool once everything in it is in the database."""
        with self.path.open("wb") as file:
            os.fsync(file.fileno())
        self.size = 0
        self.frames = 0


def _parse(data: bytes) -> Iterator[tuple[int, bytes | None]]:
    """Yield (end offset, payload or None for a CRC mismatch) for each whole frame."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > MAX_FRAME_BYTES or start + length > len(data):
            return
        payload = data[start : start + length]
        offset = start + length
        yield offset, (payload if zlib.crc32(payload) == crc else None)
