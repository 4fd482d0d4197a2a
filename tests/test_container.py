"""The sidecar image: Containerfile built with podman and run as deploy/compose.yaml runs it.

There is no registry to pull `python:3.11-slim` from, so the test first makes the base
image out of the build host's own Python (the interpreter running the tests): its
executable, standard library and shared libraries, a static busybox for the shell, and
the host's CA certificates, imported as `localhost/ttamond-python-base`. The Containerfile
is built on it with `--build-arg BASE=...`; pip inside the build reaches the package
index. Everything lives under one temporary folder (see tests/podman.py) and is removed
afterwards.

The build pulls ttamond's dependencies from the package index: the module takes about
a minute (base image 3 s, build 40 to 45 s, the containers 20 s), so it is not `slow`.
Run it alone with `pytest tests/test_container.py -s` (-s prints the figures).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.podman import PodmanService

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/ttamond-python-base:test"
IMAGE = "localhost/ttamond:test"
UID = 10001
SOCKET = "/run/ttamond/control.sock"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the component runs: one gauge through ttamond's client library ($TTAMOND_SOCKET).
REPORT = """
import sys
from ttamond.client import Monitor
monitor = Monitor("narrative")
monitor.gauge("tta_active_players", 42)
delivered = monitor.flush(10)
print(monitor.stats())
sys.exit(0 if delivered else 1)
"""

# Left out of the base image's standard library: tests, GUI and the static library.
_STDLIB_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "site-packages", "dist-packages"}
# What binary wheels may expect from the system (the manylinux policies' glibc and GCC
# runtime libraries); python:3.11-slim has them too.
_WHEEL_SYSTEM_LIBRARIES = ("libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1",
                           "libpthread.so.0", "libutil.so.1", "libresolv.so.2",
                           "libgcc_s.so.1", "libstdc++.so.6")


@dataclass
class Built:
    """The images built for the module, and how long each step took."""

    engine: PodmanService
    base_seconds: float
    build_seconds: float


def _shared_libraries(*binaries: Path) -> set[Path]:
    """The shared libraries `binaries` load, as the paths ldd resolves them to, the
    dynamic loader included."""
    found: set[Path] = set()
    result = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True,
                            check=False, timeout=60)
    for line in result.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            path = words[words.index("=>") + 1]
        elif words and words[0].startswith("/") and not words[0].endswith(":"):
            path = words[0]
        else:
            continue
        if path.startswith("/"):
            found.add(Path(path))
    return found


def _copy_file(source: Path, rootfs: Path, target: Path) -> None:
    """Copy `source` (its content, symlinks followed) to `target` inside `rootfs`."""
    destination = rootfs / target.relative_to("/")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.resolve(), destination)


def _ignore_stdlib(folder: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name.endswith((".opt-1.pyc", ".opt-2.pyc"))}
    if Path(folder) == Path(sysconfig.get_path("stdlib")):
        skipped |= {name for name in names
                    if name in _STDLIB_SKIPPED or name.startswith("config-")}
    if Path(folder).name == "lib-dynload":
        skipped |= {name for name in names if name.startswith("_tkinter")}
    return skipped


def host_python_rootfs(rootfs: Path) -> None:
    """Lay out in `rootfs` a base image made of the host's Python, relocated to /usr/local
    like the official python images: the interpreter, its standard library, the shared
    libraries both load, a busybox shell and tools, CA certificates, root and nobody."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    executable = Path(sysconfig.get_config_var("BINDIR")) / f"python{version}"
    stdlib = Path(sysconfig.get_path("stdlib"))
    binaries = [executable, *sorted((stdlib / "lib-dynload").glob("*.so"))]
    binaries = [b for b in binaries if not b.name.startswith("_tkinter")]
    libraries = _shared_libraries(*binaries)
    libc = next(path for path in libraries if path.name == "libc.so.6")
    for name in _WHEEL_SYSTEM_LIBRARIES:
        if not (libc.parent / name).exists():
            pytest.skip(f"{name} not found beside {libc}")
        libraries.add(libc.parent / name)
    for library in libraries:
        # libpython sits under the host's prefix; in the image it goes where the loader
        # looks without a cache, beside libc.
        if library.is_relative_to(sys.base_prefix) and library.name.startswith("libpython"):
            _copy_file(library, rootfs, libc.parent / library.name)
        else:
            _copy_file(library, rootfs, library)

    local = rootfs / "usr" / "local"
    _copy_file(executable, rootfs, Path(f"/usr/local/bin/python{version}"))
    for alias in ("python3", "python"):
        (local / "bin" / alias).symlink_to(f"python{version}")
    shutil.copytree(stdlib, local / "lib" / f"python{version}", symlinks=True,
                    ignore=_ignore_stdlib)
    (local / "lib" / f"python{version}" / "site-packages").mkdir()
    debian_wheels = Path("/usr/share/python-wheels")  # Debian's ensurepip reads these
    if debian_wheels.is_dir():
        shutil.copytree(debian_wheels, rootfs / "usr/share/python-wheels")

    bin_dir = rootfs / "bin"
    bin_dir.mkdir(exist_ok=True)
    shutil.copy2(Path(shutil.which("busybox") or "/bin/busybox"), bin_dir / "busybox")
    applets = subprocess.run([str(bin_dir / "busybox"), "--list"], capture_output=True,
                             text=True, check=True, timeout=30).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (bin_dir / applet).symlink_to("busybox")
    (rootfs / "usr" / "bin").mkdir(exist_ok=True)
    (rootfs / "usr" / "bin" / "env").symlink_to("/bin/busybox")

    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    _copy_file(CA_BUNDLE, rootfs, CA_BUNDLE)
    for folder, mode in (("tmp", 0o1777), ("root", 0o700), ("run", 0o755), ("var/tmp", 0o1777)):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
        (rootfs / folder).chmod(mode)


def _owned_by_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    return member


def _podman(engine: PodmanService, *args: str, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(engine.podman_command(*args), env=engine.env, capture_output=True,
                            text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with status "
                             f"{result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The base image and the ttamond image on a temporary podman storage, removed after
    the module's tests."""
    if shutil.which("ldd") is None:
        pytest.skip("ldd not found: the base image is made from this host's glibc")
    if not CA_BUNDLE.exists():
        pytest.skip(f"{CA_BUNDLE} not found (apt-get install -y ca-certificates)")
    root = tmp_path_factory.mktemp("container", numbered=True)
    engine = PodmanService(root)
    engine.prepare()  # skips, saying why, where podman cannot run a container
    try:
        started = time.monotonic()
        rootfs = root / "base-rootfs"
        host_python_rootfs(rootfs)
        with tarfile.open(root / "base.tar", "w") as tar:
            tar.add(rootfs, arcname=".", filter=_owned_by_root)
        shutil.rmtree(rootfs)
        _podman(engine, "import",
                "--change", "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change", "ENV LANG=C.UTF-8",
                "--change", 'CMD ["python3"]',
                str(root / "base.tar"), BASE_IMAGE)
        (root / "base.tar").unlink()
        base_seconds = time.monotonic() - started

        started = time.monotonic()
        build_args = [f"BASE={BASE_IMAGE}", f"PIP_CERT={CA_BUNDLE}"]
        build_args += [f"{name}={os.environ[name]}" for name in ("PIP_INDEX_URL",)
                       if os.environ.get(name)]
        _podman(engine, "build", "--format", "docker", "--layers=false",
                *(f"--build-arg={arg}" for arg in build_args),
                "--file", str(REPO / "Containerfile"), "--tag", IMAGE, str(REPO),
                timeout=900)
        build_seconds = time.monotonic() - started
        yield Built(engine, base_seconds, build_seconds)
    finally:
        engine.remove_all()
        _podman(engine, "volume", "rm", "--all", "--force", check=False)
        _podman(engine, "rmi", "--all", "--force", check=False)
        shutil.rmtree(root, ignore_errors=True)


def inspect(engine: PodmanService, kind: str, name: str) -> Any:
    return json.loads(_podman(engine, kind, "inspect", name).stdout)[0]


def healthcheck(engine: PodmanService, container: str) -> subprocess.CompletedProcess[str]:
    """Run the image's health check once, as the engine's timer would (podman runs its
    timers through systemd, absent here)."""
    return _podman(engine, "healthcheck", "run", container, check=False, timeout=60)


def wait_healthy(engine: PodmanService, container: str, timeout: float = 60.0) -> float:
    """Run the health check until it passes; returns the seconds that took."""
    started = time.monotonic()
    while (result := healthcheck(engine, container)).returncode != 0:
        state = inspect(engine, "container", container)["State"]
        if state["Status"] != "running":
            logs = _podman(engine, "logs", container, check=False)
            raise AssertionError(f"the container is {state['Status']} (exit code "
                                 f"{state['ExitCode']}):\n{logs.stdout}{logs.stderr}")
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not healthy within {timeout:g} s: {result.stdout}"
                                 f"{result.stderr}")
        time.sleep(0.2)  # between two runs of the check, which is the readiness test
    return time.monotonic() - started


def stop(engine: PodmanService, container: str) -> float:
    """`podman stop -t 10` (SIGTERM, SIGKILL 10 s later); asserts ttamond exited 0 of its
    own accord and returns the seconds the stop took."""
    started = time.monotonic()
    _podman(engine, "stop", "--time", "10", container)
    seconds = time.monotonic() - started
    state = inspect(engine, "container", container)["State"]
    logs = _podman(engine, "logs", container)
    assert state["ExitCode"] == 0, logs.stdout + logs.stderr
    assert seconds < 10, "SIGTERM was not enough: podman stop fell back to SIGKILL"
    assert "ttamond stopped" in logs.stdout + logs.stderr
    return seconds


def sidecar_json(engine: PodmanService, *command: str) -> Any:
    """The reply of `ttamond COMMAND --json` run in the sidecar."""
    return json.loads(_podman(engine, "exec", "tt-sidecar", "ttamond", *command,
                              "--json").stdout)


def test_the_image_runs_ttamond_as_a_numeric_non_root_user(built: Built) -> None:
    image = inspect(built.engine, "image", IMAGE)
    config = image["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["ttamond", "run", "--config", "/etc/ttamond/ttamond.toml"]
    assert set(config["Volumes"]) == {"/var/lib/ttamond", "/run/ttamond"}
    assert set(config["ExposedPorts"]) == {"9471/tcp"}
    assert config["StopSignal"] in ("SIGTERM", "15")
    # --format docker keeps HEALTHCHECK (the OCI format has none); podman shows it here.
    assert image["Healthcheck"]["Test"] == ["CMD", "ttamond", "status", "--socket", SOCKET]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    print(f"\nbase image made in {built.base_seconds:.0f} s, ttamond image built in "
          f"{built.build_seconds:.0f} s, {image['Size'] / 2**20:.0f} MiB")


def test_every_binary_dependency_loads(built: Built) -> None:
    # Catches a base image short of a system library a wheel expects; pandas and numpy
    # come with codecarbon, loaded only when [carbon] is enabled.
    modules = "msgspec, psutil, cryptography.hazmat.bindings._rust, numpy, pandas, codecarbon"
    result = _podman(built.engine, "run", "--rm", "--entrypoint", "python3", IMAGE, "-c",
                     f"import {modules}", check=False)
    assert result.returncode == 0, result.stderr


def test_the_health_check_fails_while_the_daemon_is_not_running(built: Built) -> None:
    _podman(built.engine, "run", "--detach", "--name", "tt-idle", "--entrypoint", "sleep",
            IMAGE, "600")
    result = healthcheck(built.engine, "tt-idle")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "unhealthy" in result.stdout


def test_without_an_init_ttamond_is_pid_1_and_sigterm_stops_it_with_0(built: Built) -> None:
    engine = built.engine
    _podman(engine, "run", "--detach", "--name", "tt-plain", IMAGE)
    wait_healthy(engine, "tt-plain")
    status = json.loads(_podman(engine, "exec", "tt-plain", "ttamond", "status", "--json").stdout)
    assert status["pid"] == 1  # the exec-form ENTRYPOINT: no shell between
    stop(engine, "tt-plain")


def test_the_sidecar_as_compose_runs_it_serves_the_component_and_stops_cleanly(
    built: Built,
) -> None:
    engine = built.engine
    # deploy/compose.yaml's volume for the socket, and narrative starting first: another
    # user, in ttamond's group.
    _podman(engine, "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
            "--opt", f"o=uid={UID},gid={UID},mode=0750", "tt-run")
    _podman(engine, "run", "--detach", "--name", "tt-component", "--user", "20000:20000",
            "--group-add", str(UID), "--env", f"TTAMOND_SOCKET={SOCKET}",
            "--volume", "tt-run:/run/ttamond", "--entrypoint", "sleep", IMAGE, "600")
    _podman(engine, "run", "--detach", "--name", "tt-sidecar", "--init",
            "--volume", "tt-state:/var/lib/ttamond", "--volume", "tt-run:/run/ttamond",
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "all",
            "--security-opt", "no-new-privileges", IMAGE)
    healthy_seconds = wait_healthy(engine, "tt-sidecar")

    assert _podman(engine, "exec", "tt-sidecar", "id", "-u").stdout.strip() == str(UID)
    status = sidecar_json(engine, "status")
    assert status["state"] == "running", status
    assert status["config"]["path"] == "/etc/ttamond/ttamond.toml"
    # The component's client library reaches the socket through the shared volume.
    component = _podman(engine, "exec", "tt-component", "python3", "-c", REPORT, check=False)
    assert component.returncode == 0, component.stdout + component.stderr
    latest = sidecar_json(engine, "latest", "tta_active_players")["values"]
    assert [(v["labels"]["component"], v["value"]) for v in latest] == [("narrative", 42.0)]

    # [web] bind = "0.0.0.0:9471" (deploy/sidecar.toml): reachable on the container's
    # address, not only on its loopback.
    address = inspect(engine, "container", "tt-sidecar")["NetworkSettings"]["IPAddress"]
    with urllib.request.urlopen(f"http://{address}:9471/healthz", timeout=10) as reply:
        assert reply.status == 200

    stop_seconds = stop(engine, "tt-sidecar")
    mountpoint = Path(inspect(engine, "volume", "tt-state")["Mountpoint"])
    assert (mountpoint / "ttamond.db").stat().st_uid == UID

    # The database outlives the container in its volume.
    _podman(engine, "start", "tt-sidecar")
    wait_healthy(engine, "tt-sidecar")
    stored = sidecar_json(engine, "query", "tta_active_players", "--since", "1h")["series"]
    assert [(one["labels"]["component"], [v for _, v in one["points"]]) for one in stored] == [
        ("narrative", [42.0])]
    stop(engine, "tt-sidecar")
    print(f"\nhealthy {healthy_seconds:.1f} s after start, stopped in {stop_seconds:.1f} s")
