"""Privacy controller: replaces personal data and secrets in reported text with placeholders."""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal, NamedTuple

from ttamond.messages import ContextValue

Kind = Literal["credentials", "token", "email", "ip", "iban", "card", "phone", "name"]
"""What a placeholder stands for; the placeholder itself reads ``<kind>``."""

# Every pattern is bounded or possessive and none can retry a long stretch from many
# starts, so a scan is linear in the text: reported text comes from components we do not
# control, and a 16 KB message scrubs in milliseconds whatever it holds.
_URL_CREDENTIALS: Final = re.compile(
    r"\b([A-Za-z][A-Za-z0-9+.\-]{0,31}://)([^\s/?#<>\"']{1,256})@"
)
_KEY_SHAPES: Final = re.compile(
    r"(?<![\w\-])(?:sk-(?=[\w\-]*?\d)[\w\-]{16,}+|gh[oprsu]_[A-Za-z0-9]{20,}+"
    r"|github_pat_\w{20,}+|A[KS]IA[0-9A-Z]{16}(?![A-Za-z0-9])|xox[abprs]-[A-Za-z0-9\-]{10,}+"
    r"|eyJ[\w\-]{4,}+\.eyJ[\w\-]{4,}+\.[\w\-]*+)"
)
# A bearer token has a digit or is long: "Bearer token missing" is prose, not a secret.
_BEARER: Final = re.compile(
    r"(?i)\b(bearer\s+)((?=[\w\-.~+/]*?\d)[\w\-.~+/]{8,}+=*|[\w\-.~+/]{20,}+=*)"
)
# Only the key and the separator: a value is read only after a secret key, so a text of
# many "key=value" pairs is read once.
_PAIR: Final = re.compile(r"(?<![\w.\-])([A-Za-z_][\w.\-]{0,63}+)[\"']?\s{0,3}[:=]\s{0,3}")
_PAIR_VALUE: Final = re.compile(
    r"(?:(?i:basic|bearer|digest|negotiate|token)\s+)?"
    r"(?:\"((?:[^\"\\\n]|\\.)*+)\"?|'((?:[^'\\\n]|\\.)*+)'?|([^\s,;&\"'(){}\[\]]++))"
)
# The gate of the pairs pass: a key that `looks_secret` holds one of these words, then
# the rest of the key (any, or only separators) and a separator. "KeyError:" fails it.
_ANY_REST: Final = re.compile(r"[\w.\-]{0,64}[\"']?\s{0,3}[:=]")
_NO_REST: Final = re.compile(r"[_.\-]{0,64}[\"']?\s{0,3}[:=]")
_SECRET_HINTS: Final = (
    *((word, _ANY_REST) for word in ("pass", "secret", "auth", "cookie", "apikey")),
    ("token", _NO_REST), ("key", _NO_REST),
)
_EMAIL: Final = re.compile(
    r"[\w.%+\-]{1,64}+@(?:[A-Za-z0-9\-]{1,63}+\.){1,32}[A-Za-z][A-Za-z0-9\-]{1,62}+"
)
_IPV6: Final = re.compile(r"(?<![\w:.])[0-9A-Fa-f.]{0,4}+:[0-9A-Fa-f.:]{1,44}+(?![\w:])")
# Numbers are ASCII digits ("(?a)"), as the byte gates in `Scrubber._scrub_once` assume. Where a
# pattern opens with a character class and checks the character before it in a lookbehind
# after that class, the regex engine can skip ahead to candidate characters.
_IPV4: Final = re.compile(r"(?a)\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d)")
_IPV4_HINT: Final = re.compile(r"(?a)\.\d{1,3}\.\d{1,3}\.\d")
_IBAN: Final = re.compile(r"(?a)[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}+")
# The SWIFT IBAN registry: the length of each country's IBANs.
_IBAN_LENGTHS: Final = {country: int(length) for country, length in re.findall(r"(\w\w)(\d\d)", (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 "
    "DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 "
    "IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 "
    "MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 "
    "SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30"
))}
_IBAN_BEHIND: Final = re.compile(r"(?a)(?<![A-Za-z0-9])([A-Z]{2})\d\d(?: [A-Z0-9]{4})* \Z")
_IBAN_PART: Final = re.compile(r"[A-Z0-9]+")
# ISO 13616: letters count as two-digit numbers, A = 10 to Z = 35.
_IBAN_LETTERS: Final = str.maketrans(
    {letter: str(value) for value, letter in enumerate(string.ascii_uppercase, 10)}
)
_CARD: Final = re.compile(r"(?a)\d(?<![\w.+\-]\d)\d{2,18}+(?!\w)(?:[ \-]\d{1,19}+(?!\w)){0,4}+")
# Luhn doubles every second digit from the right and adds the digits of the product.
_LUHN_DOUBLED: Final = str.maketrans("0123456789", "0246813579")
_CARD_PART: Final = re.compile(r"[0-9]+")
# "tel:+49..." is a phone number, "20:03:10" is not: a colon may only precede a "+".
# A parenthesis holds a whole group: "(030) 1234567", "+49 (0)30 1234567".
_PHONE: Final = re.compile(
    r"(?a)[+(\d](?:(?<=\+)(?<![\w.+\-/]\+)\d{1,15}+(?!\w)"
    r"|(?<=\()(?<![\w.+\-/:]\()(?:\+\d{1,3}|\d{2,5})\)|(?<![\w.+\-/:]\d)(?<=\d)\d{0,14}+(?!\w))"
    r"(?:[ .\-]?(?:\(\d{1,5}\)|\d{1,15}+(?!\w))){0,6}+"
)
_PHONE_PART: Final = re.compile(r"\+?\(?\+?[0-9]+\)?")
_DIGITS: Final = re.compile(r"[0-9]+")
_NANP: Final = re.compile(r"(?:1[ .\-])?[2-9][0-9]{2}[ .\-][0-9]{3}[ .\-][0-9]{4}")
_CAMEL_CASE: Final = re.compile(r"([a-z0-9])([A-Z])")
_NOT_ALPHANUMERIC: Final = re.compile(r"[^a-z0-9]+")


def _byte_classes(default: str, classes: Mapping[str, str]) -> bytes:
    table = bytearray(default.encode() * 256)
    for members, symbol in classes.items():
        for member in members.encode():
            table[member] = ord(symbol)
    return bytes(table)


# Cheap gates: a text's bytes mapped to character classes, searched with `in`, tell
# whether a family of numbers can be present at all. Each gate admits a superset of what
# its pattern accepts; most error messages pass none and never reach a regex.
_SHAPE: Final = _byte_classes("a", {string.digits: "9", string.ascii_uppercase: "A", " .-": "-"})
_HEADS: Final = _byte_classes(
    "|", {"0": "0", "123456789": "9", "+": "+", "(": "(", string.ascii_letters + "_.-/:": "a"}
)


_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "secret", "authorization", "cookie", "cookies", "apikey"}
)
_SECRET_PAIRS: Final = frozenset({"api_key", "access_key", "private_key", "session_key"})


@functools.lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    """Whether a key name (``db_password``, ``accessToken``, ``X-Api-Key``) names a secret.

    Words are matched whole, so ``max_tokens`` and ``token_count`` are not secret while
    ``refresh_token`` and ``client_secret`` are.
    """
    spaced = _CAMEL_CASE.sub(r"\1_\2", key).lower()
    words = [word for word in _NOT_ALPHANUMERIC.split(spaced) if word]
    if not words:
        return False
    return (
        not _SECRET_WORDS.isdisjoint(words)
        or words[-1].endswith("token")
        or "_".join(words[-2:]) in _SECRET_PAIRS
    )


def _may_hold_secret_pair(lowered: str) -> bool:
    for word, rest in _SECRET_HINTS:
        index = lowered.find(word)
        while index >= 0:
            if rest.match(lowered, index + len(word)):
                return True
            index = lowered.find(word, index + 1)
    return False


def _luhn(digits: str) -> bool:
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)
    return sum(map(int, digits[-1::-2] + doubled)) % 10 == 0


def _is_card(span: str) -> bool:
    # Cards are issued under the major industry identifiers 2 to 6; the first digit keeps
    # millisecond and nanosecond epoch timestamps (they start with 1) out.
    digits = span.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits)


def _is_iban(span: str) -> bool:
    compact = span.replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _is_phone(span: str) -> bool:
    # National numbers open with a trunk "0" or an area code in parentheses, unless they
    # are North American; international ones with "+".
    if span[0] not in "+(0":
        return _NANP.fullmatch(span) is not None
    groups = _DIGITS.findall(span)
    digits = sum(map(len, groups))
    if not 7 <= digits <= 15:
        return False
    if span.startswith(("+", "(+")):
        # A country code has at most 3 digits; an unseparated "+1500000" is a delta in a
        # log line far more often than a number.
        return len(groups[0]) <= 3 if len(groups) > 1 else digits >= 10
    lengths = [len(group) for group in groups]
    if len(lengths) < 2 or lengths[0] < 2:
        return False
    # A date ("01-02-2026", "01.02.2026") is not a number.
    return not (len(lengths) == 3 and lengths[2] == 4 and max(lengths[:2]) <= 2)


def _is_ip(candidate: str) -> bool:
    if ":" in candidate:
        # Short of "::", IPv6 has 7 or 8 groups; "::2" and "::-1" are slices in code.
        groups = [group for group in candidate.split(":") if group]
        if len(groups) < 2 or ("::" not in candidate and len(groups) < 7):
            return False
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


class _Family(NamedTuple):
    """How one kind of number is found: its candidates, their groups, and the check."""

    kind: Kind
    pattern: re.Pattern[str]
    groups: re.Pattern[str]
    accept: Callable[[str], bool]
    shortest: int  # the fewest characters a number of this kind is written with
    longest_first: bool
    restart: str  # after a near miss, what a later group opens with to start a number
    outside_ibans: bool  # an IBAN with a bad checksum still holds no card or phone number


_IBANS: Final = _Family(
    "iban", _IBAN, _IBAN_PART, _is_iban, 15, True, string.ascii_uppercase, False
)
_CARDS: Final = _Family("card", _CARD, _CARD_PART, _is_card, 13, False, string.digits, True)
# A phone number may not start inside a run of numbers either, except at a parenthesis.
_PHONES: Final = _Family("phone", _PHONE, _PHONE_PART, _is_phone, 7, True, "(", True)


def _inside_iban(text: str, start: int) -> bool:
    if start < 5 or text[start - 1] != " ":
        return False
    behind = _IBAN_BEHIND.search(text, max(0, start - 42), start)
    return behind is not None and behind[1] in _IBAN_LENGTHS


_ROUNDS: Final = 4


_SHORTEST: Final = 6
"""No pattern matches fewer characters: the shortest is an e-mail address (a@b.cd);
IPv4 addresses and URL credentials take 7, phones and cards 7 and more digits, tokens
16 characters. Configured names can be shorter, and are always checked."""


class Scrubber:
    """Replaces personal data and secrets in text with typed placeholders (``<email>``).

    ``names`` are person names from the config, matched case-insensitively as whole
    words. ``hits`` counts replacements per placeholder kind. Scrubbing never raises and
    is idempotent: scrubbed text scrubs to itself.
    """

    def __init__(self, names: Sequence[str] = ()) -> None:
        if any(not name.strip() for name in names):
            raise ValueError("privacy: a configured name is empty")
        self.hits: Counter[str] = Counter()
        self._names: re.Pattern[str] | None = None
        self._name_hints = tuple({name.split()[0].lower() for name in names})
        if names:
            phrases = sorted({r"\s+".join(map(re.escape, name.split())) for name in names}, key=len)
            alternatives = "|".join(reversed(phrases))
            self._names = re.compile(rf"(?<![\w<])(?:{alternatives})(?![\w>])", re.IGNORECASE)

    def scrub(self, text: str) -> str:
        """Return ``text`` with personal data and secrets replaced by placeholders."""
        if len(text) < _SHORTEST and self._names is None:
            return text  # too short to hold any pattern (chapter names, small numbers)
        # A placeholder changes what its neighbours see: in "Bob+49 30 1234567" the "+"
        # follows a letter, in "<name>+49 30 1234567" it does not. So the passes repeat
        # until nothing changes; each round replaces text outside placeholders, so that
        # comes soon, and a clean text takes one round.
        for _ in range(_ROUNDS):
            scrubbed = self._scrub_once(text)
            if scrubbed == text:
                break
            text = scrubbed
        return text

    def _scrub_once(self, text: str) -> str:
        # Order matters: secrets before e-mail addresses (a URL's userinfo looks like
        # one), addresses before numbers, IBANs before cards (an IBAN holds a card-length
        # digit run), cards before phones.
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(
                lambda match: f"{match[1]}{self._placeholder('credentials', match[2])}@", text
            )
        if (
            "sk-" in text or "IA" in text or "xox" in text or "eyJ" in text
            or "_pat_" in text or ("gh" in text and "_" in text)
        ):
            text = _KEY_SHAPES.sub(lambda match: self._placeholder("token", match[0]), text)
        lowered = text.lower()
        if "bearer" in lowered:
            text = _BEARER.sub(lambda match: match[1] + self._placeholder("token", match[2]), text)
        if _may_hold_secret_pair(lowered):
            text = self._pairs(text)
        if "@" in text:
            text = _EMAIL.sub(lambda match: self._placeholder("email", match[0]), text)
        if "::" in text or text.count(":") >= 6:
            text = _IPV6.sub(self._address, text)
        if text.count(".") >= 3 and _IPV4_HINT.search(text):
            text = _IPV4.sub(self._address, text)
        encoded = text.encode("utf-8", "surrogatepass")
        shape = encoded.translate(_SHAPE)
        if b"AA99" in shape:
            text = self._numbers(text, _IBANS)
        if b"9999999999999" in shape.replace(b"-", b""):
            text = self._numbers(text, _CARDS)
        heads = encoded.translate(_HEADS)
        if (
            b"+0" in heads or b"+9" in heads or b"(0" in heads or b"(9" in heads
            or b"|00" in heads or b"|09" in heads or heads.startswith((b"00", b"09"))
            or b"999-999-9999" in shape
        ):
            text = self._numbers(text, _PHONES)
        if self._names is not None and any(hint in lowered for hint in self._name_hints):
            text = self._names.sub(lambda match: self._placeholder("name", match[0]), text)
        return text

    def scrub_value(self, value: ContextValue) -> ContextValue:
        """Scrub a context value: strings as text, large integers as their decimal
        rendering (a card number sent as a number); anything else is returned as is."""
        if isinstance(value, str):
            return self.scrub(value)
        # The shortest card number has 13 digits; bool is an int but never personal.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
            rendered = str(value)
            scrubbed = self.scrub(rendered)
            return value if scrubbed == rendered else scrubbed
        return value

    def scrub_mapping(self, mapping: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
        """Scrub every value of ``mapping``; a value under a secret-looking key (see
        `looks_secret`) becomes ``<token>`` whole. Keys are kept as they are."""
        scrubbed: dict[str, ContextValue] = {}
        for key, value in mapping.items():
            hidden = value is None or isinstance(value, bool) or value in ("", "<token>")
            if not hidden and looks_secret(key):
                scrubbed[key] = self._placeholder("token", str(value))
            else:
                scrubbed[key] = self.scrub_value(value)
        return scrubbed

    def _placeholder(self, kind: Kind, original: str) -> str:
        # Every replacement passes here, with what it replaces, so pseudonyms and
        # allow-lists have one home.
        self.hits[kind] += 1
        return f"<{kind}>"

    def _address(self, match: re.Match[str]) -> str:
        candidate = match[0]
        # A sentence or a "host:port" may end right after an IPv6 address.
        for address in (candidate, candidate.rstrip("."), candidate[:-1]):
            if _is_ip(address):
                return self._placeholder("ip", address) + candidate[len(address):]
        return candidate

    def _pairs(self, text: str) -> str:
        pieces: list[str] = []
        done = position = 0
        while (pair := _PAIR.search(text, position)) is not None:
            position = pair.end()
            if not looks_secret(pair[1]) or (value := _PAIR_VALUE.match(text, position)) is None:
                continue
            group = value.lastindex or 3  # 1 and 2: inside quotes, 3: bare
            start, end = value.span(group)
            if group == 3 and "cookie" in pair[1].lower():
                # A cookie header holds several "name=value" pairs separated by "; ".
                line_end = text.find("\n", start)
                end = len(text) if line_end < 0 else line_end
            secret = text[start:end]
            if secret and secret != "<token>":
                pieces += [text[done:start], self._placeholder("token", secret)]
                done = end
            position = max(position, end)
        pieces.append(text[done:])
        return "".join(pieces)

    def _numbers(self, text: str, family: _Family) -> str:
        # A candidate is a run of groups; the number may be any leading run of them
        # ("card 4111 1111 1111 1111 exp 12 2030"). Where none is, the search goes on from
        # a later group, so a number after a near miss is still found. The placeholder goes
        # into the text at once: "+1 555 123 4567+1 555 123 4567" holds two numbers, and
        # the second "+" only follows a placeholder, not a digit, once the first is gone.
        position = 0
        while (match := family.pattern.search(text, position)) is not None:
            start = match.start()
            position = match.end()
            if position - start < family.shortest:
                continue
            if family.outside_ibans and _inside_iban(text, start):
                position = start + 1
                continue
            groups = [part.span() for part in family.groups.finditer(text, start, position)]
            ends = [end for _, end in groups]
            for end in reversed(ends) if family.longest_first else ends:
                span = text[start:end]
                if len(span) >= family.shortest and family.accept(span):
                    placeholder = self._placeholder(family.kind, span)
                    text = text[:start] + placeholder + text[end:]
                    position = start + len(placeholder)
                    break
            else:
                restarts = [begin for begin, _ in groups[1:] if text[begin] in family.restart]
                position = restarts[0] if restarts else position
        return text
