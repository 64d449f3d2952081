"""The engine side of the control socket: accept connections, answer each request line.

:class:`ControlServer` has ``start()``/``stop()`` so it can sit in ``LiveEngine.services``: it
starts after the data-directory lock is held and stops before it is released, so a socket file
left behind by a dead engine is the only thing it ever replaces. The socket is created mode 0600
(bound under a private temporary name, then renamed into place) because whoever can connect can
act on the live system.
"""
from __future__ import annotations

import os
import socket
import stat
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from engine.control import protocol as proto

Handler = Callable[[str, dict[str, Any]], Any]


class SocketInUse(RuntimeError):
    """Something already answers on the socket path (it is not a leftover of a dead engine)."""


class ControlServer:
    """Serves ``handler(op, args)`` on a Unix domain socket, one thread per connection."""

    def __init__(self, socket_path: Path, handler: Handler, *, idle_timeout_s: float = 300.0) -> None:
        self.socket_path = Path(socket_path)
        self.handler = handler
        self.idle_timeout_s = idle_timeout_s
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._inode: tuple[int, int] | None = None
        self.requests = 0
        self.errors: list[str] = []  # internal errors, for the face to show

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "ControlServer":
        path = self.socket_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clear_stale(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with proto.socket_address(tmp) as addr:
                sock.bind(addr)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
            sock.listen(16)
            sock.settimeout(0.2)
        except BaseException:
            sock.close()
            for p in (tmp,):
                try:
                    p.unlink()
                except OSError:
                    pass
            raise
        st = os.stat(path)
        self._inode = (st.st_dev, st.st_ino)
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="ggen-control", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._conns_lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        # Remove the socket file only if it is still ours.
        try:
            st = os.stat(self.socket_path)
            if self._inode == (st.st_dev, st.st_ino):
                self.socket_path.unlink()
        except OSError:
            pass
        self._inode = None

    @staticmethod
    def _clear_stale(path: Path) -> None:
        """Remove a socket file nobody listens on; refuse to touch anything else."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            with proto.socket_address(path) as addr:
                probe.connect(addr)
        except OSError:
            path.unlink(missing_ok=True)  # stale: its engine died
            return
        finally:
            probe.close()
        raise SocketInUse(f"another process already answers on {path}")

    # ------------------------------------------------------------------ serving
    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            conn.settimeout(self.idle_timeout_s)
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="ggen-control-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            while not self._stopping.is_set():
                try:
                    line = proto.read_line(conn, buf)
                except proto.ProtocolError as exc:
                    self._send(conn, proto.error(proto.BAD_REQUEST, str(exc)))
                    return
                except (socket.timeout, OSError):
                    return
                if line is None:
                    return
                if not line.strip():
                    continue
                self._send(conn, self.answer(line))
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _send(conn: socket.socket, obj: dict[str, Any]) -> None:
        try:
            conn.sendall(proto.encode(obj))
        except OSError:
            pass

    def answer(self, line: bytes) -> dict[str, Any]:
        """The response to one request line (never raises)."""
        self.requests += 1
        try:
            req = proto.decode(line)
        except proto.ProtocolError as exc:
            return proto.error(proto.BAD_REQUEST, str(exc))
        req_id = req.get("id")
        if not isinstance(req_id, (int, str, type(None))):
            req_id = None
        if req.get("v", proto.PROTOCOL_VERSION) != proto.PROTOCOL_VERSION:
            return proto.error(proto.BAD_REQUEST, f"protocol version {req.get('v')!r} is not supported (this engine speaks {proto.PROTOCOL_VERSION})", req_id=req_id)
        op = req.get("op")
        args = req.get("args", {})
        if args is None:
            args = {}
        if not isinstance(op, str) or not op:
            return proto.error(proto.BAD_REQUEST, "a request needs an \"op\" string", req_id=req_id)
        if not isinstance(args, dict):
            return proto.error(proto.BAD_REQUEST, "\"args\" must be an object", req_id=req_id)
        try:
            return proto.ok(self.handler(op, args), req_id)
        except proto.OpError as exc:
            return proto.error(exc.code, exc.message, exc.arg, req_id)
        except Exception as exc:  # a bug in an operation must not take the engine down
            text = f"{op} failed inside the engine: {type(exc).__name__}: {exc}"
            self.errors.append(text + "\n" + traceback.format_exc())
            return proto.error(proto.INTERNAL, text, req_id=req_id)
