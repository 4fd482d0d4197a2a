"""A detector's learnt state as plain data, so that a restart need not learn again.

Every part of a Detector (window, rhythms, histories, records, running means), and a
StepMean, keeps its state in `__slots__` of floats, ints and arrays of doubles.
`dump` walks those slots into nested dicts of numbers and bytes (msgpack-ready);
`load` writes them back into a fresh object built with the same settings, refusing
anything that does not fit it: a missing or unknown slot, a value of another type, an
array of another length, a window whose sorted copy is not its ring's. A refused
state leaves the fresh object as it was built.
"""

from __future__ import annotations

from array import array
from typing import Any

from ttamond.analytics.window import RollingWindow

_NOT_STATE = frozenset({"settings"})
"""Slots rebuilt from the settings, not restored: the settings must be equal."""


class SnapshotError(ValueError):
    """A saved state does not fit the detector it was to be loaded into."""


def _slots(obj: object) -> list[str]:
    return [name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())
            if name not in _NOT_STATE]


def dump(obj: object) -> dict[str, Any]:
    """A slotted object's state (a Detector's, a StepMean's): nested dicts of numbers,
    None and bytes."""
    state: dict[str, Any] = {}
    for name in _slots(obj):
        value = getattr(obj, name)
        if isinstance(value, array):
            state[name] = value.tobytes()
        elif value is None or isinstance(value, int | float):
            state[name] = value
        else:
            state[name] = dump(value)
    return state


def load(obj: object, state: object) -> None:
    """Write a dumped state into `obj` (fresh, built with the settings the state was
    dumped under). Raises SnapshotError naming the first thing that does not fit; the
    object is then unchanged."""
    staged: list[tuple[object, str, object]] = []
    _stage(obj, state, type(obj).__name__, staged)
    for obj, name, value in staged:
        setattr(obj, name, value)


def _stage(obj: object, state: object, where: str,
           staged: list[tuple[object, str, object]]) -> None:
    if not isinstance(state, dict):
        raise SnapshotError(f"{where}: expected a mapping, got {type(state).__name__}")
    names = _slots(obj)
    if set(state) != set(names):
        odd = sorted(set(state) ^ set(names))
        raise SnapshotError(f"{where}: slots differ ({', '.join(map(str, odd))})")
    arrays: dict[str, array[float]] = {}
    for name in names:
        current, saved = getattr(obj, name), state[name]
        path = f"{where}.{name}"
        if isinstance(current, array):
            arrays[name] = _array(current, saved, obj, path)
            staged.append((obj, name, arrays[name]))
        elif current is None or isinstance(current, int | float):
            staged.append((obj, name, _number(current, saved, path)))
        else:
            _stage(current, saved, path, staged)
    if isinstance(obj, RollingWindow) and sorted(arrays["_ring"]) != list(arrays["_sorted"]):
        raise SnapshotError(f"{where}: the sorted values are not the ring's")


def _array(current: array[float], saved: object, obj: object, path: str) -> array[float]:
    if current.typecode != "d" or not isinstance(saved, bytes) or len(saved) % 8:
        raise SnapshotError(f"{path}: expected packed doubles")
    restored: array[float] = array("d")
    restored.frombytes(saved)
    # Fixed-size arrays are built at full length; a window's fill up to its size.
    limit = obj.size if isinstance(obj, RollingWindow) else len(current)
    if len(restored) > limit or (len(current) and len(restored) != len(current)):
        raise SnapshotError(f"{path}: {len(restored)} values where {limit} fit")
    return restored


def _number(current: object, saved: object, path: str) -> object:
    # A fresh object holds None only where nothing has been seen yet (a first
    # timestamp, a rhythm's level, an open step): there a saved number is welcome.
    if isinstance(current, bool) or isinstance(saved, bool):
        raise SnapshotError(f"{path}: a flag where a number belongs")
    if saved is None:
        if current is not None:
            raise SnapshotError(f"{path}: missing")
        return None
    if not isinstance(saved, int | float):
        raise SnapshotError(f"{path}: expected a number")
    if isinstance(current, int):
        if not isinstance(saved, int):
            raise SnapshotError(f"{path}: expected a whole number")
        return saved
    return saved if current is None else float(saved)
