"""Shared pieces of the operations tests (on-call, delivery, warroom, status page): a real local HTTP
server that can fail on purpose, and a data directory whose signed ledger holds real incidents."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from engine.clock import VirtualClock, parse_iso_ms
from engine.core import Engine
from engine.datadir import DataDir


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hook:
    """A local webhook receiver. ``plan`` lists how to answer successive requests: an HTTP status,
    ``"hang"`` (sleep past the client's timeout), or ``"close"`` (drop the connection)."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    received: list[Received] = field(default_factory=list)
    plan: list[Any] = field(default_factory=list)
    default: Any = 200
    hang_s: float = 2.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def next_answer(self) -> Any:
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.received) >= n:
                return True
            time.sleep(0.01)
        return len(self.received) >= n

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_hook(default: Any = 200, plan: list[Any] | None = None, hang_s: float = 2.0) -> Hook:
    """Start the receiver on 127.0.0.1 on a free port."""
    holder: dict[str, Hook] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            hook = holder["hook"]
            answer = hook.next_answer()
            with hook.lock:
                hook.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
            if answer == "hang":
                time.sleep(hook.hang_s)
                answer = 200
            if answer == "close":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.send_response(int(answer))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                self.wfile.write(b"ok" if int(answer) < 300 else b"failing on purpose")
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    th = threading.Thread(target=server.serve_forever, name="test-hook", daemon=True)
    hook = Hook(server, th, plan=list(plan or []), default=default, hang_s=hang_s)
    holder["hook"] = hook
    th.start()
    return hook


START = "2026-01-25T14:00:00Z"


def sev1_engine(start: str = START, roster: Any = None, outbox: Any = None, seed: int = 1) -> tuple[Engine, Any]:
    """An engine on a virtual clock with a Sev1 (breaker to a critical dependency) that automation
    will not fix (the kill switch is on), escalated to humans. Returns (engine, incident)."""
    kwargs: dict[str, Any] = {}
    if roster is not None:
        kwargs["roster"] = roster
    if outbox is not None:
        kwargs["outbox"] = outbox
    eng = Engine(clock=VirtualClock(parse_iso_ms(start)), seed=seed, **kwargs)
    eng.run_for(60_000)
    eng.set_kill_switch(True, "test")
    eng.inject("dependency_outage", "action-handler")
    assert eng.run_until(lambda e: any(i.escalated and i.severity == "Sev1" for i in e.incidents.values()), 300_000)
    inc = next(i for i in eng.incidents.values() if i.severity == "Sev1")
    return eng, inc


def ledger_with_incident(root: Path, *, resolve: bool = False, title_suffix: str = "") -> tuple[DataDir, Engine, Any]:
    """A data dir whose signed ledger records a Sev1 (open, escalated) written by a real engine."""
    from engine.receipts import KeyStore, Ledger, ReceiptSink

    dd = DataDir(root).ensure()
    eng = Engine(clock=VirtualClock(parse_iso_ms(START)), seed=3)
    keys = KeyStore.open_or_init(dd.keys_dir, now_ms=eng.now_ms)
    ledger = Ledger.open(dd.ledger_path, keys)
    sink = ReceiptSink(ledger, keys, eng.policy.policy_hashes, eng.clock)
    eng.subscribe(sink)
    eng.run_for(60_000)
    eng.inject("dependency_outage", "action-handler")
    if not resolve:
        eng.set_kill_switch(True, "test")
    assert eng.run_until(lambda e: any(i.severity == "Sev1" for i in e.incidents.values()), 300_000)
    inc = next(i for i in eng.incidents.values() if i.severity == "Sev1")
    if resolve:
        assert eng.run_until(lambda e: not inc.open, 1_200_000)
    else:
        eng.run_for(120_000)
    ledger.close()
    return dd, eng, inc
