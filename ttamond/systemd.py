"""systemd integration: sd_notify over the real datagram protocol, the watchdog, and
sockets passed by socket activation."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, MutableMapping, Sequence
from typing import NamedTuple

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3
"""The first descriptor a service manager passes (sd_listen_fds' SD_LISTEN_FDS_START)."""

ACTIVATION_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class Notifier:
    """Sends sd_notify datagrams to `$NOTIFY_SOCKET`; does nothing when it is unset.

    A failed send is logged once and counted, never raised: the daemon must not die
    because its supervisor's socket went away.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@" and means a leading NUL.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.failures = 0
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        """Whether a notify socket is configured."""
        return self._socket is not None

    def notify(self, *fields: str) -> bool:
        """Send `KEY=value` fields in one datagram; True when it was sent."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def close(self) -> None:
        """Close the datagram socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of `$WATCHDOG_USEC`), or None when the
    watchdog is off or meant for another process (`$WATCHDOG_PID`)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2 / 1_000_000


class InheritedSocket(NamedTuple):
    """A socket the service manager opened for this process, and its name
    (`FileDescriptorName=`; "unknown" when none was passed, as sd_listen_fds_with_names)."""

    name: str
    socket: socket.socket


def inherited_sockets(environ: MutableMapping[str, str] | None = None) -> list[InheritedSocket]:
    """Take the sockets passed to this process by socket activation, in descriptor order.

    Reads `$LISTEN_PID`, `$LISTEN_FDS` and `$LISTEN_FDNAMES`; the sockets are ours only
    when LISTEN_PID is this process. The variables are removed from `environ` (default
    os.environ) either way, and the descriptors made close-on-exec, so that check and
    notification commands neither see nor hold them. Malformed variables, or a passed
    descriptor that is not a socket, are logged and skipped: the caller then opens its
    own socket, as without activation. Never raises.
    """
    env = os.environ if environ is None else environ
    values = {name: env.pop(name, None) for name in ACTIVATION_VARIABLES}
    pid, count = values["LISTEN_PID"], values["LISTEN_FDS"]
    if pid is None or count is None:
        return []
    if not (pid.isdigit() and count.isdigit()):
        log.warning("ignoring malformed socket activation: LISTEN_PID=%r LISTEN_FDS=%r",
                    pid, count)
        return []
    if int(pid) != os.getpid():
        # Meant for the process that exec'd us, or a stale copy: not ours to take.
        return []
    names = values["LISTEN_FDNAMES"].split(":") if values["LISTEN_FDNAMES"] else []
    if names and len(names) != int(count):
        log.warning("LISTEN_FDNAMES names %d descriptors, LISTEN_FDS says %d; "
                    "ignoring the names", len(names), int(count))
        names = []
    taken: list[InheritedSocket] = []
    for index, fd in enumerate(range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            log.warning("ignoring inherited descriptor %d: %s", fd, exc.strerror or exc)
            continue
        sock.set_inheritable(False)
        taken.append(InheritedSocket(names[index] if names else "unknown", sock))
    return taken


def pick_socket(inherited: Sequence[InheritedSocket], name: str) -> socket.socket | None:
    """The inherited socket called `name`, else the only one when exactly one came;
    None when none fits. The others are closed, with a warning naming them, so that a
    listening socket nobody serves does not sit in this process unnoticed."""
    chosen = next((item for item in inherited if item.name == name), None)
    if chosen is None and len(inherited) == 1:
        chosen = inherited[0]
    for item in inherited:
        if item is not chosen:
            log.warning("closing inherited socket %r (fd %d): ttamond serves only %r",
                        item.name, item.socket.fileno(), name)
            item.socket.close()
    return None if chosen is None else chosen.socket
