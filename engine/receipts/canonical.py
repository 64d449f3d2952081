"""Canonical JSON for receipt payloads: sorted keys, no whitespace, and a restricted profile.

Within the profile (no floats, integers within +-(2**53 - 1), ASCII string keys, strings without
lone surrogates) ``orjson`` with sorted keys produces exactly the bytes RFC 8785 (JCS) defines,
at C speed. :func:`check_profile` refuses anything outside the profile *before* signing, naming
the path of the offending value, so nothing unverifiable is ever signed.
"""
from __future__ import annotations

from typing import Any

import orjson

MAX_SAFE_INT = 2**53 - 1
_SORT = orjson.OPT_SORT_KEYS


class ProfileError(ValueError):
    """A value that canonical JSON of the receipt profile cannot represent."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def _check_str(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProfileError(path, "string holds a lone surrogate (not valid Unicode text)") from None


def check_profile(value: Any, path: str = "$") -> None:
    """Raise :class:`ProfileError` unless ``value`` is inside the canonical JSON profile."""
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        _check_str(value, path)
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise ProfileError(path, f"integer {value} is outside +-(2**53 - 1); store it as a string")
        return
    if isinstance(value, float):
        raise ProfileError(path, f"float {value!r} is not allowed; use an integer in a smaller unit (ppm, bp, ms)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProfileError(path, f"key {key!r} is a {type(key).__name__}, keys must be strings")
            if not key.isascii():
                raise ProfileError(path, f"key {key!r} is not ASCII")
            check_profile(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_profile(item, f"{path}[{i}]")
        return
    raise ProfileError(path, f"a {type(value).__name__} has no JSON form in receipts")


_SCALARS = frozenset({str, int, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})
_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _plain(value: Any) -> bool:
    """Fast pre-check: only exact JSON types, ASCII string keys, no floats anywhere.

    Integer range and lone surrogates are left to orjson (``OPT_STRICT_INTEGER`` refuses
    integers beyond +-(2**53 - 1); surrogates cannot be encoded). Anything unusual returns
    False and goes through :func:`check_profile`, which names the offending path.
    """
    t = type(value)
    if t in _SCALARS:
        return True
    if t not in _CONTAINERS:
        return False
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        x = pop()
        if type(x) is dict:
            for k, item in x.items():
                if type(k) is not str or not k.isascii():
                    return False
                ti = type(item)
                if ti in _SCALARS:
                    continue
                if ti not in _CONTAINERS:
                    return False
                push(item)
        else:
            for item in x:
                ti = type(item)
                if ti in _SCALARS:
                    continue
                if ti not in _CONTAINERS:
                    return False
                push(item)
    return True


def canonical_json(value: Any, *, vouched: bool = False, parts: tuple[Any, ...] = ()) -> bytes:
    """Canonical bytes of ``value``, after checking the profile (raises ProfileError).

    ``vouched=True`` is for a caller that built ``value`` itself from checked scalars: only the
    foreign ``parts`` (e.g. evidence given by the engine) get the structural pre-check.
    """
    if all(_plain(p) for p in parts) if vouched else _plain(value):
        try:
            return orjson.dumps(value, option=_STRICT)
        except (TypeError, orjson.JSONEncodeError):
            pass  # fall through to the precise check, which says where the problem is
    check_profile(value)
    return orjson.dumps(value, option=_STRICT)


def canonical_json_unchecked(value: Any) -> bytes:
    """Canonical bytes of a value already known to be inside the profile (e.g. just parsed)."""
    return orjson.dumps(value, option=_SORT)
