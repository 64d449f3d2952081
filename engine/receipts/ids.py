"""Receipt and incident identifiers: ``urn:uuid:<uuid>``, typed with or without the prefix,
or as a unique prefix of at least 8 hex digits."""
from __future__ import annotations

import re
import uuid

URN = "urn:uuid:"
MIN_PREFIX_HEX = 8
_FULL_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PREFIX_RE = re.compile(r"^[0-9a-f-]+$")


class IdError(ValueError):
    """Text that cannot name a receipt or incident."""


def new_receipt_id() -> str:
    """A fresh ``urn:uuid:`` UUID4."""
    return URN + str(uuid.uuid4())


def is_receipt_id(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URN) and bool(_FULL_RE.match(value[len(URN) :]))


def parse_id_query(text: str) -> tuple[str, bool]:
    """Normalise what a user typed into ``(urn text, exact)``; ``exact`` False means a prefix.

    Raises :class:`IdError` for text that is neither a UUID nor a prefix of >= 8 hex digits.
    """
    t = text.strip().lower()
    if t.startswith(URN):
        t = t[len(URN) :]
    if _FULL_RE.match(t):
        return URN + t, True
    if not t or not _PREFIX_RE.match(t):
        raise IdError(f"{text!r} is not a receipt id (expected urn:uuid:<uuid>, a UUID, or 8+ leading hex digits)")
    if sum(c != "-" for c in t) < MIN_PREFIX_HEX:
        raise IdError(f"{text!r} is too short: give at least {MIN_PREFIX_HEX} hex digits of the id")
    hexdigits = t.replace("-", "")
    if len(hexdigits) > 32:
        raise IdError(f"{text!r} is longer than a UUID")
    # Put the dashes where a UUID has them, so "3f2a9c1e1234" finds "3f2a9c1e-1234-...".
    groups, pos = [], 0
    for width in (8, 4, 4, 4, 12):
        if pos >= len(hexdigits):
            break
        groups.append(hexdigits[pos : pos + width])
        pos += width
    return URN + "-".join(groups), False
