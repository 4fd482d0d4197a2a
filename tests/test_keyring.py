"""Pseudonym keys in epochs: numbering, linkability, erasure lookups, retirement, file modes."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

import pytest

from ttamond.keyring import LEGACY, EpochUnavailable, Keyring
from ttamond.privacyops import key_audit_entries
from ttamond.pseudonyms import KeyFileUnsafe, Pseudonyms

DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC: day 20454, so weekly epoch 2922 begins


def keyring(directory: Path, now: float = START, *, keep_days: float = 30) -> Keyring:
    return Keyring(directory, rotate_every_days=7, keep_days=keep_days, now=now)


def test_epochs_are_numbered_from_the_unix_epoch(tmp_path: Path) -> None:
    ring = keyring(tmp_path / "keys")
    assert ring.current() == 2922
    assert ring.current(START + 7 * DAY - 1) == 2922
    assert ring.current(START + 7 * DAY) == 2923
    assert ring.epochs() == [2922, 2923]
    assert ring.drain_created() == [2922, 2923]
    assert ring.drain_created() == []


def test_key_files_are_private_and_32_bytes(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring(directory).current()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    key_file = directory / "epoch-2922.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    # Nothing else is left behind by the write-then-link creation.
    assert sorted(path.name for path in directory.iterdir()) == ["epoch-2922.key", "rotation"]


def test_pseudonyms_stable_within_an_epoch_and_unlinkable_across(tmp_path: Path) -> None:
    ring = keyring(tmp_path / "keys")
    first = ring.pseudonym("player-17")
    assert re.fullmatch(r"p2922:[0-9a-f]{24}", first)
    assert ring.pseudonym("player-17") == first
    assert ring.pseudonym("player-18") != first
    ring.current(START + 8 * DAY)
    later = ring.pseudonym("player-17")
    assert re.fullmatch(r"p2923:[0-9a-f]{24}", later)
    assert later.split(":")[1] != first.split(":")[1]
    # The earlier epoch's key is still there, so its pseudonyms can still be made.
    assert ring.pseudonym("player-17", 2922) == first


def test_a_restarted_keyring_reads_the_same_keys(tmp_path: Path) -> None:
    first = keyring(tmp_path / "keys").pseudonym("player-17")
    again = keyring(tmp_path / "keys", START + DAY)
    assert again.pseudonym("player-17") == first
    assert again.drain_created() == []


def test_pseudonyms_of_lists_every_live_epoch(tmp_path: Path) -> None:
    ring = keyring(tmp_path / "keys")
    made = [ring.pseudonym("player-17", ring.current(START + week * 7 * DAY)) for week in range(3)]
    assert ring.pseudonyms_of("player-17") == made


def test_unknown_epochs_are_refused(tmp_path: Path) -> None:
    ring = keyring(tmp_path / "keys")
    with pytest.raises(EpochUnavailable, match="epoch 2921 was retired; it has no key"):
        ring.pseudonym("player-17", 2921)
    with pytest.raises(EpochUnavailable, match="epoch 2930 is not in force yet"):
        ring.pseudonym("player-17", 2930)


def test_retire_destroys_keys_of_epochs_past_retention(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    ring = keyring(directory, keep_days=10)
    for week in range(4):
        ring.current(START + week * 7 * DAY)
    old = ring.pseudonym("player-17", 2922)
    # Epoch 2922 ends at START + 7 days; 10 days after that it may go, not before.
    assert ring.retire(START + 17 * DAY) == []
    assert ring.retire(START + 17 * DAY + 1) == [2922]
    assert ring.epochs() == [2923, 2924, 2925]
    assert not (directory / "epoch-2922.key").exists()
    with pytest.raises(EpochUnavailable, match="2922 was retired"):
        ring.pseudonym("player-17", 2922)
    assert old not in ring.pseudonyms_of("player-17")
    # The epoch in force is never retired, whatever keep_days says.
    assert 2925 not in keyring(directory, keep_days=0).retire(START + 21 * DAY + 1)


def test_a_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring(directory).current()
    key_file = directory / "epoch-2922.key"
    key_file.chmod(0o644)
    expected = re.escape(f"{key_file} has mode 0644; it holds a pseudonym key and must not be"
                         f" readable by others (chmod 600 {key_file})")
    with pytest.raises(KeyFileUnsafe, match=expected):
        keyring(directory).current()


def test_a_group_readable_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o750)
    directory.chmod(0o750)
    with pytest.raises(KeyFileUnsafe, match=re.escape(f"(chmod 700 {directory})")):
        keyring(directory)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring(directory)
    elsewhere = tmp_path / "elsewhere.key"
    elsewhere.write_bytes(os.urandom(32))
    elsewhere.chmod(0o600)
    (directory / "epoch-2922.key").symlink_to(elsewhere)
    with pytest.raises(KeyFileUnsafe, match="is a symbolic link"):
        keyring(directory).current()


def test_adopting_the_legacy_key_keeps_old_pseudonyms_findable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    legacy = state / "pseudonym.key"
    legacy.write_bytes(secrets.token_bytes(32))  # what ttamond before the keyring kept
    legacy.chmod(0o600)
    old = Pseudonyms(legacy.read_bytes()).of("player-17")
    ring = keyring(state / "keys", keep_days=10)
    adopted = ring.adopt_legacy(legacy, START + DAY)
    assert adopted.name == "legacy-2922.key"
    assert not legacy.exists()
    assert stat.S_IMODE(adopted.stat().st_mode) == 0o600
    assert ring.epochs() == []  # not an epoch: its pseudonyms carry none
    assert old in ring.pseudonyms_of("player-17")
    with pytest.raises(FileExistsError, match="holds an adopted legacy key already"):
        ring.adopt_legacy(adopted, START + DAY)
    # It retires with the epoch it was adopted in, as the data it covers does.
    assert ring.retire(START + 17 * DAY + 1) == [LEGACY]
    assert ring.legacy_path() is None


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rotate_every_days must be a positive"):
        Keyring(tmp_path, rotate_every_days=0, keep_days=1, now=START)
    with pytest.raises(ValueError, match="keep_days must be zero or a positive"):
        Keyring(tmp_path, rotate_every_days=1, keep_days=-1, now=START)


def test_a_reloaded_retention_applies_to_the_next_retirement(tmp_path: Path) -> None:
    ring = keyring(tmp_path / "keys", keep_days=30)
    for week in range(3):
        ring.current(START + week * 7 * DAY)
    assert ring.retire(START + 17 * DAY + 1) == []
    ring.keep_for(10)  # [privacy] keep_keys_days lowered by a reload
    assert ring.retire(START + 17 * DAY + 1) == [2922]
    with pytest.raises(ValueError, match="keep_days must be zero or a positive"):
        ring.keep_for(float("nan"))


def test_keys_of_a_changed_rotation_keep_their_own_calendar(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    weekly = Keyring(directory, rotate_every_days=7, keep_days=10, now=START)
    for week in range(2):
        weekly.current(START + week * 7 * DAY)
    before = {weekly.pseudonym("player-17", epoch) for epoch in (2922, 2923)}
    assert (directory / "rotation").read_text() == "604800\n"
    assert Keyring(directory, rotate_every_days=7, keep_days=10,
                   now=START).previous_rotation_days is None

    # The operator moves to 30-day epochs: read with the new numbering, the weekly files
    # would be epochs decades ahead that never retire.
    monthly = Keyring(directory, rotate_every_days=30, keep_days=10, now=START + 8 * DAY)
    assert monthly.previous_rotation_days == 7
    assert (directory / "rotation").read_text() == "2592000\n"
    assert sorted(p.name for p in (directory / "rotation-604800").iterdir()) == [
        "epoch-2922.key", "epoch-2923.key"]
    now_epoch = monthly.current()
    assert monthly.epochs() == [now_epoch]
    # Erasure still finds what the weekly keys pseudonymised.
    assert before <= set(monthly.pseudonyms_of("player-17"))
    # And they retire by their own calendar: week 2922 ends at START + 7 days, 2923 at
    # START + 14 days, and each key is kept 10 days after.
    assert monthly.retire(START + 17 * DAY) == []
    assert monthly.retire(START + 24 * DAY) == [2922]
    assert monthly.retire(START + 24 * DAY + 1) == [2923]
    assert not (directory / "rotation-604800").exists()
    assert monthly.epochs() == [now_epoch]


def test_an_unreadable_rotation_record_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring(directory)
    (directory / "rotation").write_text("a week\n")
    with pytest.raises(KeyFileUnsafe, match="rotation in seconds"):
        keyring(directory)


def test_a_rotation_change_is_audited_once(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring(directory).current()
    moved = Keyring(directory, rotate_every_days=30, keep_days=10, now=START + DAY)
    first = key_audit_entries(moved, START + DAY)
    assert [entry.detail for entry in first if entry.action == "settings_changed"] == [
        {"rotate_every_days": {"before": 7.0, "after": 30.0},
         "previous_keys": "rotation-604800"}]
    assert not [e for e in key_audit_entries(moved, START + DAY) if e.action == "settings_changed"]
