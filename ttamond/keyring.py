"""Pseudonym keys in epochs: one secret per period, so pseudonyms from different periods
cannot be linked, and old keys are destroyed once the data they cover has expired."""

from __future__ import annotations

import errno
import hashlib
import hmac
import math
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Final

from ttamond.pseudonyms import KEY_BYTES, KeyFileUnsafe

DAY_SECONDS: Final = 86_400.0
_EPOCH_FILE: Final = re.compile(r"epoch-(0|[1-9][0-9]*)\.key")
_LEGACY_FILE: Final = re.compile(r"legacy-(0|[1-9][0-9]*)\.key")
_OLD_ROTATION: Final = re.compile(r"rotation-([1-9][0-9]*)")
_ROTATION_FILE: Final = "rotation"
_CACHE_LIMIT: Final = 65_536
LEGACY: Final = -1
"""How `Keyring.retire` reports the adopted legacy key among the epochs it retired."""


class EpochUnavailable(LookupError):
    """No key exists for the epoch asked for: it was retired, or it is not yet in force."""


class Keyring:
    """The pseudonym keys of one state directory, one file per epoch.

    Epochs are numbered from the Unix epoch: epoch ``N`` covers the wall-clock times
    ``[N * R, (N + 1) * R)`` where ``R`` is ``rotate_every_days`` in seconds, so every
    host with the same setting agrees on the numbering and a restart never renumbers.
    The key of epoch ``N`` lives in ``epoch-<N>.key`` (32 random bytes, mode 0600).

    ``now`` is the wall-clock time (seconds) the keyring starts at; later readings are
    passed to `current` and `retire`. Methods read and write small files and so block:
    call them from a worker thread where that matters (they run once per epoch, apart
    from `pseudonym`, which is in memory once its key is loaded).

    Raises KeyFileUnsafe when the directory can be read by group or other, or is not a
    directory; OSError when it cannot be created.
    """

    def __init__(
        self, directory: Path, *, rotate_every_days: float, keep_days: float, now: float
    ) -> None:
        if not (math.isfinite(rotate_every_days) and rotate_every_days > 0):
            raise ValueError("keyring: rotate_every_days must be a positive number of days")
        if not (math.isfinite(keep_days) and keep_days >= 0):
            raise ValueError("keyring: keep_days must be zero or a positive number of days")
        self.directory = directory
        self.rotate_seconds = rotate_every_days * DAY_SECONDS
        self.keep_seconds = keep_days * DAY_SECONDS
        self._now = now
        self._keys: dict[int, bytes] = {}
        self._cache: dict[tuple[int, str], str] = {}
        self._created: list[int] = []
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_directory(directory)
        self.previous_rotation_days = self._settle_rotation()
        """The rotation the keys on disk were made under, when the setting has changed
        since (its keys moved aside, see `_settle_rotation`); None otherwise."""
        self._rotation_change = self.previous_rotation_days

    def keep_for(self, keep_days: float) -> None:
        """Keep retired epochs' keys this many days from now on (a reloaded setting);
        the next upkeep retires by it. Raises ValueError for a negative or odd number."""
        if not (math.isfinite(keep_days) and keep_days >= 0):
            raise ValueError("keyring: keep_days must be zero or a positive number of days")
        self.keep_seconds = keep_days * DAY_SECONDS

    def epoch_at(self, timestamp: float) -> int:
        """The epoch in force at ``timestamp`` (seconds since the Unix epoch)."""
        return math.floor(timestamp / self.rotate_seconds)

    def current(self, now: float | None = None) -> int:
        """The epoch in force at ``now`` (default: the last reading given), creating its
        key if it has none yet. Raises KeyFileUnsafe and OSError as `load` does."""
        if now is not None:
            self._now = now
        epoch = self.epoch_at(self._now)
        if epoch not in self._keys:
            self._keys[epoch] = self._load_or_create(epoch)
        return epoch

    def pseudonym(self, identifier: str, epoch: int | None = None) -> str:
        """The pseudonym of ``identifier`` in ``epoch`` (default: the current one):
        ``p<epoch>:`` and 24 hex characters of HMAC-SHA256 under that epoch's key.

        Raises EpochUnavailable for a past epoch whose key is gone or a future epoch;
        KeyFileUnsafe when its key file is unsafe.
        """
        if epoch is None:
            epoch = self.current()
        found = self._cache.get((epoch, identifier))
        if found is None:
            digest = hmac.new(self._key(epoch), identifier.encode(), hashlib.sha256).hexdigest()
            found = f"p{epoch}:{digest[:24]}"
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[(epoch, identifier)] = found
        return found

    def pseudonyms_of(self, identifier: str) -> list[str]:
        """Every pseudonym ``identifier`` can have in stored data: one per epoch whose key
        still exists, oldest first, then the one under an adopted legacy key (``p:``
        and 24 hex characters, as `ttamond.pseudonyms.Pseudonyms` made them). This is
        what an erasure searches for."""
        found = [self.pseudonym(identifier, epoch) for epoch in self.epochs()]
        legacy = self.legacy_path()
        if legacy is not None:
            digest = hmac.new(_read_key(legacy), identifier.encode(), hashlib.sha256)
            found.append(f"p:{digest.hexdigest()[:24]}")
        for folder, _ in self._previous_rotations():
            for entry in sorted(folder.iterdir()):
                match = _EPOCH_FILE.fullmatch(entry.name)
                prefix = (f"p{match[1]}:" if match is not None
                          else "p:" if _LEGACY_FILE.fullmatch(entry.name) else None)
                if prefix is not None:
                    digest = hmac.new(_read_key(entry), identifier.encode(), hashlib.sha256)
                    found.append(f"{prefix}{digest.hexdigest()[:24]}")
        return found

    def epochs(self) -> list[int]:
        """The epochs that have a key file, oldest first."""
        return sorted(
            int(match[1])
            for entry in self.directory.iterdir()
            if (match := _EPOCH_FILE.fullmatch(entry.name)) is not None
        )

    def legacy_path(self) -> Path | None:
        """The adopted legacy key file (``legacy-<N>.key``), if there is one."""
        for entry in sorted(self.directory.iterdir()):
            if _LEGACY_FILE.fullmatch(entry.name):
                return entry
        return None

    def drain_rotation_change(self) -> float | None:
        """The previous rotation in days if its keys moved aside at start, once (for the
        audit trail); None otherwise."""
        changed, self._rotation_change = self._rotation_change, None
        return changed

    def drain_created(self) -> list[int]:
        """The epochs whose key this keyring created since the last call (for the audit
        trail: the first is ``key_created``, later ones ``key_rotated``)."""
        created, self._created = self._created, []
        return created

    def retire(self, now: float) -> list[int]:
        """Destroy the keys of epochs that ended more than ``keep_days`` before ``now``:
        the data they pseudonymised is gone by retention, and without the key nobody can
        link those pseudonyms to a person again. An adopted legacy key retires with the
        epoch it was last used in. Returns the epochs retired (the legacy key as `LEGACY`).

        The file is overwritten with zeros and synced before it is unlinked and the
        directory synced; on copy-on-write filesystems and flash the old blocks may
        survive, which only full-disk encryption covers. Raises OSError.
        """
        self._now = max(self._now, now)
        retired: list[int] = []
        for epoch in self.epochs():
            if self._ended_long_ago(epoch, now):
                _destroy(self.directory / f"epoch-{epoch}.key")
                self._forget(epoch)
                retired.append(epoch)
        legacy = self.legacy_path()
        if legacy is not None:
            match = _LEGACY_FILE.fullmatch(legacy.name)
            if match is not None and self._ended_long_ago(int(match[1]), now):
                _destroy(legacy)
                retired.append(LEGACY)
        for folder, seconds in self._previous_rotations():
            for entry in sorted(folder.iterdir()):
                match = _EPOCH_FILE.fullmatch(entry.name) or _LEGACY_FILE.fullmatch(entry.name)
                if match is not None and self._ended_long_ago(int(match[1]), now, seconds):
                    _destroy(entry)
                    retired.append(LEGACY if entry.name.startswith("legacy") else int(match[1]))
            if not any(folder.iterdir()):
                folder.rmdir()
        if retired:
            _sync_directory(self.directory)
        return retired

    def adopt_legacy(self, path: Path, now: float) -> Path:
        """Move the single key of earlier releases (``pseudonym.key``) into the keyring.

        It is kept as ``legacy-<N>.key``, where N is the epoch in force at ``now``, not
        at the file's mtime: the mtime says when the key was made, but it pseudonymised
        data until today, so it must live until today's data expires. It stays out of
        `epochs` (its pseudonyms read ``p:``, without an epoch), is listed by
        `pseudonyms_of`, and is destroyed by `retire` with epoch N. Returns its new path.

        Raises KeyFileUnsafe when the file is unsafe, FileExistsError when a legacy key
        was adopted before, OSError when it cannot be moved (another filesystem).
        """
        _read_key(path)
        existing = self.legacy_path()
        if existing is not None:
            raise FileExistsError(f"{existing} holds an adopted legacy key already")
        target = self.directory / f"legacy-{self.epoch_at(now)}.key"
        # link then unlink rather than rename: rename would replace a file of that name.
        target.hardlink_to(path)
        path.unlink()
        _sync_directory(self.directory)
        _sync_directory(path.parent)
        return target

    def _ended_long_ago(self, epoch: int, now: float, rotate_seconds: float | None = None,
                        ) -> bool:
        period = self.rotate_seconds if rotate_seconds is None else rotate_seconds
        return now - (epoch + 1) * period > self.keep_seconds

    def _settle_rotation(self) -> float | None:
        """A key file names only its epoch number, and the number depends on the
        rotation (``floor(t / R)``): under another R the same file would read as an epoch
        far in the past (destroyed early) or in the future (never destroyed, its
        pseudonyms linkable for ever). So the rotation is recorded beside the keys, and
        keys made under a previous one move to ``rotation-<seconds>/``, where they keep
        their own numbering: erasure still finds their pseudonyms and `retire` destroys
        them by their own calendar. Returns the previous rotation in days, if it moved."""
        record = self.directory / _ROTATION_FILE
        seconds = round(self.rotate_seconds)
        try:
            recorded = int(record.read_text().strip())
        except FileNotFoundError:
            recorded = seconds  # keys from before rotations were recorded: the current one
        except ValueError:
            raise KeyFileUnsafe(f"{record} should hold the keys' rotation in seconds") from None
        moved = None
        if recorded != seconds:
            aside = self.directory / f"rotation-{recorded}"
            aside.mkdir(mode=0o700, exist_ok=True)
            for entry in sorted(self.directory.iterdir()):
                if _EPOCH_FILE.fullmatch(entry.name) or _LEGACY_FILE.fullmatch(entry.name):
                    entry.rename(aside / entry.name)
            _sync_directory(aside)
            moved = recorded / DAY_SECONDS
        if moved is not None or not record.exists():
            temporary = record.with_name(f".{_ROTATION_FILE}.{secrets.token_hex(8)}")
            temporary.write_text(f"{seconds}\n")
            temporary.replace(record)
            _sync_directory(self.directory)
        return moved

    def _previous_rotations(self) -> list[tuple[Path, float]]:
        """The folders of keys made under earlier rotations, with their rotation (s)."""
        return sorted((entry, float(match[1])) for entry in self.directory.iterdir()
                      if (match := _OLD_ROTATION.fullmatch(entry.name)) and entry.is_dir())

    def _forget(self, epoch: int) -> None:
        self._keys.pop(epoch, None)
        self._cache = {key: value for key, value in self._cache.items() if key[0] != epoch}

    def _key(self, epoch: int) -> bytes:
        key = self._keys.get(epoch)
        if key is not None:
            return key
        path = self.directory / f"epoch-{epoch}.key"
        in_force = self.epoch_at(self._now)
        if epoch == in_force:
            key = self._load_or_create(epoch)
        elif path.exists():
            key = _read_key(path)
        else:
            state = "is not in force yet" if epoch > in_force else "was retired"
            raise EpochUnavailable(f"keyring: epoch {epoch} {state}; it has no key")
        self._keys[epoch] = key
        return key

    def _load_or_create(self, epoch: int) -> bytes:
        path = self.directory / f"epoch-{epoch}.key"
        if not path.exists() and _create_key(path):
            self._created.append(epoch)
        return _read_key(path)


def _check_directory(directory: Path) -> None:
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise KeyFileUnsafe(f"{directory} is not a directory; it should hold the pseudonym keys")
    if info.st_mode & 0o077:
        raise KeyFileUnsafe(
            f"{directory} has mode {stat.S_IMODE(info.st_mode):04o}; it holds the pseudonym"
            f" keys and must not be open to others (chmod 700 {directory})"
        )


def _read_key(path: Path) -> bytes:
    # Checked on the open descriptor, so the file cannot be swapped between check and read.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise KeyFileUnsafe(f"{path} is a symbolic link, not a key file") from error
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileUnsafe(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileUnsafe(
                f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; it holds a pseudonym key"
                f" and must not be readable by others (chmod 600 {path})"
            )
        key = handle.read(4 * KEY_BYTES)
    if len(key) < 16:
        raise KeyFileUnsafe(f"{path} holds {len(key)} bytes; a pseudonym key needs 32")
    return key


def _create_key(path: Path) -> bool:
    # The key is written and synced under a private name, then linked into place: the
    # link fails if the name exists, so two daemons starting at once cannot both write
    # a key, and the loser never reads a half-written one. Returns whether ours won.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            path.hardlink_to(temporary)
        except FileExistsError:
            return False
    finally:
        temporary.unlink()
    _sync_directory(path.parent)
    return True


def _destroy(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    with os.fdopen(fd, "wb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.write(bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
