"""The spool file: frames survive reopening, torn tails are cut, bad CRCs are skipped."""

from __future__ import annotations

from pathlib import Path

from ttamond.store.spool import Spool


def _filled(path: Path, payloads: list[bytes]) -> Spool:
    spool = Spool(path, max_bytes=1 << 20)
    spool.open()
    for payload in payloads:
        assert spool.append(payload)
    return spool


def test_frames_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    _filled(path, [b"one", b"two", b"three"])
    reopened = Spool(path, max_bytes=1 << 20)
    scan = reopened.open()
    assert (scan.frames, scan.torn_bytes, scan.corrupt_frames) == (3, 0, 0)
    assert [payload for _, payload in reopened.read_from(0)] == [b"one", b"two", b"three"]
    offsets = [end for end, _ in reopened.read_from(0)]
    assert [payload for _, payload in reopened.read_from(offsets[0])] == [b"two", b"three"]


def test_torn_tail_is_cut_counted_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    _filled(path, [b"one", b"two"])
    whole = path.read_bytes()
    path.write_bytes(whole[:-1])  # a crash in the middle of the second frame
    spool = Spool(path, max_bytes=1 << 20)
    scan = spool.open()
    assert (scan.frames, scan.torn_bytes) == (1, 8 + 3 - 1)
    assert spool.torn_tails == 1
    assert spool.append(b"three")
    assert [payload for _, payload in spool.read_from(0)] == [b"one", b"three"]


def test_a_header_cut_short_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    _filled(path, [b"one"])
    with path.open("ab") as file:
        file.write(b"\x00\x00")
    scan = Spool(path, max_bytes=1 << 20).open()
    assert (scan.frames, scan.torn_bytes) == (1, 2)


def test_bad_crc_frame_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    _filled(path, [b"one", b"two", b"six"])
    data = bytearray(path.read_bytes())
    data[8 + 3 + 8] ^= 0xFF  # flip a byte of "two"
    path.write_bytes(bytes(data))
    spool = Spool(path, max_bytes=1 << 20)
    scan = spool.open()
    assert (scan.frames, scan.corrupt_frames, scan.torn_bytes) == (2, 1, 0)
    assert [payload for _, payload in spool.read_from(0)] == [b"one", None, b"six"]


def test_cap_refuses_frames_and_clear_empties(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    spool = Spool(path, max_bytes=30)
    spool.open()
    assert spool.append(b"x" * 10)  # 18 bytes with its header
    assert not spool.append(b"y" * 10)  # would make 36
    assert spool.size == 18 and spool.frames == 1
    spool.clear()
    assert path.stat().st_size == 0 and spool.size == 0
    assert spool.append(b"y" * 10)


def test_missing_file_is_an_empty_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "none.spool", max_bytes=100)
    assert spool.open().frames == 0
    assert list(spool.read_from(0)) == []
