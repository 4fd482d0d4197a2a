"""Error capture: an exception's type, message and stack frames as an `ErrorEvent`."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import PurePath
from types import TracebackType
from typing import Any, get_args

from ttamond.messages import (
    ContextValue,
    Environment,
    ErrorEvent,
    Name,
    Severity,
    ShortText,
    StackFrame,
    Text,
)

MAX_FRAMES = 256
"""The innermost frames are kept: they say where it broke."""
_NAME_MAX: int = get_args(Name)[1].max_length
_SHORT_MAX: int = get_args(ShortText)[1].max_length
_TEXT_MAX: int = get_args(Text)[1].max_length
_FILENAME_MAX = 1024
_LIBRARY_FOLDERS = frozenset(("site-packages", "dist-packages"))


def error_type_name(kind: type[BaseException]) -> str:
    """`module.QualifiedName` of an exception class; builtins go by their bare name."""
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", kind.__name__)
    text = name if module in ("builtins", "__main__", "") else f"{module}.{name}"
    return text[-_NAME_MAX:]


def exception_message(error: BaseException) -> str:
    """`str(error)`, capped, and something readable even when `__str__` itself fails."""
    return _text(error, _TEXT_MAX)


def _text(value: object, limit: int) -> str:
    try:
        text = str(value)
    except Exception as exc:  # noqa: BLE001 - a broken __str__ is the caller's bug; say so
        text = f"<{type(value).__name__}: str() failed with {type(exc).__name__}>"
    return _cap(text, limit)


@functools.cache
def _library_roots() -> tuple[str, ...]:
    # Imported on first use: only an error pays for it.
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib") if paths.get(key)}
    roots |= {os.path.realpath(root) for root in roots}
    return tuple(root.rstrip(os.sep) + os.sep for root in roots)


@functools.lru_cache(maxsize=4096)
def in_app(filename: str) -> bool:
    """Whether a frame's file is the application's own code: not the standard library,
    not an installed package (site-packages, dist-packages), not a frozen module."""
    if filename.startswith("<frozen"):
        return False
    if filename.startswith("<"):
        return True
    if _LIBRARY_FOLDERS.intersection(PurePath(filename).parts):
        return False
    roots = _library_roots()
    return not (filename.startswith(roots) or os.path.realpath(filename).startswith(roots))


def stack_frames(traceback: TracebackType | None, *, limit: int = MAX_FRAMES) -> list[StackFrame]:
    """The frames of a traceback, outermost first, keeping the innermost `limit`."""
    entries: list[TracebackType] = []
    while traceback is not None:
        entries.append(traceback)
        traceback = traceback.tb_next
    frames = []
    for entry in entries[-limit:]:
        frame = entry.tb_frame
        code = frame.f_code
        module = frame.f_globals.get("__name__", "")
        filename = code.co_filename
        frames.append(StackFrame(
            module=_cap(module if isinstance(module, str) else "", _SHORT_MAX),
            function=_cap(getattr(code, "co_qualname", code.co_name), _SHORT_MAX),
            filename=filename[-_FILENAME_MAX:],
            lineno=entry.tb_lineno or 0,
            in_app=in_app(filename),
        ))
    return frames


def context_values(context: Mapping[str, Any] | None) -> dict[str, ContextValue]:
    """Context as the daemon takes it: string keys; values other than str, int, float,
    bool and None become their `str()`."""
    if not context:
        return {}
    values: dict[str, ContextValue] = {}
    for key, value in context.items():
        if value is None or isinstance(value, str | int | float | bool):
            values[str(key)] = value
        else:
            values[str(key)] = _text(value, _TEXT_MAX)
    return values


def error_event(
    error: BaseException, *, component: str, environment: Environment, release: str,
    severity: Severity, timestamp_ms: int, context: Mapping[str, Any] | None = None,
    user_session_id: str | None = None, fingerprint: str | None = None,
) -> ErrorEvent:
    """An ErrorEvent for an exception, with the frames of its own traceback."""
    return ErrorEvent(
        component=component, environment=environment, timestamp_ms=timestamp_ms,
        error_type=error_type_name(type(error)), message=exception_message(error),
        severity=severity, stack=stack_frames(error.__traceback__),
        context=context_values(context), user_session_id=_short(user_session_id),
        release=release, fingerprint=_short(fingerprint),
    )


def message_event(
    message: str, *, error_type: str, component: str, environment: Environment, release: str,
    severity: Severity, timestamp_ms: int, context: Mapping[str, Any] | None = None,
    user_session_id: str | None = None, fingerprint: str | None = None,
) -> ErrorEvent:
    """An ErrorEvent for an error that has no exception: a message and no stack."""
    return ErrorEvent(
        component=component, environment=environment, timestamp_ms=timestamp_ms,
        error_type=_cap(error_type, _NAME_MAX) or "Error", message=_cap(message, _TEXT_MAX),
        severity=severity, context=context_values(context),
        user_session_id=_short(user_session_id), release=release,
        fingerprint=_short(fingerprint),
    )


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(text: str | None) -> str | None:
    return None if text is None else _cap(str(text), _SHORT_MAX)
