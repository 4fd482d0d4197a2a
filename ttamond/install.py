"""`ttamond service install|uninstall`: the systemd units, written for this installation.

It writes unit files and prints the systemctl commands to run; it never runs systemctl
itself, so what changes on the host stays the administrator's decision.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ttamond import __version__

SERVICE = "ttamond.service"
SOCKET = "ttamond.socket"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")

MARKER = "# Written by `ttamond service install`"
"""First line of every unit it writes: uninstall removes only files that carry it."""

TEMPLATE_EXEC_START = "ExecStart=/usr/local/bin/ttamond run"

SYSTEM_ONLY = frozenset({
    # A per-user service manager has no network-online.target.
    "After", "Wants",
    # Users and capabilities: a user manager runs everything as its user, with none.
    "DynamicUser", "User", "CapabilityBoundingSet", "AmbientCapabilities",
    # The template's only Environment= points the config at /etc/ttamond; a user's
    # daemon reads ~/.config/ttamond.
    "Environment",
    # Mount and device sandboxing: needs privileges, or unprivileged user namespaces,
    # which many distributions restrict; the seccomp-based settings stay.
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateMounts", "PrivateDevices",
    "DevicePolicy", "DeviceAllow", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
})
"""Settings of the template left out of a --user unit."""

ENABLED_LINKS = ("*.wants", "*.requires", "*.upholds")
"""Where `systemctl enable` puts its symlinks, beside the unit file."""

# Words systemd reads back unchanged in ExecStart= when not quoted.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./+@:,=-]+")


class InstallError(Exception):
    """Why the units cannot be written or removed; one line for the user."""


@dataclass(frozen=True)
class Target:
    """Where the units go and which service manager reads them."""

    directory: Path
    user: bool
    default: bool
    """True for the directory systemd reads by default (not --unit-dir)."""

    def systemctl(self, *args: str) -> str:
        """The systemctl command line for this manager."""
        return " ".join(["systemctl", *(["--user"] if self.user else []), *args])


def exec_command(executable: str | None = None) -> list[str]:
    """How a service starts this installation: the `ttamond` console script beside the
    Python running now, else that Python with `-m ttamond`. Raises InstallError when
    the interpreter's path is unknown (an embedded Python)."""
    python = sys.executable if executable is None else executable
    if not python:
        raise InstallError("cannot tell which Python runs ttamond (sys.executable is empty)")
    # Not resolved: a virtual environment's python is a symlink, and resolving it
    # would leave the environment, and ttamond with it.
    interpreter = Path(python).absolute()
    script = interpreter.with_name("ttamond")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(interpreter), "-m", "ttamond"]


def exec_word(word: str) -> str:
    """`word` written so that systemd's ExecStart= parser reads it back unchanged.
    Raises InstallError for a word systemd cannot carry literally."""
    if any(ord(char) < 32 for char in word) or "$" in word:
        # "$" starts a variable even inside quotes, and systemd has no escape for it in
        # the command's path.
        raise InstallError(f"cannot name {word!r} in ExecStart=: it holds '$' or a control "
                           "character; install ttamond under a plainer path")
    escaped = word.replace("%", "%%")
    if _PLAIN_WORD.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def template(name: str) -> str:
    """The shipped unit file `name` (package data under ttamond/units/). Raises
    InstallError when this installation lacks it."""
    try:
        return (resources.files("ttamond") / "units" / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(f"this installation of ttamond lacks its unit template "
                           f"ttamond/units/{name} ({exc.strerror or exc}); reinstall it") from exc


def render_service(command: Sequence[str], *, user: bool) -> str:
    """ttamond.service with ExecStart= running `command` (see exec_command)."""
    text = template(SERVICE)
    if TEMPLATE_EXEC_START not in text.splitlines():
        raise InstallError(f"the shipped {SERVICE} has no line {TEMPLATE_EXEC_START!r}")
    exec_start = "ExecStart=" + " ".join(exec_word(word) for word in [*command, "run"])
    text = text.replace(TEMPLATE_EXEC_START, exec_start, 1)
    return _finish(text, user=user)


def render_socket(*, user: bool) -> str:
    """ttamond.socket as installed."""
    return _finish(template(SOCKET), user=user)


def _finish(text: str, *, user: bool) -> str:
    if user:
        text = _user_unit(text)
    header = (f"{MARKER} (ttamond {__version__}); "
              "`ttamond service uninstall` removes it.\n")
    return header + text


def _user_unit(text: str) -> str:
    """Leave out SYSTEM_ONLY settings with the comment block above each, and the
    template's opening notes (they are about the system unit); hang the service on
    default.target, a user manager's usual goal."""
    lines = text.splitlines()
    first_section = next(index for index, line in enumerate(lines) if line.startswith("["))
    kept = ["# A per-user service: the system unit's mount, device and user sandboxing is "
            "left out."]
    comments: list[str] = []
    for line in lines[first_section:]:
        if line.startswith("#"):
            comments.append(line)
            continue
        key = line.split("=", 1)[0].strip() if "=" in line else None
        if key in SYSTEM_ONLY:
            comments.clear()
            continue
        if line == "WantedBy=multi-user.target":
            line = "WantedBy=default.target"
        kept += comments
        kept.append(line)
        comments.clear()
    kept += comments
    return "\n".join(kept) + "\n"


def target_for(*, user: bool, unit_dir: Path | None,
               environ: Mapping[str, str] | None = None) -> Target:
    """The unit directory: --unit-dir, else the user manager's
    ($XDG_CONFIG_HOME/systemd/user), else /etc/systemd/system."""
    if unit_dir is not None:
        return Target(unit_dir.absolute(), user=user, default=False)
    if user:
        env = os.environ if environ is None else environ
        config_home = env.get("XDG_CONFIG_HOME", "")
        base = Path(config_home) if config_home.startswith("/") else Path.home() / ".config"
        return Target(base / "systemd" / "user", user=True, default=True)
    return Target(SYSTEM_UNIT_DIR, user=False, default=True)


def install(target: Target, *, socket: bool, dry_run: bool, force: bool,
            command: Sequence[str] | None = None) -> list[str]:
    """Write ttamond.service (and ttamond.socket) into `target`; returns what to print.

    Refuses, with InstallError, to replace a unit it did not write (unless `force`) and
    to write where it may not, before writing anything. Writes nothing when `dry_run`.
    """
    command = exec_command() if command is None else list(command)
    units = {SERVICE: render_service(command, user=target.user)}
    if socket:
        units[SOCKET] = render_socket(user=target.user)
    for name in units:
        path = target.directory / name
        if path.exists() and not force and not _ours(path):
            raise InstallError(f"{path} exists and was not written by `ttamond service "
                               "install`; move it away, or pass --force to replace it")
    out: list[str] = []
    if dry_run:
        for name, text in units.items():
            out += [f"would write {target.directory / name}:", text]
    else:
        _make_writable_dir(target)
        for name, text in units.items():
            _write(target.directory / name, text)
            out.append(f"wrote {target.directory / name}")
    if not socket and _ours(target.directory / SOCKET):
        out.append(f"note: {target.directory / SOCKET} from an earlier install stays in place")
    enable = ([SOCKET] if socket else []) + [SERVICE]
    out += ["then run:", f"  {target.systemctl('daemon-reload')}",
            f"  {target.systemctl('enable', '--now', *enable)}"]
    if target.user:
        out.append("  loginctl enable-linger  # to keep it running after you log out")
    return out


def uninstall(target: Target, *, dry_run: bool) -> list[str]:
    """Remove the units `install` wrote into `target`; returns what to print.

    Refuses, with InstallError, while one of them is still enabled (the systemctl
    command that disables it needs its file), or where it may not remove files.
    """
    ours = [target.directory / name for name in (SOCKET, SERVICE)
            if _ours(target.directory / name)]
    if not ours:
        return [f"nothing to remove: no unit written by `ttamond service install` in "
                f"{target.directory}"]
    names = [path.name for path in ours]
    links = sorted(_enabled_links(target.directory, names))
    if links:
        raise InstallError(f"{links[0].name} is still enabled ({links[0]}); run "
                           f"`{target.systemctl('disable', '--now', *names)}` first")
    if dry_run:
        out = [f"would remove {path}" for path in ours]
    else:
        _check_writable(target.directory, target)
        out = []
        for path in ours:
            try:
                path.unlink()
            except OSError as exc:
                raise InstallError(f"cannot remove {path}: {exc.strerror or exc}") from exc
            out.append(f"removed {path}")
    out += ["then run:", f"  {target.systemctl('stop', *names)}  # if still running",
            f"  {target.systemctl('daemon-reload')}"]
    return out


def command_warnings(command: Sequence[str], interpreter: str | None = None) -> list[str]:
    """Why the system service might not be able to start `command` with `interpreter`
    (default: the running Python, which the console script's #! line names): a path
    PrivateTmp= hides, or one that the service's unprivileged user cannot reach."""
    warnings: list[str] = []
    executable = Path(command[0])
    python = Path(sys.executable if interpreter is None else interpreter).resolve()
    for path in dict.fromkeys([executable, executable.resolve(), python]):
        if path.parts[1:2] == ("tmp",) or path.parts[1:3] == ("var", "tmp"):
            warnings.append(f"warning: {path} is under a temporary folder, which "
                            "PrivateTmp=yes hides from the service; install ttamond "
                            "elsewhere (e.g. /opt/ttamond)")
        blocked = _unreachable(path)
        if blocked is not None:
            warnings.append(f"warning: the service runs as its own user, which cannot "
                            f"reach {path}: {blocked} is not open to other users")
    return warnings


def _unreachable(path: Path) -> Path | None:
    """The first folder on the way to `path` other users cannot enter, or `path` itself
    when they cannot run it; None when they can."""
    try:
        for folder in reversed(path.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        if not path.stat().st_mode & stat.S_IXOTH:
            return path
    except OSError:
        return path
    return None


def _ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return file.readline().startswith(MARKER)
    except OSError:
        return False


def _enabled_links(directory: Path, names: Iterable[str]) -> Iterable[Path]:
    for pattern in ENABLED_LINKS:
        for folder in directory.glob(pattern):
            for name in names:
                link = folder / name
                if link.is_symlink() or link.exists():
                    yield link


def _make_writable_dir(target: Target) -> None:
    if target.default and not target.user and not target.directory.is_dir():
        raise InstallError(f"{target.directory} does not exist: is systemd this host's "
                           "service manager? (--unit-dir DIR writes elsewhere)")
    try:
        target.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {target.directory}: {exc.strerror or exc}"
                           f"{_hint(target)}") from exc
    _check_writable(target.directory, target)


def _check_writable(directory: Path, target: Target) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InstallError(f"cannot write to {directory}: permission denied{_hint(target)}")


def _hint(target: Target) -> str:
    if target.default and not target.user:
        return "; run it as root (sudo), or use --user for a service of your own"
    return ""


def _write(path: Path, text: str) -> None:
    # Written beside and renamed over, so systemd never reads half a unit.
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o644)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InstallError(f"cannot write {path}: {exc.strerror or exc}") from exc


def add_service_commands(commands: Any) -> None:
    """Register `service install` and `service uninstall` on `commands` (subparsers)."""
    service = commands.add_parser("service", help="install or remove the systemd units")
    actions = service.add_subparsers(metavar="ACTION", required=True)
    put = actions.add_parser("install", help="write ttamond.service (and ttamond.socket) "
                             "for this installation; prints the systemctl commands to run")
    put.add_argument("--socket", action="store_true",
                     help="also ttamond.socket: systemd opens the control socket")
    put.add_argument("--force", action="store_true",
                     help="replace unit files not written by this command")
    remove = actions.add_parser("uninstall", help="remove the units `service install` wrote")
    for action in (put, remove):
        action.add_argument("--user", action="store_true",
                            help="a per-user service (~/.config/systemd/user)")
        action.add_argument("--unit-dir", type=Path, metavar="DIR",
                            help="write here instead of /etc/systemd/system")
        action.add_argument("--dry-run", action="store_true",
                            help="print what would change; change nothing")
    put.set_defaults(handler=_install)
    remove.set_defaults(handler=_uninstall)


def _install(args: argparse.Namespace) -> int:
    try:
        target = target_for(user=args.user, unit_dir=args.unit_dir)
        command = exec_command()
        lines = install(target, socket=args.socket, dry_run=args.dry_run, force=args.force,
                        command=command)
    except InstallError as exc:
        print(f"ttamond: {exc}", file=sys.stderr)
        return 1
    if not target.user:
        for warning in command_warnings(command):
            print(warning, file=sys.stderr)
    print("\n".join(lines))
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    try:
        target = target_for(user=args.user, unit_dir=args.unit_dir)
        lines = uninstall(target, dry_run=args.dry_run)
    except InstallError as exc:
        print(f"ttamond: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
