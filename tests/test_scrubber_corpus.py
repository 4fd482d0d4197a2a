"""The scrubber's precision and recall on a labelled corpus: personal data it must find,
and look-alikes it must leave (versions, durations, hashes, ordinary prose)."""

from __future__ import annotations

import re
from collections import Counter

from ttamond.privacy import Scrubber

# (text, the placeholders the scrubber should leave, in any order)
CORPUS: list[tuple[str, list[str]]] = [
    # E-mail addresses
    ("contact jo.smith@example.org for access", ["email"]),
    ("From: \"Ann\" <ann+tta@mail.example.co.uk>", ["email"]),
    ("cc: a@b.io, c.d@e-f.org", ["email", "email"]),
    # Phone numbers
    ("call +44 20 7946 0958 after 5", ["phone"]),
    ("her number is (555) 123-4567", ["phone"]),
    ("tel 0049 30 1234567", ["phone"]),
    ("mobile: +1-202-555-0173", ["phone"]),
    # Payment cards (Luhn-valid)
    ("card 4111 1111 1111 1111 declined", ["card"]),
    ("charged 5500-0000-0000-0004", ["card"]),
    ("amex 378282246310005 on file", ["card"]),
    # IBANs
    ("refund to GB82 WEST 1234 5698 7654 32", ["iban"]),
    ("IBAN DE89370400440532013000", ["iban"]),
    # IP addresses
    ("login from 192.168.14.201 failed", ["ip"]),
    ("peer 2001:db8::ff00:42:8329 reset", ["ip"]),
    # Tokens and keys
    ("using key sk-live4f3c2b1a0e9d8c7b6a5", ["token"]),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc123def", ["token"]),
    ("github token ghp_abcdefghijklmnopqrstuvwxyz0123456789", ["token"]),
    ("aws AKIAIOSFODNN7EXAMPLE leaked", ["token"]),
    ("password=hunter2 in the log", ["token"]),
    # URLs with credentials
    ("redis://admin:s3cret@cache.internal:6379/0", ["credentials"]),
    # Configured names
    ("Margaret Hale finished chapter 3", ["name"]),
    ("note from margaret hale: thanks", ["name"]),
    # Several in one message
    ("jo@example.org (+44 20 7946 0958) paid with 4111 1111 1111 1111", ["email", "phone", "card"]),
    # Look-alikes: nothing to find
    ("upgraded to 3.11.7 from 3.10.12", []),
    ("KeyError: 'chapter'", []),
    ("took 1234567 ms over 12 retries", []),
    ("order 4111 1111 1111 1112 is not a card (Luhn fails)", []),
    ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8", []),
    ("at 2026-11-26 22:07:09 UTC", []),
    ("the bearer of bad news", []),
    ("token missing in request", []),
    ("chapter 12 of 40, 3.5 s per turn", []),
    ("version 1.2.3.4 of the engine", []),
    ("user@ in a template", []),
    ("ratio 1:2:3 kept", []),
    ("Harbour arc, choice B", []),
    ("price 19.99 EUR", []),
    ("session s-42 ended normally", []),
]
_PLACEHOLDER = re.compile(r"<(email|phone|card|iban|ip|token|credentials|name)>")


def test_precision_and_recall_on_the_labelled_corpus(capsys: object) -> None:
    scrubber = Scrubber(["Margaret Hale"])
    true_positives = false_positives = false_negatives = 0
    misses: list[str] = []
    for text, expected in CORPUS:
        found = Counter(_PLACEHOLDER.findall(scrubber.scrub(text)))
        wanted = Counter(expected)
        true_positives += sum((found & wanted).values())
        false_positives += sum((found - wanted).values())
        false_negatives += sum((wanted - found).values())
        if found != wanted:
            misses.append(f"{text!r}: found {dict(found)}, expected {dict(wanted)}")
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    print(f"scrubber on {len(CORPUS)} texts: precision {precision:.3f}, recall {recall:.3f}"
          f" ({true_positives} found, {false_positives} false, {false_negatives} missed)")
    for miss in misses:
        print("  ", miss)
    assert precision >= 0.95, misses
    assert recall >= 0.95, misses
