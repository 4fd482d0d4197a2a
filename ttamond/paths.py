"""Where the daemon's files live: systemd's directories, else XDG, else the root defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ttamond.config import PathsConfig

DATABASE_NAME = "ttamond.db"
SOCKET_NAME = "control.sock"


class Paths(msgspec.Struct, frozen=True):
    """The resolved, absolute locations the daemon uses."""

    state_dir: Path
    runtime_dir: Path
    database: Path
    control_socket: Path

    @property
    def spool(self) -> Path:
        """The append-only spool beside the database."""
        return self.database.with_name(self.database.name + ".spool")


def resolve_paths(
    config: PathsConfig,
    *,
    environ: Mapping[str, str] | None = None,
    uid: int | None = None,
) -> Paths:
    """Turn the [paths] table into absolute paths.

    Order for each directory: the config value, systemd's `$STATE_DIRECTORY` /
    `$RUNTIME_DIRECTORY` (first entry when several are given), then for root
    `/var/lib/ttamond` and `/run/ttamond`, for anyone else the XDG folders.
    """
    env = os.environ if environ is None else environ
    user = os.getuid() if uid is None else uid
    state = _pick(config.state_dir, env.get("STATE_DIRECTORY"), _default_state(env, user))
    runtime = _pick(config.runtime_dir, env.get("RUNTIME_DIRECTORY"), _default_runtime(env, user))
    database = Path(config.database).expanduser() if config.database else state / DATABASE_NAME
    socket = (
        Path(config.control_socket).expanduser() if config.control_socket else runtime / SOCKET_NAME
    )
    return Paths(
        state_dir=state.absolute(),
        runtime_dir=runtime.absolute(),
        database=database.absolute(),
        control_socket=socket.absolute(),
    )


def default_config_file(
    *, environ: Mapping[str, str] | None = None, uid: int | None = None
) -> Path | None:
    """The config file used when none is named: `$TTAMOND_CONFIG`; under systemd with
    `ConfigurationDirectory=`, `$CONFIGURATION_DIRECTORY/ttamond.toml`; then the system or
    user location. Only a file that exists counts (but `$TTAMOND_CONFIG` always does);
    None means the embedded defaults."""
    env = os.environ if environ is None else environ
    if named := env.get("TTAMOND_CONFIG"):
        return Path(named)
    if systemd := env.get("CONFIGURATION_DIRECTORY"):
        candidate = Path(systemd.split(":")[0]) / "ttamond.toml"
        if candidate.is_file():
            return candidate
    user = os.getuid() if uid is None else uid
    if user == 0:
        candidate = Path("/etc/ttamond/ttamond.toml")
    else:
        config_home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        candidate = Path(config_home) / "ttamond" / "ttamond.toml"
    return candidate if candidate.is_file() else None


def _pick(configured: str, systemd: str | None, fallback: Path) -> Path:
    if configured:
        return Path(configured).expanduser()
    if systemd:
        return Path(systemd.split(":")[0])
    return fallback


def _default_state(env: Mapping[str, str], uid: int) -> Path:
    if uid == 0:
        return Path("/var/lib/ttamond")
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ttamond"


def _default_runtime(env: Mapping[str, str], uid: int) -> Path:
    if uid == 0:
        return Path("/run/ttamond")
    if base := env.get("XDG_RUNTIME_DIR"):
        return Path(base) / "ttamond"
    return Path(f"/tmp/ttamond-{uid}")
