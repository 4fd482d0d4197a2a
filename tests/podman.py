"""A real podman serving the Docker Engine API on a Unix socket, for the Docker tests.

Everything lives under one temporary folder: storage, run state, events log and the
socket, so the tests neither see nor leave containers or images on the host. The image
is built locally from a static busybox (there is no registry to pull from).

Needs `apt-get install -y podman runc busybox-static` and root. Where podman cannot run,
`PodmanService.start()` skips the test with the reason, unless TTAMOND_REQUIRE_PODMAN=1
is set (CI), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

IMAGE = "localhost/ttamond-test:latest"

# Podman's runtime and ulimits, fixed for every container it creates, the CLI's and
# the API's alike: crun fails on hybrid cgroups, and runc cannot raise the default
# rlimits in a container sandbox, so nofile/nproc stay at what the sandbox allows.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

_APPLETS = ("sh", "sleep", "true", "false", "cat", "echo", "touch", "test", "dd", "rm")
_PT_INTERP = 3


def _cannot_run(reason: str) -> NoReturn:
    if os.environ.get("TTAMOND_REQUIRE_PODMAN") == "1":
        pytest.fail(f"podman cannot run: {reason}")
    pytest.skip(f"podman cannot run: {reason}")


def _is_static_elf(path: Path) -> bool:
    """True when `path` is an ELF executable without an interpreter (statically linked)."""
    with path.open("rb") as file:
        header = file.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit only
            return False
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        file.seek(phoff)
        table = file.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != _PT_INTERP
               for i in range(phnum))


class PodmanService:
    """`podman system service` on `<root>/podman.sock` with its own storage under `root`.

    Several services may share one root (one storage, one events log), each on its own
    socket: a test that stops its engine does not stop the others'.
    """

    def __init__(self, root: Path, *, socket_name: str = "podman.sock") -> None:
        self.root = root
        self.socket = root / socket_name
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = root / f"{socket_name}.log"
        self._conf = root / "containers.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment podman runs with: our containers.conf only."""
        return {**os.environ, "CONTAINERS_CONF": str(self._conf)}

    def _global_options(self) -> list[str]:
        return ["--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
                "--tmpdir", str(self.root / "tmp"), "--storage-driver", "vfs"]

    def podman_command(self, *args: str) -> list[str]:
        """The podman command line for `args` on this service's storage (run it with
        `env=self.env`)."""
        return ["podman", *self._global_options(), *args]

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI on this service's storage."""
        return subprocess.run(self.podman_command(*args), env=self.env, capture_output=True,
                              text=True, check=check, timeout=60)

    def prepare(self) -> None:
        """Write containers.conf and import the test image, once per root; skips the
        test when podman cannot run a container here."""
        if shutil.which("podman") is None:
            _cannot_run("podman is not installed (apt-get install -y podman runc)")
        busybox = Path(shutil.which("busybox") or "/bin/busybox")
        if not busybox.exists() or not _is_static_elf(busybox):
            _cannot_run(f"{busybox} is missing or not static (apt-get install -y busybox-static)")
        if self._conf.exists():
            return
        self._conf.write_text(CONTAINERS_CONF)
        rootfs = self.root / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "tmp").mkdir()
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        for applet in _APPLETS:
            (rootfs / "bin" / applet).symlink_to("busybox")
        with tarfile.open(self.root / "rootfs.tar", "w") as tar:
            tar.add(rootfs, arcname=".")
        imported = self.podman("import", "--change", 'CMD ["/bin/sh"]',
                               str(self.root / "rootfs.tar"), IMAGE, check=False)
        if imported.returncode != 0:
            _cannot_run(f"podman import failed: {imported.stderr.strip()}")
        smoke = self.podman("run", "--rm", IMAGE, "true", check=False)
        if smoke.returncode != 0:
            _cannot_run(f"podman run failed: {smoke.stderr.strip()}")

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the API service and wait until it answers /_ping."""
        self.prepare()
        log = self._log.open("ab")
        self._process = subprocess.Popen(
            self.podman_command("system", "service", "--time=0", self.url),
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self._process.poll() is not None:
                _cannot_run(f"podman system service exited with status "
                            f"{self._process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                _cannot_run(f"podman system service did not answer /_ping within "
                            f"{timeout:g} s: {self._log_tail()}")
            time.sleep(0.02)

    def ping(self) -> bool:
        """True when the service answers GET /_ping with OK."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
            except OSError:
                return False
        return reply.startswith(b"HTTP/1.") and reply.endswith(b"OK")

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL); containers keep running."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def remove_all(self) -> None:
        """Remove every container on this storage, running or not."""
        self.podman("rm", "--all", "--force", "--time", "0", check=False)

    def _log_tail(self) -> str:
        text = self._log.read_text(errors="replace").strip() if self._log.exists() else ""
        return text[-500:] or "(no output)"


@pytest.fixture(scope="session")
def podman_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One storage for the session's engines: the image is imported once."""
    return tmp_path_factory.mktemp("podman", numbered=True)


@pytest.fixture(scope="session")
def shared_engine(podman_root: Path) -> Iterator[PodmanService]:
    """The session's engine; see `engine` for the per-test view of it."""
    service = PodmanService(podman_root)
    service.start()
    yield service
    service.remove_all()
    service.stop()


@pytest.fixture
def engine(shared_engine: PodmanService) -> Iterator[PodmanService]:
    """A running engine, with every container removed after the test."""
    yield shared_engine
    shared_engine.remove_all()


@pytest.fixture
def own_engine(podman_root: Path, shared_engine: PodmanService) -> Iterator[PodmanService]:
    """An engine of this test's own (on the session's storage), free to be stopped."""
    service = PodmanService(podman_root, socket_name="own.sock")
    service.start()
    yield service
    service.stop()
    shared_engine.remove_all()
