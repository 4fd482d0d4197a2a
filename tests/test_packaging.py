"""The installed package holds every source package (a wheel built from pyproject.toml
would silently leave out one missing from its list)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import ttamond

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(("ttamond", *init.parent.relative_to(ROOT / "ttamond").parts)).rstrip(".")
        for init in (ROOT / "ttamond").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set()


def test_version_is_found_lazily() -> None:
    assert isinstance(ttamond.__version__, str) and ttamond.__version__
