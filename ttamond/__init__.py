"""ttamond: the per-host monitoring and observability daemon of the TTA platform."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ttamond")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+source"


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs about 25 ms, which the client
    # library, imported by every TTA component, should not pay at import.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'ttamond' has no attribute {name!r}")


__all__ = ["__version__"]
