"""The control protocol: one JSON object per line over the engine's Unix domain socket.

A request names an operation and its arguments::

    {"v": 1, "id": 7, "op": "circuits.status", "args": {}}

and gets exactly one response line, either::

    {"v": 1, "id": 7, "ok": true, "result": {...}}

or::

    {"v": 1, "id": 7, "ok": false, "error": "one line saying what is wrong", "code": "bad_argument", "arg": "service"}

``code`` is one of :data:`ERROR_CODES`; ``arg`` names the request argument at fault when there is
one (a face turns ``account_id`` into ``--account-id``). A connection may carry many requests, one
after another. Lines longer than :data:`MAX_LINE` bytes are refused and the connection is closed.
This module holds no engine logic and imports nothing heavy: the command-line client uses it too.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20  # bytes per request or response line

# Error codes and what a command-line face does with them.
BAD_REQUEST = "bad_request"  # not JSON, not an object, wrong protocol version
UNKNOWN_OP = "unknown_op"
BAD_ARGUMENT = "bad_argument"  # an argument is missing, malformed, out of range or names nothing known
NOT_FOUND = "not_found"  # an incident, query or change that does not exist
REFUSED = "refused"  # the safety governor or a precondition said no (service unhealthy, not confirmed)
FAILED = "failed"  # the action ran and failed
INTERNAL = "internal"  # a bug: the engine keeps running, the message says what broke
ERROR_CODES = frozenset({BAD_REQUEST, UNKNOWN_OP, BAD_ARGUMENT, NOT_FOUND, REFUSED, FAILED, INTERNAL})

# Unix socket paths are limited to 107 bytes; longer ones are reached through /proc/self/fd.
_SUN_PATH_MAX = 100


class OpError(Exception):
    """An operation's error: becomes an ``ok: false`` response."""

    def __init__(self, code: str, message: str, arg: str | None = None) -> None:
        super().__init__(message)
        self.code = code if code in ERROR_CODES else INTERNAL
        self.message = one_line(message)
        self.arg = arg


class ProtocolError(ValueError):
    """A line that is not a valid request or response."""


def one_line(text: object, limit: int = 600) -> str:
    """A message made to fit one line: newlines and tabs become spaces, control characters go."""
    s = " ".join(str(text).split())
    s = "".join(ch for ch in s if ch.isprintable())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def encode(obj: dict[str, Any]) -> bytes:
    """One protocol line (UTF-8 JSON, newline-terminated)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line; raises ProtocolError when it is not a JSON object."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("a request must be a JSON object")
    return obj


def request(op: str, args: dict[str, Any] | None = None, req_id: int | str | None = None) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": req_id, "op": op, "args": args or {}}


def ok(result: Any, req_id: Any = None) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": req_id, "ok": True, "result": result}


def error(code: str, message: str, arg: str | None = None, req_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": req_id, "ok": False, "error": one_line(message), "code": code}
    if arg:
        out["arg"] = arg
    return out


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits a Unix socket: the path itself, or, when it is too long,
    the same file reached through ``/proc/self/fd/<dir fd>/<name>`` (Linux)."""
    p = str(path)
    if len(os.fsencode(p)) <= _SUN_PATH_MAX:
        yield p
        return
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        short = f"/proc/self/fd/{fd}/{path.name}"
        if len(short) > _SUN_PATH_MAX:
            raise OSError(f"socket name {path.name!r} is too long")
        yield short
    finally:
        os.close(fd)


def read_line(sock: socket.socket, buf: bytearray, limit: int = MAX_LINE) -> bytes | None:
    """Read one newline-terminated line from ``sock`` using ``buf`` for leftovers.

    Returns None at end of stream; raises ProtocolError when the line exceeds ``limit``.
    """
    while True:
        nl = buf.find(b"\n")
        if nl > limit:
            raise ProtocolError(f"line longer than {limit} bytes")
        if nl >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            return line
        if len(buf) > limit:
            raise ProtocolError(f"line longer than {limit} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                line = bytes(buf)
                buf.clear()
                return line
            return None
        buf.extend(chunk)
