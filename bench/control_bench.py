"""Figures of the control channel and the manual commands, beside the raw speed underneath.

* control round trip (connect, one JSON request, one answer) vs a raw Unix-socket echo of the same
  bytes on the same threading model, per fresh connection and on one kept connection;
* a few diagnose operations on a live engine with 30 minutes of history;
* what the control service adds to each engine tick (history sampling) and what the fleet's
  request logs and replication add to Fleet.step;
* `logs tail --filter`: the Python evaluator on live records, and the compiled DuckDB condition
  vs the same condition written by hand in SQL, on 1,000,000 rows;
* a `ggen` command end to end (process start included) vs `python -c pass`.

    .venv/bin/python bench/control_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from engine.clock import VirtualClock
from engine.control import attach_control
from engine.control.client import ControlClient
from engine.control.history import MetricsHistory
from engine.control.logfilter import matches, parse, to_sql
from engine.core import Engine
from engine.datadir import DataDir
from engine.live import LiveEngine


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def echo_server(path: Path) -> socket.socket:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(16)

    def serve(conn: socket.socket) -> None:
        buf = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(line + b"\n")
        conn.close()

    def loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv


def raw_roundtrip(path: Path, n: int, payload: bytes) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.sendall(payload)
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
        s.close()
        out.append(time.perf_counter() - t)
    return out


def kept_connection(path: Path, n: int, payload: bytes) -> float:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    t = time.perf_counter()
    for _ in range(n):
        s.sendall(payload)
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
    dt = time.perf_counter() - t
    s.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 300 if a.quick else 2000
    tmp = Path(tempfile.mkdtemp(prefix="ggen-bench-", dir="/tmp"))
    print(f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}")

    # ---------------------------------------------------------------- round trips
    live = LiveEngine(DataDir(tmp / "data"), speed=1.0, receipts=False)
    attach_control(live)
    live.start()
    try:
        ping = orjson.dumps({"v": 1, "id": 1, "op": "ping", "args": {}}) + b"\n"
        client = ControlClient(live.data_dir.control_socket_path)
        ours = []
        for _ in range(n):
            t = time.perf_counter()
            client.call("ping")
            ours.append(time.perf_counter() - t)
        echo_path = tmp / "echo.sock"
        srv = echo_server(echo_path)
        raw = raw_roundtrip(echo_path, n, ping)
        ours_kept = kept_connection(live.data_dir.control_socket_path, n, ping)
        raw_kept = kept_connection(echo_path, n, ping)
        srv.close()
        print("\ncontrol round trip (ping)           median      p99    per second")
        print(f"  ggen control, new connection   {statistics.median(ours) * 1e6:8.0f} us {_pct(ours, 0.99) * 1e6:7.0f} us {1 / statistics.mean(ours):9,.0f}")
        print(f"  raw unix echo, new connection  {statistics.median(raw) * 1e6:8.0f} us {_pct(raw, 0.99) * 1e6:7.0f} us {1 / statistics.mean(raw):9,.0f}")
        print(f"  ggen control, kept connection  {'':>21} {ours_kept:9,.0f}")
        print(f"  raw unix echo, kept connection {'':>21} {raw_kept:9,.0f}")
    finally:
        live.stop()

    # ---------------------------------------------------------------- diagnose ops with history
    eng = Engine(clock=VirtualClock(), seed=1)
    hist = MetricsHistory()
    t_step = t_rec = 0.0
    ticks = 1800
    for _ in range(ticks):
        t0 = time.perf_counter()
        eng.run_for(eng.tick_ms)
        t1 = time.perf_counter()
        hist.record(eng)
        t2 = time.perf_counter()
        t_step += t1 - t0
        t_rec += t2 - t1
    eng.inject("bad_deploy", "app")
    eng.run_for(120_000)
    from engine.control.operations import Operations

    ops = Operations(eng, history=hist)
    print(f"\nhistory sampling per tick: {t_rec / ticks * 1e6:.0f} us beside Engine.step {t_step / ticks * 1e6:.0f} us ({100 * t_rec / t_step:.0f} % on top)")
    cases = [
        ("circuits.status", {}),
        ("services.health", {}),
        ("metrics.get --metric request_latency --since 5m", ("metrics.get", {"metric": "request_latency", "since": "5m"})),
        ("metrics.get error_rate --grouped-by error_code --since 30m", ("metrics.get", {"metric": "error_rate", "grouped_by": "error_code", "since": "30m"})),
        ("metrics.get --since 24h --aggregation daily", ("metrics.get", {"metric": "request_latency", "since": "24h", "aggregation": "daily"})),
        ("logs.tail --filter 'status_code >= 500' (5,000 lines)", ("logs.tail", {"filter": "status_code >= 500", "limit": 100})),
    ]
    print("operation (in process, 30 min of history)              median")
    for label, spec in cases:
        op, args = (label, spec) if isinstance(spec, dict) else spec
        xs = []
        for _ in range(50 if a.quick else 200):
            t = time.perf_counter()
            ops.handle(op, args)
            xs.append(time.perf_counter() - t)
        print(f"  {label:54} {statistics.median(xs) * 1e3:6.2f} ms")

    # ---------------------------------------------------------------- fleet additions
    f = eng.fleet
    k = 2000
    t = time.perf_counter()
    for _ in range(k):
        f._request_logs(f.now_ms, 1.0)
    t_logs = (time.perf_counter() - t) / k
    t = time.perf_counter()
    for _ in range(k):
        f._replicate(f.now_ms, 0.0)
    t_rep = (time.perf_counter() - t) / k
    t = time.perf_counter()
    for _ in range(k // 4):
        f.step(f.now_ms + 1000)
    t_fleet = (time.perf_counter() - t) / (k // 4)
    print(f"\nFleet.step {t_fleet * 1e6:.0f} us per tick, of which request logs {t_logs * 1e6:.1f} us and replication {t_rep * 1e6:.1f} us ({100 * (t_logs + t_rep) / t_fleet:.0f} %)")

    # ---------------------------------------------------------------- filters
    import duckdb

    rows = 200_000 if a.quick else 1_000_000
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE events AS SELECT to_timestamp(1700000000 + i) AS ts,
            CASE WHEN i % 7 = 0 THEN 'ERROR' WHEN i % 5 = 0 THEN 'WARN' ELSE 'INFO' END AS level,
            'svc' || (i % 9) AS service,
            'request ' || i || CASE WHEN i % 11 = 0 THEN ' validation_error' ELSE '' END AS message,
            json_object('status_code', CASE WHEN i % 7 = 0 THEN 500 + i % 5 WHEN i % 5 = 0 THEN 400 + i % 30 ELSE 200 END) AS attrs
          FROM range({rows}) t(i)"""
    )
    expr = "status_code >= 400 AND status_code < 500"
    cond, params = to_sql(parse(expr))
    hand = "TRY_CAST(json_extract_string(attrs, '$.status_code') AS DOUBLE) >= 400 AND TRY_CAST(json_extract_string(attrs, '$.status_code') AS DOUBLE) < 500"

    def timed(sql: str, p: list) -> tuple[float, int]:
        best = 1e9
        cnt = 0
        for _ in range(3):
            t = time.perf_counter()
            cnt = con.execute(sql, p).fetchone()[0]
            best = min(best, time.perf_counter() - t)
        return best, cnt

    ours_t, ours_n = timed(f"SELECT count(*) FROM events WHERE {cond}", params)
    hand_t, hand_n = timed(f"SELECT count(*) FROM events WHERE {hand}", [])
    assert ours_n == hand_n
    word_t, _ = timed(f"SELECT count(*) FROM events WHERE {to_sql(parse('validation_error'))[0]}", to_sql(parse("validation_error"))[1])
    hand_word_t, _ = timed("SELECT count(*) FROM events WHERE lower(message) LIKE '%validation_error%'", [])
    recs = [{"level": "INFO", "service": "app", "message": f"request {i}", "status_code": 200 + (i % 7) * 50} for i in range(100_000)]
    e = parse(expr)
    t = time.perf_counter()
    hits = sum(1 for r in recs if matches(e, r))
    py_t = time.perf_counter() - t
    print(f"\nfilter {expr!r}")
    print(f"  DuckDB, compiled from the filter  {rows / ours_t / 1e6:6.1f} M rows/s ({ours_n:,} of {rows:,})")
    print(f"  DuckDB, same condition by hand    {rows / hand_t / 1e6:6.1f} M rows/s")
    print(f"  bare word 'validation_error': compiled {rows / word_t / 1e6:.1f} M rows/s (searches service, message and fields) vs message LIKE by hand {rows / hand_word_t / 1e6:.1f} M rows/s")
    print(f"  Python on live records           {len(recs) / py_t / 1e6:6.2f} M records/s ({hits:,} of {len(recs):,})")

    # ---------------------------------------------------------------- a command end to end
    ggen = Path(sys.executable).parent / "ggen"
    env = dict(os.environ, GGEN_DATA_DIR=str(tmp / "data2"))
    live = LiveEngine(DataDir(tmp / "data2"), speed=1.0, receipts=False)
    attach_control(live)
    live.start()
    try:
        def run(argv: list[str]) -> float:
            xs = []
            for _ in range(5 if a.quick else 15):
                t = time.perf_counter()
                subprocess.run(argv, env=env, capture_output=True, check=True)
                xs.append(time.perf_counter() - t)
            return statistics.median(xs)

        base = run([sys.executable, "-c", "pass"])
        cmd = run([str(ggen), "circuits", "status"])
        cmdj = run([str(ggen), "services", "health", "--json"])
        print(f"\nend to end: `ggen circuits status` {cmd * 1e3:.0f} ms, `ggen services health --json` {cmdj * 1e3:.0f} ms, `python -c pass` {base * 1e3:.0f} ms")
    finally:
        live.stop()


if __name__ == "__main__":
    main()
