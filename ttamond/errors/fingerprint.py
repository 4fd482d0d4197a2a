"""Which error events are the same error: fingerprints, normalised messages and titles."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import msgspec

from ttamond.messages import ErrorEvent, StackFrame

MESSAGE_LIMIT = 512
"""Longest normalised message, in characters."""

TITLE_LIMIT = 200
"""Longest group title, in characters."""

FINGERPRINT_VERSION = "v1"
"""Hashed with every fingerprint: a later rule gets a new version, so its groups never
collide with groups made under this one."""

# What normalize_message replaces, in order of precedence: where several could match at
# one place, the first in this order does, so a timestamp is not numbers, a UUID is not a
# hex run and numbers, and a URL or a path is not the numbers in it. A placeholder of
# None keeps the match as it is.
#
# The rules are built so that a second pass changes nothing:
#
# - A token starts only after a character that is not a word character and does not end a
#   placeholder, and every token ends in a word character (a quoted string stops before
#   its closing quote), so a start allowed or refused after a token in the first pass is
#   allowed or refused after its placeholder in the second.
# - Where a token checks what follows it, "<" counts as a word character, because a
#   placeholder may now stand where a word character stood.
# - A quoted string glued to a word ('abc'd) is kept whole, as it is: were its contents
#   replaced, a quote of another kind around it could pair differently the second time.
#
# Every rule that can scan far and then fail has a lookbehind that keeps it from starting
# again inside what it scanned, so a pass is linear in the length of the text. Possessive
# repeats (*+) and a first character outside any lookaround keep a miss cheap.
_NUMBER = r"\d+(?:[.,_]\d+)*(?:[eE][+-]?\d+)?"
_UNIX_PATH = r"[\w.@-]+(?:/[\w.@-]+)*(?<=\w)"
_Rule = tuple[str | None, str]
_RULES: tuple[tuple[str, tuple[_Rule, ...]], ...] = (
    ("", (
        # A bare integer, the commonest token, first: nothing after it could make it
        # another kind.
        ("<n>", r"\d\d*+(?![\w.,:@+-])"),
        ("<uuid>",
         r"[0-9a-fA-F][0-9a-fA-F]{7}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![\w<])"),
        ("<time>", r"\d\d{3}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?"
                   r"(?:Z|[+-]\d\d(?::?\d\d)?)?"),
        ("<time>", r"\d\d?:\d\d:\d\d(?:[.,]\d+)?"),
    )),
    # A URL, an e-mail address and these paths all have one of :/@.+- right after their
    # first run of word characters, so one look ahead rules all four out at a plain word.
    (r"(?=\w*+[:/@.+-])", (
        ("<url>", r"[a-zA-Z][a-zA-Z0-9+.-]{0,15}+://[^\s'\"`<>]*(?<=\w)"),
        ("<url>", r"\w(?<![.+-]\w)[\w.+-]*+@\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+"),
        ("<path>", r"[a-zA-Z]:\\[^\s'\"`<>|*?:;,]*(?<=\w)"),
        ("<path>", r"[a-zA-Z_](?<![./-].)[\w.-]*+/(?:[\w.-]++/)*[\w.-]*\.[a-zA-Z]\w*"),
    )),
    ("", (
        ("<hex>", r"0[xX][0-9a-fA-F]+"),
        ("<hex>", r"(?=[a-fA-F]*+\d)(?=\d*+[a-fA-F])[0-9a-fA-F]{8,}(?![\w<])"),
        ("<path>", r"/(?<![.@/-]/)" + _UNIX_PATH),
        ("<path>", r"~(?<![.@/-]~)/" + _UNIX_PATH),
        ("<path>", r"\.(?<![.@/-]\.)\.?/" + _UNIX_PATH),
        ("<path>", r"\\\\\w[^\s'\"`<>|*?:;,]*(?<=\w)"),
        # The closing quote stays in the text, after the placeholder.
        ("'<str>", r"'[^']*(?='(?![\w<]))"),
        ('"<str>', r'"[^"]*(?="(?![\w<]))'),
        ("`<str>", r"`[^`]*(?=`(?![\w<]))"),
        (None, r"'[^']*(?=')"),
        (None, r'"[^"]*(?=")'),
        (None, r"`[^`]*(?=`)"),
        ("<n>", _NUMBER),
        ("<n>", "-" + _NUMBER),
    )),
)

# The character before a token is matched (and put back) rather than looked behind at, so
# the search can skip over word characters without trying a token at each one. Only a
# ">" there is checked for the end of a placeholder.
_TOKEN_START = (
    r"(\W)(?=[\w'\"`/.~\\-])"
    r"(?>(?<!>)|(?<!<n>)(?<!<hex>)(?<!<uuid>)(?<!<time>)(?<!<path>)(?<!<url>))"
)

# Each rule ends in an empty group, so the match's last group says which rule matched.
_TOKEN = re.compile(_TOKEN_START + "(?:" + "|".join(
    gate + "(?:" + "|".join(f"{pattern}()" for _, pattern in rules) + ")"
    for gate, rules in _RULES
) + ")")
# Indexed by group number: group 0 is the whole match and group 1 the character before it.
_PLACEHOLDERS: tuple[str | None, ...] = (
    None, None, *(placeholder for _, rules in _RULES for placeholder, _ in rules)
)

# Normalising a cut message again settles in one to three rounds (measured on random
# messages built from the troublesome characters); the bound only keeps a pathological
# message from looping.
_CUT_ROUNDS = 8


def _placeholder(match: re.Match[str]) -> str:
    placeholder = _PLACEHOLDERS[match.lastindex or 0]
    if placeholder is None:
        return match.group()
    return match.group(1) + placeholder


def _substitute(text: str) -> str:
    # The leading space gives a token at the very start a character before it.
    return _TOKEN.sub(_placeholder, " " + text)[1:]


def _shorten(text: str) -> str:
    """`text` cut to MESSAGE_LIMIT characters, at a space where one is in the last half."""
    if len(text) <= MESSAGE_LIMIT:
        return text
    if text[MESSAGE_LIMIT] == " ":
        return text[:MESSAGE_LIMIT]
    space = text.rfind(" ", MESSAGE_LIMIT // 2, MESSAGE_LIMIT)
    return text[:MESSAGE_LIMIT] if space == -1 else text[:space]


def normalize_message(message: str) -> str:
    """Return `message` with its variable parts replaced by placeholders.

    Two messages from the same code path with different data read the same: timestamps
    and dates become `<time>`, UUIDs `<uuid>`, URLs and e-mail addresses `<url>`, file
    paths `<path>`, `0x...` and runs of 8 or more hex digits holding a digit and a letter
    `<hex>`, quoted strings `'<str>'` (keeping the quote: ', " or `), and numbers (signed,
    decimal, with exponent or thousands separators) `<n>`, keeping a unit glued to them
    (`150ms` becomes `<n>ms`). Digits inside a word (`sha256`, `user42`) are kept.
    Whitespace collapses to single spaces, and the result is at most MESSAGE_LIMIT
    characters, cut at a space where one is near the end.

    Idempotent: normalising a normalised message returns it unchanged. Linear in the
    length of the message. Never raises.
    """
    text = _substitute(" ".join(message.split()))
    # A cut can end a token early, or open a quoted string that was kept whole, and the
    # prefix may then normalise differently, so normalise what is left after each cut.
    for _ in range(_CUT_ROUNDS):
        if len(text) <= MESSAGE_LIMIT:
            return text
        text = _substitute(_shorten(text))
    return _shorten(text)


def _call_path(frames: Sequence[StackFrame]) -> list[tuple[str, str]]:
    """(module, function) of each frame, with runs of the same frame (recursion) as one,
    so a recursive walk that fails at another depth is still the same error."""
    path: list[tuple[str, str]] = []
    for frame in frames:
        step = (frame.module, frame.function)
        if not path or path[-1] != step:
            path.append(step)
    return path


def fingerprint(event: ErrorEvent) -> str:
    """Return the fingerprint that groups `event` with the other events of its error.

    The first rule that applies decides:

    1. The client's own `event.fingerprint`, when set and not blank, hashed alone.
    2. With a stack: the error type and the (module, function) of each application frame
       (`in_app`), or of every frame where none is the application's. Line numbers and
       file names are left out, so an edit elsewhere in a file does not split a group,
       and so are library frames when application frames exist.
    3. Without a stack: the error type and the normalised message.

    Returns 32 hex digits (the first half of a SHA-256 over a versioned encoding of the
    rule's inputs); the same event gives the same fingerprint in every process.
    """
    parts: list[object]
    if event.fingerprint is not None and event.fingerprint.strip():
        parts = [FINGERPRINT_VERSION, "client", event.fingerprint]
    elif event.stack:
        frames = [frame for frame in event.stack if frame.in_app] or event.stack
        parts = [FINGERPRINT_VERSION, "stack", event.error_type, _call_path(frames)]
    else:
        parts = [FINGERPRINT_VERSION, "message", event.error_type,
                 normalize_message(event.message)]
    # JSON keeps the parts apart unambiguously whatever characters they hold.
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()[:32]


def title(event: ErrorEvent) -> str:
    """Return what the group of `event` is called: its error type and normalised message,
    at most TITLE_LIMIT characters."""
    message = normalize_message(event.message)
    name = f"{event.error_type}: {message}" if message else event.error_type
    return name[:TITLE_LIMIT].rstrip()
