"""Config parsing: defaults, and the one-line errors a person sees for a bad file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ttamond.config import Config, ConfigError, config_to_builtins, load_config, parse_config
from ttamond.paths import default_config_file, resolve_paths

REPO = Path(__file__).resolve().parent.parent


def test_no_file_means_embedded_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.collectors.host.interval == 1.0
    assert config.store.synchronous == "normal"


def test_shipped_ttamond_toml_equals_the_defaults() -> None:
    # ttamond.toml documents every setting with its default: it must stay in step.
    shipped = load_config(REPO / "ttamond.toml")
    assert shipped == Config()
    documented = tomllib.loads((REPO / "ttamond.toml").read_text())
    assert documented == config_to_builtins(Config())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[collectors.host]\nintervall = 2\n",
         r"^t\.toml: unknown key 'intervall' in \[collectors\.host\] \(did you mean 'interval'\?\)$"),
        ("colectors = 1\n",
         r"^t\.toml: unknown key 'colectors' at the top level \(did you mean 'collectors'\?\)$"),
        ("[store]\nzzz = 1\n", r"^t\.toml: unknown key 'zzz' in \[store\]$"),
        ("[collectors.host]\ninterval = 'fast'\n",
         r"^t\.toml: collectors\.host\.interval: expected a number, got a string$"),
        ("[store]\nquick_check_on_start = 1\n",
         r"^t\.toml: store\.quick_check_on_start: expected true or false, got an integer$"),
        ("collectors = 3\n", r"^t\.toml: collectors: expected a table, got an integer$"),
        ("[collectors.host]\ninterval = 0.01\n",
         r"^t\.toml: collectors\.host\.interval: expected a number >= 0\.1$"),
        ("[store]\nbatch_max_rows = 0\n",
         r"^t\.toml: store\.batch_max_rows: expected an integer >= 1$"),
        ("[store]\nsynchronous = 'fast'\n",
         r"^t\.toml: store\.synchronous: invalid value 'fast' \(expected one of: off, normal, full\)$"),
        ("[supervisor]\nbackoff_initial = 10\nbackoff_max = 1\n",
         r"^t\.toml: \[supervisor\]: backoff_max must be >= backoff_initial$"),
        ("[store\n", r"^t\.toml: invalid TOML: .*line 1"),
        ("[web]\nbind = 'localhost'\n",
         r"^t\.toml: \[web\]: bind: expected host:port \(e\.g\. 127\.0\.0\.1:9471\), got 'localhost'$"),
        ("[[collectors.process.watch]]\nname = 'x'\npattern = '('\n",
         r"^t\.toml: \[collectors\.process\.watch\.0\]: watch 'x': bad pattern '\(': missing \)"),
        ("[collectors.host]\nexclude_disks = [1]\n",
         r"^t\.toml: collectors\.host\.exclude_disks\.0: expected a string, got an integer$"),
    ],
)
def test_errors_name_the_key_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, source="t.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read: No such file or directory"):
        load_config(missing)


def test_paths_follow_systemd_then_xdg_then_root_defaults(tmp_path: Path) -> None:
    empty = Config().paths
    systemd = resolve_paths(empty, environ={"STATE_DIRECTORY": "/var/lib/a:/var/lib/b",
                                            "RUNTIME_DIRECTORY": "/run/a"}, uid=1000)
    assert systemd.database == Path("/var/lib/a/ttamond.db")
    assert systemd.control_socket == Path("/run/a/control.sock")
    xdg = resolve_paths(empty, environ={"XDG_STATE_HOME": "/x/state",
                                        "XDG_RUNTIME_DIR": "/x/run"}, uid=1000)
    assert xdg.state_dir == Path("/x/state/ttamond")
    assert xdg.runtime_dir == Path("/x/run/ttamond")
    root = resolve_paths(empty, environ={}, uid=0)
    assert root.database == Path("/var/lib/ttamond/ttamond.db")
    assert root.control_socket == Path("/run/ttamond/control.sock")
    assert root.spool == Path("/var/lib/ttamond/ttamond.db.spool")
    configured = resolve_paths(
        parse_config(f'[paths]\nstate_dir = "{tmp_path}"\ncontrol_socket = "{tmp_path}/c.sock"\n').paths,
        environ={"STATE_DIRECTORY": "/ignored"}, uid=0,
    )
    assert configured.database == tmp_path / "ttamond.db"
    assert configured.control_socket == tmp_path / "c.sock"


def test_default_config_file(tmp_path: Path) -> None:
    assert default_config_file(environ={"TTAMOND_CONFIG": "/a/b.toml"}) == Path("/a/b.toml")
    assert default_config_file(environ={"XDG_CONFIG_HOME": str(tmp_path)}, uid=1000) is None
    (tmp_path / "ttamond").mkdir()
    (tmp_path / "ttamond" / "ttamond.toml").write_text("")
    assert default_config_file(environ={"XDG_CONFIG_HOME": str(tmp_path)}, uid=1000) == (
        tmp_path / "ttamond" / "ttamond.toml"
    )
    # Under systemd's ConfigurationDirectory=, whatever the user.
    etc = tmp_path / "etc"
    etc.mkdir()
    unit = {"CONFIGURATION_DIRECTORY": str(etc), "XDG_CONFIG_HOME": str(tmp_path)}
    assert default_config_file(environ=unit, uid=61000) == tmp_path / "ttamond" / "ttamond.toml"
    (etc / "ttamond.toml").write_text("")
    assert default_config_file(environ=unit, uid=61000) == etc / "ttamond.toml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttamond", *args], capture_output=True,
                          text=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin",
                                                                   "HOME": "/nonexistent"})


def test_config_check_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[collectors.host]\ninterval = 2.5\n")
    ok = _cli("config", "check", str(good))
    assert (ok.returncode, ok.stdout) == (0, f"{good}: ok\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[collectors.host]\nintervall = 2.5\n")
    failed = _cli("config", "check", str(bad))
    assert failed.returncode == 2
    assert failed.stderr == (
        f"ttamond: {bad}: unknown key 'intervall' in [collectors.host]"
        " (did you mean 'interval'?)\n"
    )


def test_config_show_prints_the_effective_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[collectors.host]\ninterval = 2.5\n")
    shown = _cli("config", "show", "--config", str(config))
    assert shown.returncode == 0
    effective = tomllib.loads(shown.stdout)
    assert effective["collectors"]["host"]["interval"] == 2.5
    assert effective["store"]["batch_max_rows"] == Config().store.batch_max_rows
    assert "# resolved paths: state_dir=" in shown.stdout
