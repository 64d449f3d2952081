"""Costs of watching real systems, each beside the raw speed of what it is built on.

    .venv/bin/python bench/sources_bench.py

- engine tick on the observed fleet (every mapped signal fresh) vs on the simulator;
- Prometheus answers: mapping a vector of series to entities vs json.loads of the same answer;
- `ggen fleet serve` /metrics rendering per scrape;
- Alertmanager notifications: alerts/s handled in-process and over HTTP;
- JSON Lines samples: lines/s parsed vs bare json.loads;
- command actuator: ms per action vs a bare subprocess.run of the same script;
- webhook actuator: ms per action vs a bare urllib POST to the same local server.
"""
from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.actuators import CommandActuator, WebhookActuator  # noqa: E402
from engine.clock import VirtualClock  # noqa: E402
from engine.core import Engine  # noqa: E402
from engine.mitigate.actuator import Action  # noqa: E402
from engine.policy.bundle import load_policy  # noqa: E402
from engine.sources.alertmanager import AlertmanagerSource  # noqa: E402
from engine.sources.base import SignalSource  # noqa: E402
from engine.sources.jsonl import parse_sample_line  # noqa: E402
from engine.sources.mapping import SIGNALS, load_alertmanager_mapping, load_prometheus_mapping  # noqa: E402
from engine.sources.observed import ObservedFleet  # noqa: E402
from engine.sources.prometheus import PrometheusSource  # noqa: E402
from engine.sources.target import FleetTarget  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for n calls."""
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)


def row(name: str, value: str, raw: str = "") -> None:
    print(f"  {name:58} {value:>22}  {raw}")


class Feed(SignalSource):
    kind = "bench"

    def run(self) -> None:
        pass


def bench_ticks(policy) -> None:
    print("engine tick (7 services, 3 queues, 8 circuits, 2 regions)")
    feed = Feed("bench://", 10**12)
    fleet = ObservedFleet(policy.fleet, policy.mitigation, [feed])
    eng = Engine(policy, clock=VirtualClock(), fleet=fleet)
    feed.bind(eng)
    feed.attempted = True
    now = eng.clock.now_ms()
    names = {"service": fleet.services, "queue": fleet.queues, "circuit": fleet.breakers, "region": fleet.regions}
    for kind, ents in names.items():
        for e in ents:
            for sig in SIGNALS[kind]:
                feed.store.put(kind, e, sig, 1.0 if sig != "state" else 0.0, now)
    n = 3000
    wall, cpu = timed(lambda: eng.run_for(1000), n)
    sim = Engine(policy, clock=VirtualClock())
    swall, scpu = timed(lambda: sim.run_for(1000), n)
    row("observed fleet: engine tick", f"{wall / n * 1e6:8.0f} us ({cpu / n * 1e6:.0f} CPU)", f"simulator: {swall / n * 1e6:.0f} us ({scpu / n * 1e6:.0f} CPU)")
    fwall, _ = timed(lambda: fleet.step(eng.now_ms), n)
    row("observed fleet: step alone (apply samples)", f"{fwall / n * 1e6:8.0f} us")


def bench_prometheus() -> None:
    print("Prometheus answers")
    _, mapping = load_prometheus_mapping()
    src = PrometheusSource("http://127.0.0.1:1", mapping)
    src.known = {"service": {f"svc-{i}" for i in range(500)}}
    q = next(x for x in mapping.signals if x.signal == "p99_ms")
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"service": f"svc-{i}"}, "value": [1767225600.0, str(0.1 + i / 1000)]} for i in range(500)]}}).encode()
    n = 300
    wall, _ = timed(lambda: src._samples(q, "vector", json.loads(body)["data"]["result"]), n)
    raw, _ = timed(lambda: json.loads(body), n)
    row("500-series vector -> samples", f"{500 * n / wall:10.0f} series/s", f"json.loads alone: {500 * n / raw:.0f} series/s")


def bench_exposition(policy) -> None:
    print("ggen fleet serve /metrics")
    t = FleetTarget(policy)
    for _ in range(60):
        t.step()
    n = 200
    size = len(t.exposition())
    wall, cpu = timed(t.exposition, n)
    row("render one scrape", f"{wall / n * 1000:8.2f} ms ({cpu / n * 1000:.2f} CPU)", f"{size} bytes")
    wall, _ = timed(t.step, 2000)
    row("one fleet tick with its counters", f"{wall / 2000 * 1e6:8.0f} us")


def bench_alertmanager(policy) -> None:
    print("Alertmanager notifications")
    _, mapping = load_alertmanager_mapping()
    eng = Engine(policy, clock=VirtualClock(), seed=1)
    src = AlertmanagerSource("127.0.0.1:0", mapping)
    src.bind(eng)
    alert = {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "app", "severity": "warning"}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "fp"}
    src.receive({"version": "4", "alerts": [alert]})
    payload = {"version": "4", "alerts": [alert] * 100}
    n = 100
    wall, _ = timed(lambda: src.receive(payload), n)
    row("deduplicated alerts, in-process", f"{100 * n / wall:10.0f} alerts/s")
    src.start()
    host, port = src.address
    data = json.dumps(payload).encode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post() -> None:
        opener.open(urllib.request.Request(f"http://{host}:{port}/", data=data, method="POST"), timeout=5).read()

    wall, _ = timed(post, 50)
    src.stop()
    row("notifications of 100 alerts over HTTP", f"{50 / wall:10.0f} posts/s", f"{100 * 50 / wall:.0f} alerts/s")


def bench_jsonl() -> None:
    print("JSON Lines samples")
    line = b'{"ts_ms": 1767225600000, "service": "app", "signals": {"p99_ms": 1834.5, "error_pct": 0.4, "rps": 400}}'
    n = 50_000
    wall, _ = timed(lambda: parse_sample_line(line), n)
    raw, _ = timed(lambda: json.loads(line), n)
    row("parse and validate a 3-signal line", f"{n / wall:10.0f} lines/s", f"json.loads alone: {n / raw:.0f} lines/s")


def bench_actuators(tmp: Path) -> None:
    print("actuators")
    script = tmp / "ok.sh"
    script.write_text("#!/bin/sh\ncat >/dev/null\necho '{\"ok\": true}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    act = CommandActuator("bench", [str(script)], enabled=True)
    a = Action("throttle", "app", {"max_per_second": 100}, ("us-central1",), "bench", None, "bench")
    n = 100
    wall, _ = timed(lambda: act.apply(a, 0), n)
    raw, _ = timed(lambda: subprocess.run([str(script)], input=b"{}", capture_output=True, check=True), n)
    row("command actuator, one action", f"{wall / n * 1000:8.2f} ms", f"subprocess.run alone: {raw / n * 1000:.2f} ms")

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = "http://127.0.0.1:%d/a" % server.server_address[1]
    hook = WebhookActuator("bench", url, enabled=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    n = 300
    wall, _ = timed(lambda: hook.apply(a, 0), n)
    raw, _ = timed(lambda: opener.open(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5).read(), n)
    server.shutdown()
    row("webhook actuator, one action", f"{wall / n * 1000:8.2f} ms", f"bare urllib POST: {raw / n * 1000:.2f} ms")


def main() -> None:
    policy = load_policy()
    print(f"sources bench (python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})")
    bench_ticks(policy)
    bench_prometheus()
    bench_exposition(policy)
    bench_alertmanager(policy)
    bench_jsonl()
    with tempfile.TemporaryDirectory() as d:
        bench_actuators(Path(d))


if __name__ == "__main__":
    main()
