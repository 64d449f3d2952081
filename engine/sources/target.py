"""`ggen fleet serve`: the simulated fleet as a real target, on the wall clock, over HTTP.

It is the demo system and the test system for the real sources and actuators: Prometheus scrapes
its ``/metrics`` (the exposition format, written with ``prometheus-client``), faults are injected
through its HTTP API, and the actions of an engine watching it arrive at ``POST /actions`` (from a
webhook or command actuator) and are applied with the simulator actuator. It runs the fleet (and,
with ``autoscale``, the fleet's own pre-incident auto-scaler), never a second incident engine.

HTTP API (JSON in and out, loopback by default):

- ``GET /metrics``: the Prometheus exposition.
- ``GET /healthz``: liveness, the fleet's time and speed.
- ``GET /state``: every entity's signals, the DNS weights and the active faults.
- ``GET /faults``: active and past faults, and the fault kinds with their parameters.
- ``POST /faults`` ``{"kind", "target"?, "params"?, "duration_s"?}``: inject (201, the fault).
- ``DELETE /faults/<id>``: end a fault now.
- ``POST /actions``: an action document (engine.actuators.document) or ``{"action", "target",
  "params"}``; answers ``{"ok", "detail", "changes", "deferred", "exhausted"}``.
- ``GET /actions``: the actions applied so far.

Counters count simulated requests divided by the speed, so ``rate()`` reads requests per
simulated second at any ``--speed``; gauges are the current simulated values.
"""
from __future__ import annotations

import json
import math
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from pydantic import Field

from engine.clock import WallClock, iso_utc
from engine.detect.rules import Sustained
from engine.fleet.faults import FAULT_KINDS
from engine.fleet.model import Fleet
from engine.mitigate.actuator import Action, SimActuator, UnknownAction
from engine.mitigate.breaker import STATE_NAMES
from engine.mitigate.scaling import next_concurrency
from engine.policy.bundle import Policy, load_policy
from engine.policy.loader import StrictModel, load_model

_Z99 = 2.326
_SQRT2 = math.sqrt(2.0)


class Exposition(StrictModel):
    latency_buckets_ms: list[float] = Field(min_length=2)


class ApiLimits(StrictModel):
    max_body_bytes: int = Field(default=65536, ge=1024)
    action_log: int = Field(default=500, ge=1)


class TargetSettings(StrictModel):
    """runbooks/sources/fleet_serve.toml."""

    exposition: Exposition
    api: ApiLimits = ApiLimits()
    autoscale: dict[str, Any] = Field(default_factory=dict)


def load_target_settings(path=None) -> TargetSettings:
    from runbooks import RUNBOOKS_DIR

    settings = load_model(path or RUNBOOKS_DIR / "sources" / "fleet_serve.toml", TargetSettings)
    b = settings.exposition.latency_buckets_ms
    if any(x <= 0 for x in b) or sorted(set(b)) != b:
        from engine.policy.loader import PolicyError

        raise PolicyError(path or "runbooks/sources/fleet_serve.toml", "exposition.latency_buckets_ms", "must be positive and strictly increasing")
    return settings


def lognormal_cdf(limit_ms: float, p50: float, p99: float) -> float:
    """Share of a log-normal latency distribution (given its P50 and P99) at or below ``limit_ms``."""
    if p50 <= 0:
        return 1.0
    sigma = math.log(max(p99, p50 * 1.01) / p50) / _Z99
    return 0.5 * math.erfc(-math.log(limit_ms / p50) / (sigma * _SQRT2))


def lognormal_mean(p50: float, p99: float) -> float:
    if p50 <= 0:
        return 0.0
    sigma = math.log(max(p99, p50 * 1.01) / p50) / _Z99
    return p50 * math.exp(sigma * sigma / 2.0)


class _Hist:
    """Cumulative bucket counts of one latency histogram."""

    __slots__ = ("counts", "total", "sum_s")

    def __init__(self, n: int) -> None:
        self.counts = [0.0] * n
        self.total = 0.0
        self.sum_s = 0.0

    def add(self, n: float, p50: float, p99: float, bounds_ms: list[float]) -> None:
        if n <= 0:
            return
        for i, b in enumerate(bounds_ms):
            self.counts[i] += n * lognormal_cdf(b, p50, p99)
        self.total += n
        self.sum_s += n * lognormal_mean(p50, p99) / 1000.0


class FleetTarget:
    """The simulated fleet on the wall clock, with counters for the exposition and an HTTP API."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        seed: int = 1,
        speed: float = 1.0,
        scenario: Any = None,
        autoscale: bool = False,
        settings: TargetSettings | None = None,
    ) -> None:
        self.policy = policy or load_policy()
        self.settings = settings or load_target_settings()
        self.bounds_ms = list(self.settings.exposition.latency_buckets_ms)
        self.seed = seed
        self.speed = speed
        self.clock = WallClock(speed=speed)
        self.fleet = Fleet(self.policy.fleet, self.policy.mitigation, seed=seed)
        self.actuator = SimActuator(self.fleet, self.policy.mitigation)
        self.lock = threading.RLock()
        self.tick_ms = self.policy.fleet.fleet.tick_ms
        self.started_ms = self.clock.now_ms()
        self.now_ms = self.started_ms
        self.ticks = 0
        self.autoscale = autoscale
        self._scaler: dict[str, Sustained] = {}
        self.scenario = scenario
        self._script: list[tuple[int, Any]] = sorted(((int(f.at_s * 1000), f) for f in scenario.faults), key=lambda x: x[0]) if scenario else []
        n = len(self.bounds_ms)
        self.requests: dict[tuple[str, str], float] = {(s, "200"): 0.0 for s in self.fleet.services}
        self.latency: dict[str, _Hist] = {s: _Hist(n) for s in self.fleet.services}
        self.calls: dict[str, list[float]] = {b: [0.0, 0.0] for b in self.fleet.breakers}
        self.queue_counts: dict[str, list[float]] = {q: [0.0, 0.0, 0.0] for q in self.fleet.queues}  # ingested, processed, failed
        self.edge = [0.0, 0.0]  # requests, errors
        self.actions: deque[dict[str, Any]] = deque(maxlen=self.settings.api.action_log)
        self.events: deque[dict[str, Any]] = deque(maxlen=500)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.crash: str | None = None

    # ------------------------------------------------------------------ the loop
    def start(self) -> "FleetTarget":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ggen-fleet-target", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                target = self.clock.now_ms()
                while self.now_ms + self.tick_ms <= target and not self._stop.is_set():
                    self.step()
                wait = (self.now_ms + self.tick_ms - self.clock.now_ms()) / 1000.0 / self.speed
                if wait > 0:
                    self._stop.wait(min(wait, 0.25))
        except Exception as exc:  # shown by /healthz, never a silent stop
            self.crash = f"{type(exc).__name__}: {exc}"

    def step(self) -> None:
        """One tick of the fleet, then the counters it adds."""
        with self.lock:
            self.now_ms += self.tick_ms
            now = self.now_ms
            self.ticks += 1
            while self._script and self._script[0][0] <= now - self.started_ms:
                _, f = self._script.pop(0)
                self._inject(f.kind, f.target, f.params or None, f.duration_s, actor=f"scenario:{self.scenario.name}")
            self.fleet.step(now)
            if self.autoscale:
                self._autoscale(now)
            self._count(self.tick_ms / 1000.0 / self.speed)

    def _count(self, k: float) -> None:
        f = self.fleet
        for name, s in f.services.items():
            base = s.in_rps if s.throttled_rps > 0 else s.served_rps
            if base <= 0:
                continue
            n = base * k
            shares = f.error_breakdown(s)
            failed = 0.0
            for code, share in shares.items():
                c = n * share
                failed += c
                key = (name, str(code))
                self.requests[key] = self.requests.get(key, 0.0) + c
            self.requests[(name, "200")] += max(0.0, n - failed)
            self.latency[name].add(n, s.p50, s.p99, self.bounds_ms)
        for e in f.edges:
            c = self.calls[e.breaker.name]
            c[0] += e.passed * k
            c[1] += e.errors * k
        for name, q in f.queues.items():
            c = self.queue_counts[name]
            c[0] += q.ingest * k
            c[1] += q.processed * k
            c[2] += max(0.0, q.attempted - q.processed) * k
        total = failed_edge = 0.0
        for s in f.services.values():
            if s.ingress_rps > 0:
                total += s.in_rps + s.edge_failed_rps
                failed_edge += s.edge_failed_rps + s.served_rps * (s.err5 + s.err4) + s.throttled_rps
        self.edge[0] += total * k
        self.edge[1] += failed_edge * k

    def _autoscale(self, now: int) -> None:
        sp = self.policy.mitigation.scaler
        for name, q in self.fleet.queues.items():
            tr = self._scaler.setdefault(name, Sustained(sp.pre_incident_sustain_s * 1000))
            if not tr.update(q.depth > sp.pre_incident_depth, now):
                continue
            if q.last_scaled_ms is not None and now - q.last_scaled_ms < sp.cooldown_s * 1000:
                continue
            d = next_concurrency(q.concurrency, q.depth, sp, q.limit)
            if d.changes:
                before, q.concurrency, q.last_scaled_ms = q.concurrency, d.proposed, now
                self._event("scaling.applied", f"auto-scaler: {name} concurrency {before} -> {d.proposed}")

    def _event(self, kind: str, text: str, **data: Any) -> None:
        self.events.append({"at": iso_utc(self.now_ms), "kind": kind, "text": text, **data})

    # ------------------------------------------------------------------ the API's verbs
    def _inject(self, kind: str, target: str | None, params: dict[str, Any] | None, duration_s: float | None, *, actor: str) -> dict[str, Any]:
        from engine.core import default_target

        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        fault = self.fleet.inject(kind, target or default_target(self.fleet, kind), self.now_ms, params, duration_s)
        self._event("fault.injected", f"{actor} injected {kind} on {fault.target}", fault=fault.id)
        return fault.to_dict()

    def inject(self, kind: str, target: str | None = None, params: dict[str, Any] | None = None, duration_s: float | None = None, *, actor: str = "api") -> dict[str, Any]:
        """Inject a fault now. Raises ValueError for an unknown kind, target or parameter."""
        with self.lock:
            return self._inject(kind, target, params, duration_s, actor=actor)

    def clear(self, fault_id: str) -> dict[str, Any]:
        with self.lock:
            fault = self.fleet.clear_fault(fault_id, self.now_ms)
            self._event("fault.cleared", f"fault {fault_id} ({fault.kind} on {fault.target}) ended")
            return fault.to_dict()

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Apply an action document with the simulator actuator. Raises ValueError on a bad one."""
        a = doc.get("action")
        if isinstance(a, dict):
            name, target, params, actor, reason, incident = a.get("name"), a.get("target"), a.get("params") or {}, a.get("actor", "remote"), a.get("reason", ""), a.get("incident_id")
        else:
            name, target, params, actor, reason, incident = a, doc.get("target"), doc.get("params") or {}, doc.get("actor", "remote"), doc.get("reason", ""), doc.get("incident_id")
        if not isinstance(name, str) or not isinstance(target, str) or not isinstance(params, dict):
            raise ValueError("an action needs a name (text), a target (text) and params (an object)")
        with self.lock:
            action = Action(name, target, dict(params), (self.fleet.serving,), str(actor), incident, str(reason))
            try:
                result = self.actuator.apply(action, self.now_ms)
            except UnknownAction as exc:
                raise ValueError(str(exc)) from None
            entry = {
                "at": iso_utc(self.now_ms), "action": name, "target": target, "params": params, "actor": actor, "incident_id": incident,
                "ok": result.ok, "detail": result.detail, "deferred": result.deferred, "exhausted": result.exhausted,
            }
            self.actions.append(entry)
            self._event("action", f"{actor}: {name} on {target}: {result.detail}")
            return {"ok": result.ok, "detail": result.detail, "changes": _jsonable(result.changes), "deferred": result.deferred, "exhausted": result.exhausted}

    def state(self) -> dict[str, Any]:
        f = self.fleet
        with self.lock:
            return {
                "now": iso_utc(self.now_ms),
                "now_ms": self.now_ms,
                "speed": self.speed,
                "services": {n: dict(f.service_signals(s), revision=s.revision, config_version=s.config_version, up=s.up) for n, s in f.services.items()},
                "queues": {n: f.queue_signals(q) for n, q in f.queues.items()},
                "circuits": {n: dict(f.circuit_signals(b), state_name=STATE_NAMES[b.state]) for n, b in f.breakers.items()},
                "regions": {n: dict(f.region_signals(r), up=r.up) for n, r in f.regions.items()},
                "dns_weights": dict(f.dns.weights),
                "serving_region": f.serving,
                "faults": [x.to_dict() for x in f.active_faults(self.now_ms)],
            }

    # ------------------------------------------------------------------ exposition
    def collect(self) -> Iterable[Any]:
        """The metric families (a prometheus_client collector's ``collect``)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        f = self.fleet
        with self.lock:
            info = GaugeMetricFamily("ggen_fleet_info", "The served fleet (value 1)", labels=["fleet", "seed", "speed"])
            info.add_metric([self.policy.fleet.fleet.name, str(self.seed), f"{self.speed:g}"], 1.0)
            yield info
            req = CounterMetricFamily("ggen_requests", "Requests answered, by service and HTTP status", labels=["service", "code"])
            for (svc, code), v in sorted(self.requests.items()):
                req.add_metric([svc, code], v)
            yield req
            hist = HistogramMetricFamily("ggen_request_duration_seconds", "Request latency", labels=["service"])
            les = [_le(b / 1000.0) for b in self.bounds_ms]
            for svc, h in self.latency.items():
                buckets = [(le, c) for le, c in zip(les, h.counts)] + [("+Inf", h.total)]
                hist.add_metric([svc], buckets, h.sum_s)
            yield hist
            gauges = {
                "ggen_service_cpu_percent": ("CPU use", lambda s: s.cpu_pct),
                "ggen_service_memory_percent": ("Memory use", lambda s: s.memory_pct),
                "ggen_service_replicas": ("Ready replicas", lambda s: float(s.replicas)),
                "ggen_service_up": ("1 when the service answers", lambda s: 1.0 if s.up else 0.0),
                "ggen_service_in_flight_requests": ("Concurrent requests (rate x P50 latency)", lambda s: s.served_rps * s.p50 / 1000.0),
                "ggen_service_revision": ("Deployed revision", lambda s: float(s.revision)),
                "ggen_service_config_version": ("Config version in force", lambda s: float(s.config_version)),
            }
            for name, (doc, get) in gauges.items():
                g = GaugeMetricFamily(name, doc, labels=["service"])
                for svc, s in f.services.items():
                    g.add_metric([svc], get(s))
                yield g
            qg = {
                "ggen_queue_depth": ("Messages waiting", lambda q: q.depth),
                "ggen_queue_oldest_unacked_age_seconds": ("Age of the oldest unacknowledged message", lambda q: q.oldest_age_s),
                "ggen_queue_consumer_concurrency": ("Consumer concurrency (workers)", lambda q: float(q.concurrency)),
                "ggen_queue_consumer_concurrency_limit": ("Concurrency limit (quota or maximum)", lambda q: float(q.limit)),
            }
            for name, (doc, get) in qg.items():
                g = GaugeMetricFamily(name, doc, labels=["tenant", "consumer"])
                for t, q in f.queues.items():
                    g.add_metric([t, q.consumer], get(q))
                yield g
            for i, (name, doc) in enumerate((("ggen_queue_messages_ingested", "Messages received"), ("ggen_queue_messages_processed", "Messages delivered"), ("ggen_queue_messages_failed", "Delivery attempts that failed"))):
                c = CounterMetricFamily(name, doc, labels=["tenant", "consumer"])
                for t, q in f.queues.items():
                    c.add_metric([t, q.consumer], self.queue_counts[t][i])
                yield c
            labels = ["circuit", "caller", "dependency"]
            state = GaugeMetricFamily("ggen_circuit_breaker_state", "Breaker state: 0 closed, 1 half-open, 2 open", labels=labels)
            fail = GaugeMetricFamily("ggen_circuit_breaker_failure_percent", "Share of calls to the dependency failing or timing out", labels=labels)
            p99 = GaugeMetricFamily("ggen_circuit_breaker_dependency_p99_seconds", "P99 latency of calls to the dependency", labels=labels)
            calls = CounterMetricFamily("ggen_dependency_calls", "Calls passed to the dependency", labels=labels)
            errs = CounterMetricFamily("ggen_dependency_call_errors", "Calls to the dependency that failed", labels=labels)
            for n, b in f.breakers.items():
                lv = [n, b.caller, b.dependency]
                cs = f.circuit_signals(b)
                state.add_metric(lv, float(b.state))
                fail.add_metric(lv, cs["error_pct"])
                p99.add_metric(lv, cs["p99_ms"] / 1000.0)
                calls.add_metric(lv, self.calls[n][0])
                errs.add_metric(lv, self.calls[n][1])
            yield from (state, fail, p99, calls, errs)
            rg = {
                "ggen_region_up": ("1 when the region answers", lambda r: 1.0 if r.up else 0.0),
                "ggen_region_last_health_check_ok": ("1 when the last health check passed", lambda r: 1.0 if r.last_check_ok else 0.0),
                "ggen_region_health_check_consecutive_failures": ("Health checks failed in a row", lambda r: float(r.consecutive_failed)),
                "ggen_region_health_check_consecutive_passes": ("Health checks passed in a row", lambda r: float(r.consecutive_passed)),
                "ggen_region_dns_weight_percent": ("Share of traffic DNS sends to the region", lambda r: f.dns.weights.get(r.name, 0.0)),
            }
            for name, (doc, get) in rg.items():
                g = GaugeMetricFamily(name, doc, labels=["region", "role"])
                for rn, r in f.regions.items():
                    g.add_metric([rn, r.role], get(r))
                yield g
            lag = GaugeMetricFamily("ggen_replication_lag_seconds", "Replication lag of the data the serving side reads")
            ups = [x.replication_lag_ms for x in f.regions.values() if x.up]
            lag.add_metric([], (max(ups) if ups else 5000.0) / 1000.0)
            yield lag
            er = CounterMetricFamily("ggen_edge_requests", "Requests arriving at the edge")
            er.add_metric([], self.edge[0])
            ee = CounterMetricFamily("ggen_edge_request_errors", "Requests failing at the edge or below it")
            ee.add_metric([], self.edge[1])
            yield from (er, ee)
            fa = GaugeMetricFamily("ggen_fleet_faults_active", "Active injected faults", labels=["kind", "target"])
            for x in f.active_faults(self.now_ms):
                fa.add_metric([x.kind, x.target], 1.0)
            yield fa

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]
        return generate_latest(registry)


def _le(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.1f}"


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


# ============================================================================ HTTP
class FleetServer:
    """The HTTP side of a :class:`FleetTarget` (``start()`` / ``stop()``)."""

    def __init__(self, target: FleetTarget, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.target = target
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2] if self._server else (self.host, self.port)
        return f"http://{host}:{port}"

    def start(self) -> "FleetServer":
        target = self.target
        limit = target.settings.api.max_body_bytes

        class Handler(BaseHTTPRequestHandler):
            server_version = "ggen-fleet-serve"
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, obj: Any) -> None:
                self._send(code, json.dumps(obj, sort_keys=True, default=str).encode() + b"\n")

            def _body(self) -> Any:
                try:
                    n = int(self.headers.get("Content-Length") or "0")
                except ValueError:
                    raise ValueError("bad Content-Length") from None
                if n > limit:
                    raise OverflowError(f"body of {n} bytes is over the limit of {limit}")
                raw = self.rfile.read(n) if n else b"{}"
                try:
                    obj = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise ValueError(f"body is not JSON: {exc}") from None
                if not isinstance(obj, dict):
                    raise ValueError("body must be a JSON object")
                return obj

            def do_GET(self) -> None:
                path = self.path.split("?")[0].rstrip("/") or "/"
                if path == "/metrics":
                    from prometheus_client import CONTENT_TYPE_LATEST

                    self._send(200, target.exposition(), CONTENT_TYPE_LATEST)
                elif path in ("/", "/healthz"):
                    self._json(200 if target.crash is None else 500, {"ok": target.crash is None, "crash": target.crash, "now": iso_utc(target.now_ms), "speed": target.speed, "ticks": target.ticks, "fleet": target.policy.fleet.fleet.name})
                elif path == "/state":
                    self._json(200, target.state())
                elif path == "/faults":
                    with target.lock:
                        body = {
                            "active": [x.to_dict() for x in target.fleet.active_faults(target.now_ms)],
                            "all": [x.to_dict() for x in target.fleet.faults],
                            "kinds": {k: {"incident_type": v[0], "target_kind": v[1], "description": v[2], "params": v[3]} for k, v in sorted(FAULT_KINDS.items())},
                        }
                    self._json(200, body)
                elif path == "/actions":
                    with target.lock:
                        self._json(200, {"actions": list(target.actions), "events": list(target.events)})
                else:
                    self._json(404, {"error": f"no such endpoint {path}"})

            def do_POST(self) -> None:
                path = self.path.split("?")[0].rstrip("/")
                try:
                    body = self._body()
                    if path == "/faults":
                        kind = body.get("kind")
                        if not isinstance(kind, str):
                            raise ValueError("give the fault's kind (see GET /faults)")
                        fault = target.inject(kind, body.get("target"), body.get("params") or None, body.get("duration_s"), actor=str(body.get("actor", "api")))
                        self._json(201, {"fault": fault})
                    elif path == "/actions":
                        self._json(200, target.apply(body))
                    else:
                        self._json(404, {"error": f"no such endpoint {path}"})
                except OverflowError as exc:
                    self._json(413, {"error": str(exc)})
                except (ValueError, TypeError) as exc:
                    self._json(400, {"error": str(exc)})

            def do_DELETE(self) -> None:
                path = self.path.split("?")[0].rstrip("/")
                if not path.startswith("/faults/"):
                    self._json(404, {"error": f"no such endpoint {path}"})
                    return
                try:
                    self._json(200, {"fault": target.clear(path.rsplit("/", 1)[1])})
                except ValueError as exc:
                    self._json(404, {"error": str(exc)})

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="ggen-fleet-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
