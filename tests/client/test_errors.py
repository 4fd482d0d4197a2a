"""Error capture: qualified type names, capped messages, and which frames are the app's."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import msgspec
import pytest
import sniffio

from ttamond.client.errors import (
    context_values,
    error_event,
    error_type_name,
    exception_message,
    in_app,
    message_event,
    stack_frames,
)
from ttamond.messages import ReportedMessage

decoder = msgspec.json.Decoder(ReportedMessage)


class ParseFailed(Exception):
    """An application's own error type."""


def _parse(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ParseFailed(f"cannot parse {text!r}") from exc


def _caught() -> BaseException:
    try:
        json.loads("{")
    except ValueError as exc:
        return exc
    raise AssertionError("json.loads('{') parsed")


def test_frames_run_outermost_first_and_only_the_apps_are_in_app() -> None:
    frames = stack_frames(_caught().__traceback__)
    assert frames[0].function == "_caught"
    assert frames[0].module == __name__
    assert frames[0].filename == __file__
    assert frames[0].in_app is True
    library = frames[1:]
    assert library, "json's own frames are missing"
    assert {frame.module.split(".")[0] for frame in library} == {"json"}
    assert not any(frame.in_app for frame in library)
    assert all(frame.lineno > 0 for frame in frames)


def test_site_packages_stdlib_and_frozen_files_are_not_in_app(tmp_path: Path) -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    assert in_app(str(tmp_path / "app" / "narrative.py")) is True
    assert in_app("<string>") is True
    assert in_app("/srv/venv/lib/python3.11/site-packages/neo4j/driver.py") is False
    assert in_app("/usr/lib/python3/dist-packages/redis/client.py") is False
    assert in_app(f"{stdlib}/asyncio/events.py") is False
    assert in_app("<frozen importlib._bootstrap>") is False
    assert in_app(stdlib + "-app/main.py") is True


def test_an_installed_package_frame_is_not_in_app() -> None:
    with pytest.raises(sniffio.AsyncLibraryNotFoundError) as caught:
        sniffio.current_async_library()  # outside any event loop: raises in site-packages
    frames = stack_frames(caught.value.__traceback__)
    assert frames[0].in_app is True
    assert frames[-1].module.startswith("sniffio")
    assert "site-packages" in frames[-1].filename
    assert frames[-1].in_app is False


def test_deep_stacks_keep_the_innermost_frames() -> None:
    def recurse(depth: int) -> None:
        if depth == 0:
            raise RecursionError("deep")
        recurse(depth - 1)

    with pytest.raises(RecursionError) as caught:
        recurse(400)
    frames = stack_frames(caught.value.__traceback__)
    assert len(frames) == 256
    assert all(frame.function.endswith("recurse") for frame in frames)
    assert frames[-1].lineno != frames[-2].lineno  # the raise, under the recursive call


def test_type_names_are_qualified_except_builtins() -> None:
    assert error_type_name(KeyError) == "KeyError"
    assert error_type_name(ParseFailed) == f"{__name__}.ParseFailed"
    assert error_type_name(msgspec.ValidationError) == "msgspec.ValidationError"


def test_an_error_event_decodes_and_keeps_only_its_own_traceback() -> None:
    with pytest.raises(ParseFailed) as caught:
        _parse("{")
    event = error_event(caught.value, component="narrative", environment="prod",
                        release="1.0", severity="error", timestamp_ms=5,
                        context={"path": Path("/x"), "n": 2}, user_session_id="u" * 300)
    assert decoder.decode(msgspec.json.encode(event)) == event
    assert event.error_type == f"{__name__}.ParseFailed"
    assert event.message == "cannot parse '{'"
    assert [frame.function for frame in event.stack] == [
        "test_an_error_event_decodes_and_keeps_only_its_own_traceback", "_parse"]
    assert event.context == {"path": "/x", "n": 2}
    assert event.user_session_id is not None and len(event.user_session_id) == 256


def test_messages_are_capped_and_a_broken_str_is_described() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert len(exception_message(ValueError("x" * 20_000))) == 16_384
    assert exception_message(Unprintable()) == "<Unprintable: str() failed with RuntimeError>"


def test_context_values_become_what_the_daemon_takes() -> None:
    assert context_values({"a": 1, "b": 1.5, "c": None, "d": "t", "e": True, "f": [1, 2],
                           3: "key"}) == {  # type: ignore[dict-item]
        "a": 1, "b": 1.5, "c": None, "d": "t", "e": True, "f": "[1, 2]", "3": "key"}


def test_a_message_only_event_has_no_stack() -> None:
    event = message_event("disk full", error_type="", component="c", environment="dev",
                          release="", severity="warning", timestamp_ms=1)
    assert event.error_type == "Error"
    assert event.stack == []
    assert decoder.decode(msgspec.json.encode(event)) == event
