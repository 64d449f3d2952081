"""The fleet model: how traffic, capacity, dependencies, faults and mitigations produce signals.

One call to :meth:`Fleet.step` advances the model by one tick. Callers come before callees: request
rates flow down the dependency graph, then health (latency, errors) flows back up, so a failing
database shows up in the services that call it, and an open breaker changes what its caller sees.
The queue consumer's processing depends on its downstream's health in the previous tick, so
scaling concurrency cannot fix a backlog whose real cause is downstream.
"""
from __future__ import annotations

import math
import random
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from engine.fleet.faults import Fault, fault_params
from engine.mitigate.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Transition

if TYPE_CHECKING:
    from engine.policy.models import FleetSpec, MitigationPolicy, QueueSpec, ServiceSpec

_SQRT2 = math.sqrt(2.0)
_Z99 = 2.326


def _share_above(limit_ms: float, p50: float, p99: float) -> float:
    """Share of a log-normal latency distribution (given P50 and P99) above ``limit_ms``."""
    if p50 <= 0:
        return 0.0
    if limit_ms >= 2.5 * p99 and p99 >= p50:
        return 0.0  # more than 4.5 sigma out: below one in a hundred thousand
    sigma = math.log(max(p99, p50 * 1.01) / p50) / _Z99
    z = math.log(limit_ms / p50) / sigma
    return 0.5 * math.erfc(z / _SQRT2)


@dataclass
class SlowQuery:
    """A query the database log reports as slow (what `ggen db queries slow` lists)."""

    query_id: str
    table: str
    plan: str
    mean_ms: float
    calls_per_min: float
    missing_index: str
    caller: str


def slow_query_id(fault: Fault) -> str:
    """The slow-query log's id of the query a ``slow_queries`` fault slows down (stable per fault)."""
    return f"q-{zlib.crc32((fault.id + fault.params['table']).encode()) % 100000:05d}"


# Where a service's failed requests are logged (method, path); others log POST /v1/<service>.
REQUEST_PATHS = {
    "api": ("POST", "/v1/actions"),
    "app": ("POST", "/internal/checkout"),
    "upstream": ("POST", "/render"),
    "governor": ("POST", "/deliver"),
    "action-handler": ("POST", "/handle"),
    "database": ("QUERY", "users"),
}


@dataclass
class Change:
    """A deploy, config or feature-flag change, kept for rollback and for `ggen config diff`."""

    at_ms: int
    kind: str  # deploy | config | flag | schema | index
    before: Any
    after: Any
    detail: str = ""
    actor: str = "deployer"


class Service:
    """One service: its configuration, the faults acting on it, and this tick's signals."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.ingress_rps = spec.ingress_rps
        self.replicas = spec.replicas
        self.baseline_replicas = spec.replicas
        self.capacity_per_replica = spec.capacity_rps_per_replica
        self.base_p50 = spec.base_p50_ms
        self.base_err5 = spec.base_error_pct / 100.0
        self.base_err4 = spec.base_4xx_pct / 100.0
        self.base_memory = spec.memory_pct
        self.critical = spec.critical
        self.restartable = spec.restartable
        self.feature_flags = dict(spec.feature_flags)
        self.connection_pool = spec.connection_pool
        self.pool_in_use = 0.0
        self.indexes: set[str] = set(spec.indexes)
        self.pending_indexes: dict[str, int] = {}  # index -> ready at
        self.pre_approved_indexes: list[str] = list(spec.pre_approved_indexes)
        self.revision = 1
        self.bad_revisions: dict[int, float] = {}  # revision -> 5xx share
        self.config_version = 1
        self.config: dict[str, Any] = {"payments.timeout_ms": 2000, "batch_size": 500, "compression": "none"}
        self.bad_configs: dict[int, float] = {}  # config version -> 5xx share
        self.schema_version = 1
        self.changes: list[Change] = []
        # A change rolling out: (kind, start_ms, end_ms, share of requests still on the old state).
        self.rollouts: list[tuple[str, int, int, float]] = []
        self.schema_faults: list[Fault] = []  # schema changes that fail requests while their flag is on
        self.up = True
        self.crashed = False  # crash loop: only a restart helps
        self.restart_ready_ms: int | None = None
        self.pending_replicas: list[tuple[int, int]] = []  # (ready_at_ms, count)
        self.memory_pct = spec.memory_pct
        self.qos_shed = 0.0  # share of low-priority traffic shed by prioritize_requests
        self.rate_limit_rps: float | None = None
        self.compression = False
        self.compression_algorithm: str | None = None
        self.config_versions: dict[int, dict[str, Any]] = {1: dict(self.config)}  # version -> the whole config
        self.optimized_queries: dict[str, float] = {}  # slow query id -> share of its extra time left
        self.response_factor = 1.0  # this tick: response size relative to usual (large_responses fault)
        self.log_owed = 0.0  # failed requests (in log lines) not yet sampled into the fleet log
        self.log_owed_by_status: dict[int, float] = {}
        self.deps: list[Edge] = []
        self.callers: list[Edge] = []
        # per-tick state
        self.in_rps = 0.0
        self.served_rps = 0.0
        self.throttled_rps = 0.0
        self.edge_failed_rps = 0.0
        self.util = 0.0
        self.cpu_pct = 0.0
        self.p50 = self.base_p50
        self.p99 = self.base_p50 * 3
        self.p999 = self.base_p50 * 6
        self.err5 = 0.0
        self.err4 = 0.0
        self.own_err5 = 0.0
        self.healthy = True
        self.response_bytes_p99 = 48_000.0
        self.usual_response_bytes = self.response_bytes_p99

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.err5 + self.err4)

    @property
    def ready_replicas(self) -> int:
        return self.replicas


class Edge:
    """A call from one service to another, guarded by a circuit breaker."""

    __slots__ = ("caller", "dep", "cpr", "breaker", "calls", "passed", "errors", "extra_ms", "tshare", "timeout_ms")

    def __init__(self, caller: Service, dep: Service, cpr: float, breaker: CircuitBreaker) -> None:
        self.caller = caller
        self.dep = dep
        self.cpr = cpr
        self.breaker = breaker
        self.calls = 0.0
        self.passed = 0.0
        self.errors = 0.0
        self.extra_ms = 0.0  # latency added on this edge only (e.g. one caller's slow query)
        self.tshare = 0.0  # share of calls timing out, computed once per tick
        self.timeout_ms = float(breaker.policy.timeout_ms)  # the breaker's call timeout (its policy is fixed)


class Queue:
    """A per-tenant message queue and its consumer concurrency."""

    def __init__(self, spec: QueueSpec) -> None:
        self.account_id = spec.account_id
        self.consumer = spec.consumer
        self.base_ingest = spec.ingest_per_s
        self.concurrency = spec.concurrency
        self.baseline_concurrency = spec.concurrency
        self.max_concurrency = spec.max_concurrency
        self.quota = spec.quota
        self.per_worker = spec.per_worker_msgs_per_s
        self.high_value = spec.high_value
        self.rate_limit_per_s: float | None = None
        self.depth = 0.0
        self.ingest = spec.ingest_per_s
        self.processed = 0.0  # successful deliveries per second, this tick
        self.attempted = 0.0
        self.throughput_ewma = spec.ingest_per_s
        self.oldest_age_s = 0.0
        self.last_scaled_ms: int | None = None
        self.delivered_total = 0.0
        self.failed_total = 0.0
        self.rejected_total = 0.0

    @property
    def limit(self) -> int:
        return min(self.max_concurrency, self.quota)

    @property
    def net_drain(self) -> float:
        return self.processed - self.ingest


class Region:
    """A region: whether it answers health checks, and its check history."""

    def __init__(self, name: str, role: str, replication_lag_ms: float) -> None:
        self.name = name
        self.role = role  # primary | standby (the configured roles; `serving` says who serves)
        self.up = True
        self.flap_pattern: str | None = None
        self.flap_index = 0
        self.consecutive_failed = 0
        self.consecutive_passed = 0
        self.last_check_ms: int | None = None
        self.last_check_ok = True
        self.base_lag_ms = replication_lag_ms
        self.replication_lag_ms = replication_lag_ms
        self.records = 1_000_000.0
        self.was_up = True
        self.stranded = 0.0  # writes accepted here but not shipped when this region died
        self.catchup = 0.0  # writes the other region took while this one was down, still to replay
        self.diverged = False  # the other region took writes while this one held stranded ones
        self.gray = False  # passes its health checks but cannot serve (region_outage, health_check="passes")


class DnsState:
    """DNS weights (percent of traffic per region) and an in-flight change, moving over the TTL."""

    def __init__(self, primary: str, standby: str) -> None:
        self.weights = {primary: 100.0, standby: 0.0}
        self.target: str | None = None
        self.source: str | None = None
        self.changed_at_ms: int | None = None
        self.curve: list[tuple[int, int]] = []

    def start(self, source: str, target: str, now_ms: int, curve: list[tuple[int, int]]) -> None:
        self.source, self.target, self.changed_at_ms, self.curve = source, target, now_ms, list(curve)

    @property
    def moving(self) -> bool:
        return self.target is not None

    def step(self, now_ms: int) -> None:
        if self.target is None or self.changed_at_ms is None or self.source is None:
            return
        elapsed_s = (now_ms - self.changed_at_ms) / 1000.0
        pct = 0.0
        prev_t, prev_p = 0, 0
        for t, p in self.curve:
            if elapsed_s >= t:
                prev_t, prev_p = t, p
                pct = float(p)
            else:
                span = t - prev_t
                pct = prev_p + (p - prev_p) * ((elapsed_s - prev_t) / span if span else 1.0)
                break
        self.weights[self.target] = pct
        self.weights[self.source] = 100.0 - pct
        if pct >= 100.0:
            self.target = self.source = None
            self.changed_at_ms = None


@dataclass
class TickRecord:
    """What changed during one tick, for the engine to read (breaker moves, health checks)."""

    now_ms: int
    transitions: list[tuple[CircuitBreaker, Transition]] = field(default_factory=list)
    health_checks: list[tuple[str, bool]] = field(default_factory=list)


class Fleet:
    """The whole simulated system. Deterministic for a given spec, seed and sequence of calls."""

    def __init__(self, spec: FleetSpec, mitigation: MitigationPolicy, seed: int = 1) -> None:
        self.spec = spec
        self.policy = mitigation
        self.rng = random.Random(seed)
        self.noise = spec.fleet.noise_pct / 100.0
        self.tick_ms = spec.fleet.tick_ms
        self.health_interval_ms = spec.fleet.health_check_interval_s * 1000
        self.services: dict[str, Service] = {s.name: Service(s) for s in spec.services}
        self.order = self._topological(spec.services)
        self._order_objs = [self.services[n] for n in self.order]
        self._reverse_objs = list(reversed(self._order_objs))
        self.breakers: dict[str, CircuitBreaker] = {}
        self.edges: list[Edge] = []
        for s in spec.services:
            caller = self.services[s.name]
            for d in s.depends_on:
                dep = self.services[d.service]
                name = f"{s.name}->{d.service}"
                br = CircuitBreaker(name, s.name, d.service, mitigation.circuits[d.circuit])
                self.breakers[name] = br
                e = Edge(caller, dep, d.calls_per_request, br)
                caller.deps.append(e)
                dep.callers.append(e)
                self.edges.append(e)
        self.queues: dict[str, Queue] = {q.account_id: Queue(q) for q in spec.queues}
        self.regions: dict[str, Region] = {r.name: Region(r.name, r.role, r.replication_lag_ms) for r in spec.regions}
        self.primary = next(r.name for r in spec.regions if r.role == "primary")
        self.standby = next(r.name for r in spec.regions if r.role == "standby")
        self.serving = self.primary  # the region DNS points at (after propagation)
        self.dns = DnsState(self.primary, self.standby)
        self.faults: list[Fault] = []
        self._fault_seq = 0
        self.now_ms = 0
        self.lost_records = 0
        self._next_health_ms: int | None = None
        self.edge_error_pct = 0.0
        self.total_requests = 0.0
        self.total_failed = 0.0
        self.tick: TickRecord = TickRecord(0)
        self.logs: deque[dict[str, Any]] = deque(maxlen=5000)

    # ------------------------------------------------------------------ structure
    @staticmethod
    def _topological(specs: list[ServiceSpec]) -> list[str]:
        deps = {s.name: [d.service for d in s.depends_on] for s in specs}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str, path: tuple[str, ...]) -> None:
            st = state.get(n, 0)
            if st == 2:
                return
            if st == 1:
                raise ValueError("dependency cycle: " + " -> ".join(path + (n,)))
            state[n] = 1
            for c in deps[n]:
                visit(c, path + (n,))
            state[n] = 2
            order.append(n)

        for s in specs:
            visit(s.name, ())
        order.reverse()  # callers before callees
        return order

    def dependencies_of(self, service: str) -> set[str]:
        """Every service ``service`` depends on, directly or not."""
        out: set[str] = set()
        stack = [service]
        while stack:
            for e in self.services[stack.pop()].deps:
                if e.dep.name not in out:
                    out.add(e.dep.name)
                    stack.append(e.dep.name)
        return out

    def breaker_for(self, dependency: str, caller: str | None = None) -> list[CircuitBreaker]:
        return [b for b in self.breakers.values() if b.dependency == dependency and (caller is None or b.caller == caller)]

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, target: str, now_ms: int, params: dict[str, Any] | None = None, duration_s: float | None = None) -> Fault:
        """Start a fault now. Raises ValueError for an unknown kind, target or parameter."""
        p = fault_params(kind, params)
        duration_s = p.pop("duration_s", duration_s)
        from engine.fleet.faults import FAULT_KINDS

        target_kind = FAULT_KINDS[kind][1]
        if target_kind == "service" and target not in self.services:
            raise ValueError(f"unknown service {target!r} (known: {', '.join(self.services)})")
        if target_kind == "queue" and target not in self.queues:
            raise ValueError(f"unknown tenant queue {target!r} (known: {', '.join(self.queues)})")
        if target_kind == "region" and target not in self.regions:
            raise ValueError(f"unknown region {target!r} (known: {', '.join(self.regions)})")
        if kind == "region_outage" and p.get("health_check") not in ("fails", "passes"):
            raise ValueError(f"fault 'region_outage': health_check must be 'fails' or 'passes', not {p.get('health_check')!r}")
        self._fault_seq += 1
        f = Fault(f"F{self._fault_seq}", kind, target, p, now_ms, None if duration_s is None else now_ms + int(duration_s * 1000))
        self.faults.append(f)
        self._on_fault_start(f, now_ms)
        self._log(now_ms, "WARN", target if target_kind == "service" else (self.queues[target].consumer if target_kind == "queue" else "edge"), f"fault injected: {kind}", fault=kind, target=target)
        return f

    def clear_fault(self, fault_id: str, now_ms: int) -> Fault:
        for f in self.faults:
            if f.id == fault_id and f.active(now_ms):
                f.end_ms = now_ms
                self._on_fault_end(f)
                return f
        raise ValueError(f"no active fault {fault_id!r}")

    def active_faults(self, now_ms: int | None = None) -> list[Fault]:
        t = self.now_ms if now_ms is None else now_ms
        return [f for f in self.faults if f.active(t)]

    def _on_fault_start(self, f: Fault, now_ms: int) -> None:
        p = f.params
        if f.kind == "bad_deploy":
            s = self.services[f.target]
            old = s.revision
            s.revision = max(s.revision, *s.bad_revisions.keys(), 0) + 1
            s.bad_revisions[s.revision] = p["error_pct"] / 100.0
            s.changes.append(Change(now_ms, "deploy", old, s.revision, f"deploy revision {s.revision}"))
        elif f.kind == "bad_config":
            s = self.services[f.target]
            old = s.config_version
            key = p.get("key", "payments.timeout_ms")
            before = s.config.get(key)
            s.config_version += 1
            s.config[key] = 50 if isinstance(before, int) else "invalid"
            s.bad_configs[s.config_version] = p["error_pct"] / 100.0
            s.changes.append(Change(now_ms, "config", old, s.config_version, f"{key}: {before} -> {s.config[key]}"))
            s.config_versions[s.config_version] = dict(s.config)
        elif f.kind == "schema_change":
            s = self.services[f.target]
            s.schema_faults.append(f)
            flag = p["flag"]
            before = s.feature_flags.get(flag, False)
            s.feature_flags[flag] = True
            s.schema_version += 1
            s.changes.append(Change(now_ms, "flag", before, True, flag))
            s.changes.append(Change(now_ms, "schema", s.schema_version - 1, s.schema_version, f"request schema v{s.schema_version} behind flag {flag}"))
        elif f.kind in ("dependency_outage", "external_outage"):
            s = self.services[f.target]
            s.crashed = True
            s.up = False
        elif f.kind == "dependency_timeouts":
            s = self.services[f.target]
            s.pool_in_use = float(self.services["database"].connection_pool if "database" in self.services else 40)
        elif f.kind == "memory_pressure":
            pass
        elif f.kind == "region_outage":
            if p.get("health_check") == "passes":
                self.regions[f.target].gray = True
            else:
                self.regions[f.target].up = False
        elif f.kind == "flapping_health":
            r = self.regions[f.target]
            r.flap_pattern = str(p["pattern"]).upper()
            r.flap_index = 0
        elif f.kind == "quota_exhaustion":
            pass

    def _on_fault_end(self, f: Fault) -> None:
        if f.kind in ("dependency_outage", "external_outage"):
            s = self.services[f.target]
            s.crashed = False
            s.up = True
        elif f.kind == "dependency_timeouts":
            self.services[f.target].pool_in_use = 0.0
        elif f.kind == "region_outage":
            self.regions[f.target].up = True
            self.regions[f.target].gray = False
        elif f.kind == "flapping_health":
            self.regions[f.target].flap_pattern = None

    # ------------------------------------------------------------------ the tick
    def _jitter(self) -> float:
        return 1.0 + self.rng.uniform(-self.noise, self.noise)

    def step(self, now_ms: int) -> TickRecord:
        """Advance the model to ``now_ms`` by one tick."""
        dt = self.tick_ms / 1000.0
        self.now_ms = now_ms
        rec = TickRecord(now_ms)
        self.tick = rec
        services = self.services
        active = [f for f in self.faults if f.active(now_ms)]
        for f in list(self.faults):
            if f.end_ms is not None and f.end_ms <= now_ms and f.end_ms > now_ms - self.tick_ms:
                self._on_fault_end(f)

        # Per-service modifiers from active faults.
        surge: dict[str, float] = {}
        extra_load: dict[str, float] = {}
        slow_consumer: dict[str, float] = {}
        timeouts_ms: dict[str, float] = {}
        for e in self.edges:
            e.extra_ms = 0.0
        for s in services.values():
            s.response_factor = 1.0
        for f in active:
            p = f.params
            elapsed = (now_ms - f.start_ms) / 1000.0
            ramp = min(1.0, elapsed / p["ramp_s"]) if p.get("ramp_s") else 1.0
            if f.kind in ("traffic_surge", "quota_exhaustion", "traffic_spike"):
                surge[f.target] = surge.get(f.target, 1.0) * (1.0 + (p["factor"] - 1.0) * ramp)
            elif f.kind == "slow_consumer":
                slow_consumer[f.target] = slow_consumer.get(f.target, 1.0) * p["factor"]
            elif f.kind == "cpu_saturation":
                s = services[f.target]
                # The hot path costs a fixed amount of CPU: more replicas dilute it.
                extra_load[f.target] = extra_load.get(f.target, 0.0) + p["extra_load"] * s.baseline_replicas / max(1, s.replicas)
            elif f.kind == "memory_pressure":
                s = services[f.target]
                if f.neutralized_ms is None:
                    s.memory_pct = min(95.0, s.memory_pct + p["growth_pct_per_min"] * dt / 60.0)
            elif f.kind == "dependency_timeouts":
                s = services[f.target]
                if s.pool_in_use > 0:
                    timeouts_ms[f.target] = p["extra_ms"]
            elif f.kind == "slow_queries":
                db = services[f.target]
                if p["index"] not in db.indexes:
                    left = db.optimized_queries.get(slow_query_id(f), 1.0) if db.optimized_queries else 1.0
                    for e in db.callers:
                        if e.caller.name == p.get("caller", e.caller.name):
                            e.extra_ms += p["extra_ms"] * left
            elif f.kind == "large_responses":
                services[f.target].response_factor *= p["factor"]

        # Timers: restarts finishing, replicas becoming ready.
        for s in services.values():
            if s.restart_ready_ms is not None and now_ms >= s.restart_ready_ms:
                s.restart_ready_ms = None
                s.crashed = False
                s.up = True
                s.memory_pct = s.base_memory
                s.pool_in_use = 0.0
                for f in self.faults:
                    # A restart clears a leaked heap and an exhausted pool; a crash loop ends with it.
                    if f.target == s.name and f.kind in ("memory_pressure", "dependency_timeouts", "dependency_outage") and f.neutralized_ms is None:
                        f.neutralized_ms = now_ms
                self._log(now_ms, "INFO", s.name, "service restarted and healthy", replicas=s.replicas)
            if s.pending_indexes:
                for idx, ready in list(s.pending_indexes.items()):
                    if now_ms >= ready:
                        del s.pending_indexes[idx]
                        s.indexes.add(idx)
                        self._log(now_ms, "INFO", s.name, f"index {idx} built; ANALYZE done")
            if s.pending_replicas:
                ready = [p for p in s.pending_replicas if p[0] <= now_ms]
                if ready:
                    s.replicas += sum(c for _, c in ready)
                    s.pending_replicas = [p for p in s.pending_replicas if p[0] > now_ms]
                    self._log(now_ms, "INFO", s.name, "replicas ready", replicas=s.replicas)
            s.in_rps = 0.0
            s.edge_failed_rps = 0.0

        # Region routing: traffic sent to a region that is down fails at the edge.
        self.dns.step(now_ms)
        dead_share = sum(w for r, w in self.dns.weights.items() if not self.regions[r].up or self.regions[r].gray) / 100.0
        if not self.dns.moving:
            self.serving = max(self.dns.weights, key=lambda r: self.dns.weights[r])

        # Ingress.
        for s in services.values():
            if s.ingress_rps > 0:
                offered = s.ingress_rps * surge.get(s.name, 1.0) * self._jitter()
                s.edge_failed_rps = offered * dead_share
                s.in_rps += offered - s.edge_failed_rps

        # Queues: the consumer works through the backlog; downstream health (last tick) decides
        # how many deliveries succeed.
        for q in self.queues.values():
            consumer = services[q.consumer]
            ingest = q.base_ingest * surge.get(q.account_id, 1.0) * self._jitter()
            if q.rate_limit_per_s is not None and ingest > q.rate_limit_per_s:
                q.rejected_total += (ingest - q.rate_limit_per_s) * dt
                ingest = q.rate_limit_per_s
            q.ingest = ingest
            ok_share = 1.0 if consumer.up else 0.0
            for e in consumer.deps:
                b = e.breaker
                if b.state != CLOSED:
                    ok_share *= 0.0 if b.policy.fallback == "cached" else (1.0 - min(1.0, e.cpr))
                else:
                    ok_share *= 1.0 - min(1.0, e.cpr) * min(1.0, e.dep.err5 + self._timeout_share(e))
            capacity = q.concurrency * q.per_worker * slow_consumer.get(q.account_id, 1.0)
            available = q.depth + ingest * dt
            attempted = min(available, capacity * dt)
            delivered = attempted * ok_share
            q.depth = max(0.0, available - delivered)
            q.attempted = attempted / dt
            q.processed = delivered / dt
            q.delivered_total += delivered
            q.failed_total += attempted - delivered
            consumer.in_rps += q.attempted
            q.throughput_ewma = 0.8 * q.throughput_ewma + 0.2 * q.processed
            if q.depth < 1.0:
                q.oldest_age_s = 0.0
            elif q.throughput_ewma > 0.05:
                q.oldest_age_s = max(q.oldest_age_s + dt if q.processed < 0.05 else 0.0, q.depth / q.throughput_ewma)
            else:
                q.oldest_age_s += dt

        # Requests flow down the graph (callers first).
        total_req = 0.0
        for s in self._order_objs:
            offered = s.in_rps
            if s.rate_limit_rps is not None and offered > s.rate_limit_rps:
                s.throttled_rps = offered - s.rate_limit_rps
                offered = s.rate_limit_rps
            else:
                s.throttled_rps = 0.0
            s.served_rps = offered * (1.0 - s.qos_shed)
            served = s.served_rps
            for e in s.deps:
                b = e.breaker
                e.calls = calls = served * e.cpr
                e.passed = passed = calls if b.state == CLOSED else calls * b.passes_traffic
                e.dep.in_rps += passed
            total_req += s.in_rps if s.ingress_rps > 0 else 0.0

        # Health flows back up (callees first).
        health = self._service_health
        for s in self._reverse_objs:
            name = s.name
            health(s, extra_load.get(name, 0.0) if extra_load else 0.0, timeouts_ms.get(name, 0.0) if timeouts_ms else 0.0)

        # Breakers observe this tick's calls; timers move them.
        rnd = self.rng.random
        for e in self.edges:
            b = e.breaker
            dep = e.dep
            bp = b.policy
            passed = e.passed
            if dep.up:
                fail = dep.err5 + e.tshare  # e.tshare: this tick's timeout share, from the health pass
                if fail > 1.0:
                    fail = 1.0
            else:
                fail = 1.0
            e.errors = errors = passed * fail
            outcomes: tuple[bool, ...] = ()
            state = b.state
            if state == CLOSED and bp.count and passed > 0:
                if fail < 1e-3:
                    outcomes = (False,)  # a run of errors is out of reach; a success resets the count
                else:
                    k = min(20, max(1, int(passed * dt)))
                    outcomes = tuple(rnd() < fail for _ in range(k))
            cap = e.timeout_ms
            if dep.up:
                p99_seen = dep.p99 + e.extra_ms * 3
                if p99_seen > cap * 4:
                    p99_seen = cap * 4
            else:
                p99_seen = cap
            t = b.observe(now_ms, passed * dt, errors * dt, p99_seen, outcomes)
            if t is None and (state != CLOSED or b.override_state is not None):
                t = b.tick(now_ms, probe_ok=dep.up and fail < 0.5)  # only timers of open, probing or overridden breakers move
            if t is not None:
                rec.transitions.append((b, t))
                lvl = "ERROR" if t.to_state == OPEN else "INFO"
                self._log(now_ms, lvl, b.caller, f"circuit {b.name} {t.to_name}", reason=t.reason, dependency=b.dependency)

        # Edge error rate (what customers see), including requests lost in a dead region.
        edge_total = 0.0
        edge_failed = 0.0
        for s in services.values():
            if s.ingress_rps > 0:
                total = s.in_rps + s.edge_failed_rps
                edge_total += total
                edge_failed += s.edge_failed_rps + s.served_rps * (s.err5 + s.err4) + s.throttled_rps
        self.edge_error_pct = 100.0 * edge_failed / edge_total if edge_total > 0 else 0.0
        self.total_requests += edge_total * dt
        self.total_failed += edge_failed * dt
        self._request_logs(now_ms, dt)

        # Region health checks and replication.
        if self._next_health_ms is None:
            self._next_health_ms = now_ms + self.health_interval_ms
        if now_ms >= self._next_health_ms:
            self._next_health_ms = now_ms + self.health_interval_ms
            for r in self.regions.values():
                ok = r.up
                if ok and r.flap_pattern:
                    ok = r.flap_pattern[r.flap_index % len(r.flap_pattern)] != "F"
                    r.flap_index += 1
                r.last_check_ms = now_ms
                r.last_check_ok = ok
                if ok:
                    r.consecutive_passed += 1
                    r.consecutive_failed = 0
                else:
                    r.consecutive_failed += 1
                    r.consecutive_passed = 0
                rec.health_checks.append((r.name, ok))
                if not ok:
                    self._log(now_ms, "ERROR", "edge", f"health check failed for {r.name}", region=r.name, consecutive=r.consecutive_failed)
        primary_down = not self.regions[self.primary].up
        for r in self.regions.values():
            if r.gray:
                r.replication_lag_ms = min(3_600_000.0, r.replication_lag_ms + 1000.0 * dt)  # replication to it stopped
            elif r.name == self.serving and not r.up:
                r.replication_lag_ms = min(5000.0, r.replication_lag_ms + 250.0 * dt)
            elif primary_down and r.name != self.primary:
                # Replication from the dead primary has stopped; the standby's data is as fresh as it gets.
                if self.dns.weights.get(r.name, 0.0) >= 100.0:
                    r.replication_lag_ms = max(r.base_lag_ms * 0.5, r.replication_lag_ms * 0.7)
                else:
                    r.replication_lag_ms = min(2500.0, r.replication_lag_ms + 120.0 * dt)
            else:
                r.replication_lag_ms = r.base_lag_ms * self._jitter()
        self._replicate(now_ms, dt)
        return rec

    # ------------------------------------------------------------------ replication
    def _replicate(self, now_ms: int, dt: float) -> None:
        """Record counts per region: writes follow DNS weights to regions that are up and reach
        the other region if it is up. A region that dies strands the writes it had not shipped
        yet; writes the other region takes meanwhile are replayed when it returns, and if both
        sides took writes the stranded ones are conflicts (``ggen replication conflict-resolve``)."""
        rp = self.policy.replication
        regions = list(self.regions.values())
        for r in regions:
            peer = next(x for x in regions if x is not r)
            if r.was_up and not r.up:
                inflight = rp.writes_per_s * self.dns.weights.get(r.name, 0.0) / 100.0 * rp.inflight_window_ms / 1000.0
                if inflight > 0:
                    r.stranded += inflight
                    peer.records -= inflight  # counted as replicated; it never arrived
                    self._log(now_ms, "ERROR", "replication", f"{r.name} went down with {int(round(inflight))} writes not yet shipped to {peer.name}", region=r.name, stranded=int(round(inflight)))
            elif not r.was_up and r.up:
                if r.stranded > 0 and r.catchup > 0:
                    r.diverged = True
                    self._log(now_ms, "ERROR", "replication", f"data_inconsistency: {int(round(r.stranded))} writes on {r.name} never reached {peer.name}, which took writes meanwhile", region=r.name, conflicts=int(round(r.stranded)))
                elif r.stranded > 0:
                    peer.records += r.stranded  # nothing diverged: the late writes simply ship now
                    r.stranded = 0.0
            r.was_up = r.up
        for r in regions:
            if not r.up:
                continue
            w = rp.writes_per_s * self.dns.weights.get(r.name, 0.0) / 100.0 * dt
            if w <= 0:
                continue
            r.records += w
            peer = next(x for x in regions if x is not r)
            if peer.up and peer.catchup <= 0:
                peer.records += w
            else:
                peer.catchup += w
        for r in regions:
            if r.up and r.catchup > 0:
                moved = min(r.catchup, rp.catchup_records_per_s * dt)
                r.records += moved
                r.catchup -= moved
                if r.catchup < 1e-6:
                    r.catchup = 0.0
                    self._log(now_ms, "INFO", "replication", f"{r.name} caught up", region=r.name)

    def replication_conflicts(self) -> int:
        """Records written on one region that the other never received, after both took writes."""
        return int(round(sum(r.stranded for r in self.regions.values() if r.diverged)))

    # ------------------------------------------------------------------ request logs
    def error_breakdown(self, s: Service) -> dict[int, float]:
        """This tick's failed requests of a service by HTTP status, as shares of its served requests
        (throttled requests are 429 and counted against everything it was offered)."""
        if not s.up:
            return {503: 1.0} if s.in_rps > 0 else {}
        c5: dict[int, float] = {}
        c4: dict[int, float] = {}

        def add(d: dict[int, float], code: int, v: float) -> None:
            if v > 0:
                d[code] = d.get(code, 0.0) + v

        add(c5, 500, s.base_err5)
        add(c5, 500, s.bad_revisions.get(s.revision, 0.0))
        add(c5, 504, s.bad_configs.get(s.config_version, 0.0))
        for kind, start, end, bad in s.rollouts:
            if self.now_ms < end:  # replicas the fix has not reached yet fail the old way
                add(c5, 504 if kind == "config" else 500, bad * (end - self.now_ms) / max(1, end - start))
        if s.util > 1.0:
            add(c5, 503, (s.util - 1.0) / s.util)
        add(c4, 404, s.base_err4)
        for f in s.schema_faults:
            if s.feature_flags.get(f.params.get("flag"), False) and f.active(self.now_ms):
                add(c4, 400, f.params["error_pct"] / 100.0)
        for e in s.deps:
            share = min(1.0, e.cpr)
            passing = e.breaker.passes_traffic
            if passing < 1.0 and e.breaker.policy.fallback == "error":
                add(c5, 503, share * (1.0 - passing))
            if passing > 0:
                if not e.dep.up:
                    add(c5, 503, share * passing)
                else:
                    add(c5, 502, share * passing * e.dep.err5)
                    add(c5, 504, share * passing * e.tshare)
                    add(c4, 422, share * passing * e.dep.err4)
        out: dict[int, float] = {}
        for d, total in ((c5, s.err5), (c4, s.err4)):
            t = sum(d.values())
            if t > 0 and total > 0:
                for code, v in d.items():
                    out[code] = out.get(code, 0.0) + total * v / t
        if s.throttled_rps > 0 and s.in_rps > 0:
            out = {code: v * s.served_rps / s.in_rps for code, v in out.items()}
            out[429] = s.throttled_rps / s.in_rps
        return out

    def _request_logs(self, now_ms: int, dt: float) -> None:
        """Sample failed requests into the fleet log, with their HTTP status (no randomness: the
        simulation's random sequence stays as it was)."""
        every = self.spec.fleet.error_log_every
        cap = self.spec.fleet.error_log_max_per_tick
        if cap <= 0:
            return
        for s in self.services.values():
            if s.kind == "external":
                continue
            failed = s.served_rps * (s.err5 + s.err4) + s.throttled_rps if s.up else s.in_rps
            if failed <= 0:
                continue
            s.log_owed += failed * dt / every
            if s.log_owed < 1.0:
                continue
            n = min(int(s.log_owed), cap)
            s.log_owed -= int(s.log_owed)
            shares = self.error_breakdown(s)
            total = sum(shares.values())
            if total <= 0:
                continue
            owed = s.log_owed_by_status
            for code, v in shares.items():
                owed[code] = owed.get(code, 0.0) + n * v / total
            for _ in range(n):
                code = max(owed, key=owed.__getitem__)
                owed[code] -= 1.0
                self._request_log(now_ms, s, code)
            for code in [c for c, v in owed.items() if v < -1.0 or c not in shares]:
                del owed[code]

    def _request_log(self, now_ms: int, s: Service, code: int) -> None:
        method, path = REQUEST_PATHS.get(s.name, ("POST", f"/v1/{s.name}"))
        fields: dict[str, Any] = {"status_code": code, "method": method, "path": path, "duration_ms": int(s.p50)}
        if code == 429:
            msg = f"rate limited ({int(s.rate_limit_rps or 0)} req/s)"
        elif code == 400:
            flags = [f.params.get("flag") for f in s.schema_faults if s.feature_flags.get(f.params.get("flag"), False)]
            msg = f"validation_error: request does not match schema v{s.schema_version}" + (f" (flag {flags[0]})" if flags else "")
            fields["error_type"] = "validation_error"
        elif code == 404:
            msg = "not found"
        elif code == 422:
            bad = max(s.deps, key=lambda e: e.dep.err4, default=None)
            msg = f"{bad.dep.name if bad else 'dependency'} rejected the request"
        elif not s.up:
            msg = f"{s.name} unavailable (crash loop)" if s.crashed else f"{s.name} unavailable (restarting)"
        else:
            msg, extra = self._failure_story(s, code)
            fields.update(extra)
        level = "ERROR" if code >= 500 else "WARN"
        self._log(now_ms, level, s.name, f"{method} {path} {code} {msg}", **fields)

    def _failure_story(self, s: Service, code: int) -> tuple[str, dict[str, Any]]:
        """Why a request failed with a 5xx, the way the service's own log would say it."""
        if code == 500:
            if s.revision in s.bad_revisions or any(k == "deploy" for k, _, _, _ in s.rollouts):
                return f"unhandled exception in revision {s.revision}", {"revision": s.revision}
            return "internal error", {}
        if code == 504:
            slow = [e for e in s.deps if e.tshare > 0.0 and e.breaker.passes_traffic > 0]
            if slow and not s.bad_configs.get(s.config_version) and not any(k == "config" for k, _, _, _ in s.rollouts):
                e = max(slow, key=lambda x: x.tshare)
                return f"timeout after {e.breaker.policy.timeout_ms} ms waiting for {e.dep.name}", {"dependency": e.dep.name}
            if s.bad_configs.get(s.config_version):
                return f"payments call timed out after {s.config.get('payments.timeout_ms')} ms (config v{s.config_version})", {"config_version": s.config_version}
            return f"payments call timed out on a replica still on the previous config (rolling out v{s.config_version})", {"config_version": s.config_version}
        if code == 502:
            bad = max(s.deps, key=lambda e: e.dep.err5, default=None)
            return f"{bad.dep.name if bad else 'dependency'} returned 5xx", {"dependency": bad.dep.name if bad else ""}
        if code == 503:
            for e in s.deps:
                if e.breaker.passes_traffic < 1.0 and e.breaker.policy.fallback == "error":
                    return f"circuit {e.breaker.name} open, no fallback", {"dependency": e.dep.name}
                if not e.dep.up:
                    return f"connection refused by {e.dep.name}", {"dependency": e.dep.name}
            return f"over capacity (cpu {int(s.cpu_pct)} %), request shed", {}
        return "error", {}

    def _rolling_out(self, s: Service) -> float:
        """Errors still coming from replicas that have not yet received a fix."""
        now = self.now_ms
        extra = 0.0
        keep = []
        for kind, start, end, bad in s.rollouts:
            if now >= end:
                continue
            keep.append((kind, start, end, bad))
            extra += bad * (end - now) / max(1, end - start)
        s.rollouts = keep
        return extra

    def start_rollout(self, s: Service, kind: str, now_ms: int, duration_s: int, bad_share: float) -> None:
        """A fix reaches replicas progressively: the old (bad) share fades out over ``duration_s``."""
        if duration_s > 0 and bad_share > 0:
            s.rollouts.append((kind, now_ms, now_ms + duration_s * 1000, bad_share))

    def _timeout_share(self, e: Edge) -> float:
        """The share of calls on ``e`` that time out, as computed in this tick's health pass."""
        return e.tshare

    @staticmethod
    def _compute_timeout_share(e: Edge) -> float:
        dep = e.dep
        if not dep.up:
            return 0.0
        extra = e.extra_ms
        return _share_above(float(e.breaker.policy.timeout_ms), dep.p50 + extra, dep.p99 + extra * 3)

    def _service_health(self, s: Service, extra_load: float, pool_wait_ms: float) -> None:
        """Latency, errors and CPU of one service from its load, its faults and its dependencies.
        (The hot path of the simulation: written with locals and without helper calls.)"""
        if not s.up:
            s.util = 0.0
            s.cpu_pct = 0.0
            s.err5 = 1.0
            s.own_err5 = 1.0
            s.err4 = 0.0
            s.p50 = s.p99 = s.p999 = 1.0
            s.healthy = False
            return
        capacity = s.replicas * s.capacity_per_replica
        u = s.served_rps / capacity + extra_load if capacity > 0 else 1.0
        transfer_ms = 0.0
        if s.compression_algorithm is not None or s.response_factor != 1.0:
            # Response size: a large_responses fault grows it, compression shrinks it (for CPU);
            # every kilobyte above the usual size costs transfer time.
            cp = self.policy.compression
            ratio = 1.0
            if s.compression_algorithm is not None:
                ratio = cp.ratio_pct.get(s.compression_algorithm, 100.0) / 100.0
                u += cp.cpu_cost_pct / 100.0
            size = s.usual_response_bytes * s.response_factor * ratio
            s.response_bytes_p99 = size
            if size > s.usual_response_bytes:
                transfer_ms = (size - s.usual_response_bytes) / 1024.0 * cp.transfer_ms_per_kb
        elif s.response_bytes_p99 != s.usual_response_bytes:
            s.response_bytes_p99 = s.usual_response_bytes
        s.util = u
        cpu = 5.0 + 95.0 * u
        s.cpu_pct = cpu if cpu < 100.0 else 100.0
        uq = u if u < 0.985 else 0.985
        queueing = 0.5 / (1.0 - uq)  # 1.0 at 50 % utilisation
        if queueing < 1.0:
            queueing = 1.0
        mem = s.memory_pct
        gc = 1.0 + (mem - 80.0) * 0.6 if mem > 80.0 else 1.0
        noise = self.noise
        j = 1.0 + (-noise + (noise - -noise) * self.rng.random())  # rng.uniform(-noise, noise), inline
        p50 = s.base_p50 * queueing * j + pool_wait_ms + transfer_ms
        tail = 2.6 + (0.8 * (uq - 0.5) if uq > 0.5 else 0.0) + (gc - 1.0) * 0.5
        p99 = p50 * tail * gc + pool_wait_ms * 0.3
        own5 = s.base_err5 * j
        if s.bad_revisions:
            own5 += s.bad_revisions.get(s.revision, 0.0)
        if s.bad_configs:
            own5 += s.bad_configs.get(s.config_version, 0.0)
        if s.rollouts:
            own5 += self._rolling_out(s)
        if u > 1.0:
            own5 += (u - 1.0) / u
        own4 = s.base_err4 * j
        if s.schema_faults:
            for f in s.schema_faults:
                if s.feature_flags.get(f.params.get("flag"), False) and f.active(self.now_ms):
                    own4 += f.params["error_pct"] / 100.0
        ok5 = 1.0 - (own5 if own5 < 1.0 else 1.0)
        ok4 = 1.0 - (own4 if own4 < 1.0 else 1.0)
        share_above = _share_above
        for e in s.deps:
            b = e.breaker
            dep = e.dep
            extra = e.extra_ms
            cap = e.timeout_ms
            if dep.up:
                d50 = dep.p50 + extra
                d99 = dep.p99 + extra * 3
                if cap >= 2.5 * d99 and d99 >= d50 > 0:
                    tshare = 0.0  # _share_above's own first answer, without the call (most edges)
                else:
                    tshare = share_above(cap, d50, d99)
                e.tshare = tshare
            else:
                e.tshare = tshare = 0.0
            share = e.cpr if e.cpr < 1.0 else 1.0
            state = b.state
            if state == CLOSED:
                passing = 1.0
            else:
                passing = b.passes_traffic
                blocked = 1.0 - passing
                if b.policy.fallback == "error":
                    ok5 *= 1.0 - share * blocked
                p50 += share * blocked
            if passing > 0.0:
                if dep.up:
                    fail = dep.err5 + tshare
                    if fail > 1.0:
                        fail = 1.0
                    sp = share * passing
                    ok5 *= 1.0 - sp * fail
                    ok4 *= 1.0 - sp * dep.err4
                    p50 += sp * (d50 if d50 < cap else cap)
                    p99 += sp * (d99 if d99 < cap else cap)
                else:
                    ok5 *= 1.0 - share * passing
                    p50 += share * passing * 2.0
        if u > 1.0:
            over = u - 1.0 if u < 5.0 else 4.0
            if p50 < 1000.0 * over:
                p50 = 1000.0 * over
            if p99 < p50 * 3:
                p99 = p50 * 3
        s.p50 = p50
        if p99 < p50 * 1.5:
            p99 = p50 * 1.5
        s.p99 = p99
        s.p999 = p99 * 2.0
        s.err5 = e5 = 1.0 - ok5
        s.err4 = 1.0 - ok4
        s.own_err5 = own5 if own5 < 1.0 else 1.0
        s.healthy = e5 < 0.5

    # ------------------------------------------------------------------ signals
    def getter(self, kind: str, signal: str):
        """A fast accessor for one signal of one entity kind (detection reads thousands per tick)."""
        fast = {
            ("service", "p99_ms"): lambda s: s.p99,
            ("service", "p50_ms"): lambda s: s.p50,
            ("service", "error_pct"): lambda s: 100.0 * (s.err5 + s.err4),
            ("service", "errors_per_min"): lambda s: s.served_rps * (s.err5 + s.err4) * 60.0,
            ("service", "cpu_pct"): lambda s: s.cpu_pct,
            ("service", "memory_pct"): lambda s: s.memory_pct,
            ("queue", "depth"): lambda q: q.depth,
            ("queue", "lag_p99_s"): lambda q: q.oldest_age_s,
            ("circuit", "state"): lambda b: float(b.state),
            ("region", "consecutive_failed_checks"): lambda r: float(r.consecutive_failed),
        }.get((kind, signal))
        if fast is not None:
            return fast
        full = {"service": self.service_signals, "queue": self.queue_signals, "circuit": self.circuit_signals, "region": self.region_signals}[kind]
        return lambda obj: full(obj)[signal]

    def entity(self, kind: str, name: str):
        return {"service": self.services, "queue": self.queues, "circuit": self.breakers, "region": self.regions}[kind][name]

    def service_signals(self, s: Service) -> dict[str, float]:
        err = s.error_pct
        open_breakers = sum(1 for e in s.deps if e.breaker.state != CLOSED)
        return {
            "rps": s.in_rps,
            "p50_ms": s.p50,
            "p99_ms": s.p99,
            "p99_9_ms": s.p999,
            "error_pct": err,
            "error_5xx_pct": 100.0 * s.err5,
            "error_4xx_pct": 100.0 * s.err4,
            "errors_per_min": s.served_rps * (s.err5 + s.err4) * 60.0,
            "cpu_pct": s.cpu_pct,
            "memory_pct": s.memory_pct,
            "replicas": float(s.replicas),
            "healthy": 1.0 if s.healthy else 0.0,
            "open_breakers": float(open_breakers),
            "throttled_rps": s.throttled_rps,
        }

    def queue_signals(self, q: Queue) -> dict[str, float]:
        cap = q.concurrency * q.per_worker
        return {
            "depth": q.depth,
            "lag_p99_s": q.oldest_age_s,
            "lag_p50_s": q.oldest_age_s / 2.0,
            "ingest_per_s": q.ingest,
            "processing_per_s": q.processed,
            "net_drain_per_s": q.net_drain,
            "concurrency": float(q.concurrency),
            "concurrency_used_pct": 100.0 * min(1.0, q.attempted / cap) if cap > 0 else 0.0,
        }

    def circuit_signals(self, b: CircuitBreaker) -> dict[str, float]:
        dep = self.services[b.dependency]
        e = next(x for x in self.services[b.caller].deps if x.breaker is b)
        fail = (min(1.0, dep.err5 + self._timeout_share(e)) if dep.up else 1.0) * 100.0
        return {
            "state": float(b.state),
            "error_pct": fail,
            "p99_ms": dep.p99 + e.extra_ms * 3 if dep.up else float(b.policy.timeout_ms),
            "healthy": 1.0 if (dep.up and fail < 50.0) else 0.0,
        }

    def region_signals(self, r: Region) -> dict[str, float]:
        return {
            "consecutive_failed_checks": float(r.consecutive_failed),
            "consecutive_passed_checks": float(r.consecutive_passed),
            "healthy": 1.0 if r.last_check_ok else 0.0,
            "standby_traffic_pct": self.dns.weights.get(self.standby, 0.0),
            "traffic_pct": self.dns.weights.get(r.name, 0.0),
            "replication_lag_ms": max(x.replication_lag_ms for x in self.regions.values() if x.up) if any(x.up for x in self.regions.values()) else 5000.0,
            "edge_error_pct": self.edge_error_pct,
        }

    # ------------------------------------------------------------------ logs
    def _log(self, now_ms: int, level: str, service: str, message: str, **fields: Any) -> None:
        self.logs.append({"ts_ms": now_ms, "level": level, "service": service, "message": message, **fields})

    def log(self, now_ms: int, level: str, service: str, message: str, **fields: Any) -> None:
        """Add a line to the fleet's own log (what `ggen logs tail` shows from a live engine)."""
        self._log(now_ms, level, service, message, **fields)

    def iter_logs(self) -> Iterable[dict[str, Any]]:
        return iter(self.logs)
