"""Fault injection: every root cause the runbooks name, as data the fleet reacts to.

A fault changes the fleet's behaviour, never its metrics directly: a bad deploy installs a
revision that fails requests, a slow query is slow until the missing index exists, a memory leak
grows until a restart. Mitigation then acts on the same model, so recovery is observed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# kind -> (incident type it leads to, target kind, description, default params)
FAULT_KINDS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "traffic_surge": ("queue_backlog_overflow", "queue", "Ingest jumps for one tenant (batch import, retry storm)", {"factor": 7.0, "ramp_s": 120}),
    "slow_consumer": ("queue_backlog_overflow", "queue", "Each consumer worker processes fewer messages per second", {"factor": 0.25}),
    "quota_exhaustion": ("queue_backlog_overflow", "queue", "A surge larger than the tenant's concurrency quota can absorb", {"factor": 15.0, "ramp_s": 10}),
    "dependency_outage": ("circuit_breaker_opened", "service", "A service crash-loops; a restart brings it back", {}),
    "dependency_timeouts": ("circuit_breaker_opened", "service", "Connection-pool exhaustion: calls wait and time out until the pool is reset", {"extra_ms": 900}),
    "external_outage": ("circuit_breaker_opened", "service", "A third-party API is down; nothing here can restart it", {}),
    "slow_queries": ("latency_spike", "service", "A query misses its index and scans; slow until the index exists", {"extra_ms": 450, "index": "idx_user_account", "table": "users", "caller": "app"}),
    "cpu_saturation": ("latency_spike", "service", "A hot code path burns CPU; more replicas dilute it", {"extra_load": 0.36}),
    "memory_pressure": ("latency_spike", "service", "Heap grows until GC pauses dominate; a restart clears it", {"growth_pct_per_min": 10.0}),
    "bad_deploy": ("error_rate_spike", "service", "A new revision fails a share of requests with 5xx", {"error_pct": 20.0}),
    "bad_config": ("error_rate_spike", "service", "A config change breaks a share of requests", {"error_pct": 15.0, "key": "payments.timeout_ms"}),
    "schema_change": ("error_rate_spike", "service", "A feature flag turns on an incompatible API schema: clients get 4xx", {"error_pct": 30.0, "flag": "api_schema_v2"}),
    # health_check "passes": a gray failure: the region still passes its shallow health check (so
    # automation believes it healthy), but traffic sent to it fails and replication to it stops.
    "region_outage": ("region_failover", "region", "The primary region stops answering", {"health_check": "fails"}),
    "flapping_health": ("region_failover", "region", "Health checks fail intermittently", {"pattern": "FFFPFFP"}),
    "traffic_spike": ("latency_spike", "service", "Inbound requests jump on a service", {"factor": 3.0, "ramp_s": 10}),
    "large_responses": ("latency_spike", "service", "Responses grow (an unpaginated endpoint): transfer time dominates until compression is on", {"factor": 12.0}),
}


@dataclass
class Fault:
    """One injected fault. ``end_ms`` None means it lasts until mitigated (or forever)."""

    id: str
    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    start_ms: int = 0
    end_ms: int | None = None
    neutralized_ms: int | None = None  # when a mitigation removed its effect (for reports)

    def active(self, now_ms: int) -> bool:
        return now_ms >= self.start_ms and (self.end_ms is None or now_ms < self.end_ms)

    @property
    def incident_type(self) -> str:
        return FAULT_KINDS[self.kind][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "params": dict(self.params),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }


def fault_params(kind: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default parameters of a fault kind merged with ``overrides``; unknown kinds are an error."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
    params = dict(FAULT_KINDS[kind][3])
    if overrides:
        unknown = set(overrides) - set(params) - {"duration_s", "restarts_needed"}
        if unknown:
            raise ValueError(f"fault {kind!r} has no parameter(s) {', '.join(sorted(unknown))}")
        params.update(overrides)
    return params
