"""The client side of the control socket: connect, send one request, read one response.

Light on purpose (standard library and orjson): every ``ggen`` command that talks to a running
engine imports it, and ``ggen --help`` must stay fast.
"""
from __future__ import annotations

import errno
import itertools
import socket
from pathlib import Path
from typing import Any

from engine.control import protocol as proto

_ids = itertools.count(1)


class NoEngine(ConnectionError):
    """No engine answers on the data directory's control socket (none started, or it died)."""

    def __init__(self, root: Path, stale: bool = False) -> None:
        self.root = root
        self.stale = stale
        super().__init__(f"no engine is running on {root} (start one with ggen console or ggen watch)")


class ControlError(RuntimeError):
    """The engine answered ``ok: false``: ``code`` says what kind of failure, ``arg`` which argument."""

    def __init__(self, code: str, message: str, arg: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg


class ControlClient:
    """Talks to the engine serving ``socket_path``. One connection per call (they are cheap)."""

    def __init__(self, socket_path: Path, timeout: float = 30.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        root = self.socket_path.parent
        if not self.socket_path.exists():
            raise NoEngine(root)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with proto.socket_address(self.socket_path) as addr:
                sock.connect(addr)
        except FileNotFoundError:
            sock.close()
            raise NoEngine(root) from None
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                # The file is there but nobody listens: an engine died without cleaning up.
                raise NoEngine(root, stale=True) from None
            raise
        return sock

    def call(self, op: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Run ``op`` on the engine and return its result; raises NoEngine or ControlError."""
        sock = self._connect()
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            req_id = next(_ids)
            sock.sendall(proto.encode(proto.request(op, args, req_id)))
            try:
                line = proto.read_line(sock, bytearray())
            except socket.timeout:
                raise ControlError(proto.FAILED, f"the engine did not answer {op} within {sock.gettimeout():g} s") from None
            except ConnectionResetError:
                raise NoEngine(self.socket_path.parent, stale=True) from None
            if line is None:
                raise ControlError(proto.INTERNAL, f"the engine closed the connection without answering {op}")
            try:
                resp = proto.decode(line)
            except proto.ProtocolError as exc:
                raise ControlError(proto.INTERNAL, f"unreadable answer from the engine: {exc}") from None
        finally:
            sock.close()
        if resp.get("ok") is True:
            return resp.get("result")
        raise ControlError(str(resp.get("code") or proto.INTERNAL), str(resp.get("error") or "unknown error"), resp.get("arg"))

    def alive(self) -> bool:
        """True when an engine answers ``ping``."""
        try:
            self.call("ping", timeout=2.0)
            return True
        except (NoEngine, ControlError, OSError):
            return False
