"""The control socket itself: one JSON object per line, errors as one-line answers, 0600, stale
sockets replaced, long paths, and an engine that keeps serving after a bad request."""
from __future__ import annotations

import os
import socket
import stat

import orjson
import pytest

from control_support import short_tmp
from engine.control import attach_control
from engine.control.client import ControlClient, ControlError, NoEngine
from engine.control.protocol import MAX_LINE, socket_address
from engine.control.server import ControlServer, SocketInUse
from engine.datadir import DataDir
from engine.live import LiveEngine, wait_until


@pytest.fixture
def live():
    dd = DataDir(short_tmp() / "data")
    le = LiveEngine(dd, speed=50, receipts=False)
    svc = attach_control(le)
    le.start()
    yield le, svc
    le.stop()


def _raw(path, payload: bytes) -> list[dict]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    with socket_address(path) as addr:
        s.connect(addr)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return [orjson.loads(x) for x in data.splitlines() if x.strip()]


def test_requests_and_answers_one_per_line(live):
    le, svc = live
    path = le.data_dir.control_socket_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    answers = _raw(path, b'{"v":1,"id":1,"op":"ping","args":{}}\n{"id":"b","op":"circuits.status"}\n\nnot json\n{"op":"nope"}\n[1,2]\n{"op":"ping","args":[]}\n')
    assert [a.get("id") for a in answers] == [1, "b", None, None, None, None]
    assert answers[0]["ok"] and answers[0]["result"]["pid"] == os.getpid()
    assert answers[1]["ok"] and len(answers[1]["result"]["circuits"]) == len(le.engine.fleet.breakers)
    assert [a.get("code") for a in answers[2:]] == ["bad_request", "unknown_op", "bad_request", "bad_request"]
    assert all("\n" not in a["error"] for a in answers[2:])
    assert "ping" in answers[3]["error"]  # an unknown op lists the known ones


def test_an_overlong_line_is_refused_and_the_engine_keeps_serving(live):
    le, _ = live
    path = le.data_dir.control_socket_path
    answers = _raw(path, b'{"op":"ping","args":{"x":"' + b"a" * (MAX_LINE + 10) + b'"}}\n')
    assert answers[0]["code"] == "bad_request" and "longer than" in answers[0]["error"]
    assert ControlClient(path).call("ping")["protocol"] == 1


def test_an_operation_that_breaks_is_an_internal_error_not_a_dead_engine(live):
    le, svc = live

    def broken(op, args):
        raise ZeroDivisionError("boom")

    svc.server.handler = broken
    with pytest.raises(ControlError) as ei:
        ControlClient(le.data_dir.control_socket_path).call("ping")
    assert ei.value.code == "internal" and "ZeroDivisionError: boom" in ei.value.message
    assert svc.server.errors and le.running


def test_errors_carry_the_argument(live):
    le, _ = live
    c = ControlClient(le.data_dir.control_socket_path)
    with pytest.raises(ControlError) as ei:
        c.call("governor.status", {"account_id": "acct-404"})
    assert (ei.value.code, ei.value.arg) == ("bad_argument", "account_id")


def test_no_socket_and_a_stale_socket_both_mean_no_engine(tmp_path):
    path = short_tmp() / "engine.sock"
    with pytest.raises(NoEngine) as ei:
        ControlClient(path).call("ping")
    assert str(ei.value) == f"no engine is running on {path.parent} (start one with ggen console or ggen watch)"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a killed engine leaves behind
    with pytest.raises(NoEngine) as ei:
        ControlClient(path).call("ping")
    assert ei.value.stale
    srv = ControlServer(path, lambda op, args: {"op": op}).start()
    try:
        assert ControlClient(path).call("x") == {"op": "x"}
        with pytest.raises(SocketInUse):
            ControlServer(path, lambda op, args: None).start()  # a live one is never replaced
    finally:
        srv.stop()
    assert not path.exists()


def test_a_file_that_is_not_a_socket_is_never_replaced():
    path = short_tmp() / "engine.sock"
    path.write_text("precious")
    with pytest.raises(SocketInUse):
        ControlServer(path, lambda op, args: None).start()
    assert path.read_text() == "precious"


def test_paths_longer_than_a_unix_socket_allows_still_work():
    deep = short_tmp()
    for i in range(6):
        deep = deep / ("d" * 20 + str(i))
    deep.mkdir(parents=True)
    path = deep / "engine.sock"
    assert len(str(path)) > 108
    srv = ControlServer(path, lambda op, args: {"ok": op}).start()
    try:
        assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert ControlClient(path).call("hi") == {"ok": "hi"}
    finally:
        srv.stop()
    assert not path.exists()


def test_the_socket_starts_and_stops_with_the_engine():
    dd = DataDir(short_tmp() / "data")
    le = LiveEngine(dd, speed=100, receipts=False)
    svc = attach_control(le)
    assert not dd.control_socket_path.exists()
    le.start()
    try:
        c = ControlClient(dd.control_socket_path)
        assert c.alive()
        assert wait_until(lambda: svc.history.last_ms is not None and svc.history.last_ms > le.engine.started_ms, 5)
    finally:
        le.stop()
    assert not dd.control_socket_path.exists()
    assert not ControlClient(dd.control_socket_path).alive()
