"""Changes a person makes to the live system: the runbooks' Mitigate and Rollback commands.

Every change is one ``act`` request naming a manual operation (``circuit-breaker.open``,
``governor.update``, ``mitigation.trigger`` ...) and its arguments. A planner checks the arguments
(an error names the argument) and the preconditions (a refusal says why), and turns the request
into engine actions plus a function that snapshots the state the operation touches. ``act`` then
runs the actions through :meth:`Engine.manual_action` (safety governor, dry-run, and, when the
action concerns exactly one open incident or an incident id is given, a ``mitigation.applied``
event of that incident with the person as actor), snapshots the state again, and writes one
``engine.operator_action`` receipt with the before and after state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import Field

from engine.clock import iso_utc
from engine.control.diagnose import service_problems
from engine.control.operations import Args
from engine.control.protocol import BAD_ARGUMENT, FAILED, NOT_FOUND, REFUSED, OpError
from engine.mitigate.breaker import CLOSED, HALF_OPEN, OPEN, STATE_NAMES

STATE_BY_NAME = {"CLOSED": CLOSED, "OPEN": OPEN, "HALF_OPEN": HALF_OPEN}


class ActArgs(Args):
    operation: str
    args: dict[str, Any] = {}
    actor: str = Field(default="unknown", min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    incident_id: str | None = None
    attach: bool = True  # record on the one open incident this concerns, if there is exactly one
    plan_only: bool = False


@dataclass
class Step:
    """One engine action of a plan."""

    action: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What an operation will do, what it touches, and how to read that state."""

    operation: str
    summary: str
    steps: list[Step]
    touches: set[str]
    state: Callable[[], dict[str, Any]]
    target: str | None = None
    no_change: str | None = None  # why nothing would change (then no action runs)
    incident_id: str | None = None  # an operation bound to an incident (mitigation trigger)


def _key_message(exc: KeyError) -> str:
    """A KeyError's own message (``str()`` of a KeyError adds quotes around it)."""
    return str(exc.args[0]) if exc.args else "no such incident"


def duration_text(ms: int) -> str:
    """Milliseconds as people type them: 1s, 5m, 24h, 999d (the largest whole unit), else ms."""
    if ms == 0:
        return "0s"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def limit_text(v: float | None, unit: str) -> str:
    """A rate limit for people: ``100/s``, or ``none`` when there is none."""
    return "none" if v is None else f"{v:g}{unit}"


# ----------------------------------------------------------------------------- state snapshots
def _breaker_state(ops: Any, names: list[str]) -> dict[str, Any]:
    f = ops.engine.fleet
    out = {}
    for n in names:
        b = f.breakers[n]
        out[n] = {"state": STATE_NAMES[b.state], "override": None if b.override_state is None else STATE_NAMES[b.override_state], "override_until": None if b.override_until_ms is None else iso_utc(b.override_until_ms)}
    return out


def _service_state(ops: Any, name: str) -> dict[str, Any]:
    s = ops.engine.fleet.services[name]
    sig = ops.engine.signals("service", name)
    return {
        "up": s.up,
        "replicas": s.replicas,
        "revision": s.revision,
        "config_version": s.config_version,
        "rate_limit_rps": s.rate_limit_rps,
        "compression": s.compression_algorithm,
        "error_pct": round(sig["error_pct"], 2),
        "p99_ms": round(sig["p99_ms"]),
        "flags": dict(s.feature_flags),
    }


def _queue_state(ops: Any, name: str) -> dict[str, Any]:
    q = ops.engine.fleet.queues[name]
    return {"concurrency": q.concurrency, "rate_limit_per_s": q.rate_limit_per_s, "depth": int(q.depth), "limit": q.limit}


def _region_state(ops: Any) -> dict[str, Any]:
    f = ops.engine.fleet
    return {
        "serving": f.serving,
        "dns_weights": {k: round(v) for k, v in f.dns.weights.items()},
        "records": {n: int(round(r.records)) for n, r in f.regions.items()},
        "conflicts": f.replication_conflicts(),
        "lost_records": f.lost_records,
    }


def entity_state(ops: Any, target: str) -> dict[str, Any]:
    """A snapshot of whatever ``target`` names (service, tenant, circuit or region)."""
    f = ops.engine.fleet
    if target in f.services:
        return _service_state(ops, target)
    if target in f.queues:
        return _queue_state(ops, target)
    if target in f.breakers:
        return _breaker_state(ops, [target])[target]
    if target in f.regions or target == "replication":
        return _region_state(ops)
    return {}


# ----------------------------------------------------------------------------- planners
class ServiceArgs(Args):
    service: str
    reason: str | None = None


class OverrideArgs(Args):
    service: str
    state: Literal["CLOSED", "OPEN"] = "CLOSED"
    duration_ms: int = 300_000  # 1s to 24h, checked in plan_breaker to say so in those units


OVERRIDE_MIN_MS, OVERRIDE_MAX_MS = 1000, 86_400_000  # 1s, 24h (as the messages and --help say)


def _breakers_for(ops: Any, service: str) -> list[str]:
    f = ops.engine.fleet
    if service in f.breakers:
        return [service]
    ops.service(service)
    names = [b.name for b in f.breaker_for(service)]
    if not names:
        guarded = sorted({b.dependency for b in f.breakers.values()})
        raise OpError(BAD_ARGUMENT, f"no circuit breaker guards calls to {service!r} (breakers guard: {', '.join(guarded)})", "service")
    return names


def plan_breaker(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    verb = operation.split(".")[1]
    if verb == "override":
        a: Any = OverrideArgs.model_validate(raw)
    else:
        a = ServiceArgs.model_validate(raw)
    f = ops.engine.fleet
    names = _breakers_for(ops, a.service)
    deps = {f.breakers[n].dependency for n in names}
    touches = set(names) | deps
    state = lambda: _breaker_state(ops, names)  # noqa: E731
    label = ", ".join(names)
    if verb == "open":
        steps = [Step("open_breaker", a.service, {})]
        summary = f"open circuit breaker {label}" + (f" ({a.reason})" if a.reason else "")
        already = all(f.breakers[n].state == OPEN and f.breakers[n].override_state == OPEN for n in names)
        return Plan(operation, summary, steps, touches, state, a.service, no_change=f"{label} already held OPEN" if already else None)
    if verb in ("close", "reset"):
        steps = [Step("close_breaker", a.service, {})]
        summary = f"{'close' if verb == 'close' else 'reset'} circuit breaker {label} (release any override; it re-opens if calls keep failing)"
        clean = all(f.breakers[n].state == CLOSED and f.breakers[n].override_state is None for n in names)
        no = None
        if clean and verb == "close":
            no = f"{label} already CLOSED"
        return Plan(operation, summary, steps, touches, state, a.service, no_change=no)
    # override: only onto a healthy service (02-circuit-breaker-opened)
    if a.duration_ms < OVERRIDE_MIN_MS:
        raise OpError(BAD_ARGUMENT, f"at least 1s (got {duration_text(a.duration_ms)})", "duration_ms")
    if a.duration_ms > OVERRIDE_MAX_MS:
        raise OpError(BAD_ARGUMENT, f"at most 24h (got {duration_text(a.duration_ms)})", "duration_ms")
    st = STATE_BY_NAME[a.state]
    if st == CLOSED:
        for dep in deps:
            sick = service_problems(ops, dep)
            sig = [ops.engine.signals("circuit", n) for n in names if f.breakers[n].dependency == dep]
            failing = max((x["error_pct"] for x in sig), default=0.0)
            if failing >= 5.0:
                sick = [f"calls failing {failing:.0f} %"] + sick
            if sick:
                raise OpError(REFUSED, f"override refused: {dep} is not healthy ({'; '.join(sick)}); fix it first (restart it, see ggen db connections status), then override", "service")
    steps = [Step("override_breaker", a.service, {"state": st, "duration_ms": a.duration_ms})]
    summary = f"override circuit breaker {label} to {a.state} for {a.duration_ms // 1000} s"
    return Plan(operation, summary, steps, touches, state, a.service)


class RateLimitArgs(Args):
    account_id: str | None = None
    max_per_second: float | None = Field(default=None, gt=0, le=10_000_000)


def _ingress(ops: Any) -> list[str]:
    return [n for n, s in ops.engine.fleet.services.items() if s.ingress_rps > 0]


def plan_rate_limit(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = RateLimitArgs.model_validate(raw)
    enable = operation.endswith("enable")
    f = ops.engine.fleet
    if enable and a.max_per_second is None:
        raise OpError(BAD_ARGUMENT, "rate-limit enable needs --max-per-second N", "max_per_second")
    if not enable and a.max_per_second is not None:
        raise OpError(BAD_ARGUMENT, "rate-limit disable takes no --max-per-second", "max_per_second")
    if a.account_id is not None:
        q = ops.tenant(a.account_id)
        limit = a.max_per_second if enable else None
        state = lambda: {a.account_id: _queue_state(ops, a.account_id)}  # noqa: E731
        summary = f"{'limit' if enable else 'lift the limit on'} tenant {a.account_id} ingest" + (f" to {a.max_per_second:g} msg/s" if enable else "")
        no = None
        if q.rate_limit_per_s == limit:
            no = f"tenant {a.account_id} already " + (f"limited to {limit:g}/s" if enable else "unlimited")
        return Plan(operation, summary, [Step("rate_limit", a.account_id, {"max_per_second": limit})], {a.account_id, q.consumer}, state, a.account_id, no_change=no)
    # No tenant: the fleet's edge (every ingress service); disable lifts every service-level limit.
    targets = _ingress(ops) if enable else [n for n, s in f.services.items() if s.rate_limit_rps is not None]
    state = lambda: {n: {"rate_limit_rps": f.services[n].rate_limit_rps} for n in sorted(set(_ingress(ops)) | set(targets))}  # noqa: E731
    if enable:
        steps = [Step("throttle", n, {"max_per_second": a.max_per_second}) for n in targets]
        summary = f"rate-limit requests at the edge ({', '.join(targets)}) to {a.max_per_second:g} req/s; excess gets 429"
        no = f"edge already limited to {a.max_per_second:g} req/s" if all(f.services[n].rate_limit_rps == a.max_per_second for n in targets) else None
    else:
        steps = [Step("throttle", n, {"max_per_second": None}) for n in targets]
        summary = "lift request rate limits" + (f" on {', '.join(targets)}" if targets else "")
        no = "no request rate limit is in force" if not targets else None
    touches = set(targets) | {d for n in targets for d in f.dependencies_of(n)}
    return Plan(operation, summary, steps, touches, state, ",".join(targets) or None, no_change=no)


class GovernorUpdateArgs(Args):
    account_id: str
    concurrency: int = Field(ge=1, le=100_000)


def plan_governor_update(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = GovernorUpdateArgs.model_validate(raw)
    q = ops.tenant(a.account_id)
    if a.concurrency > q.limit:
        raise OpError(BAD_ARGUMENT, f"{a.concurrency} is above {a.account_id}'s limit {q.limit} (max_concurrency {q.max_concurrency}, quota {q.quota})", "concurrency")
    state = lambda: {a.account_id: _queue_state(ops, a.account_id)}  # noqa: E731
    no = f"{a.account_id} concurrency already {a.concurrency}" if q.concurrency == a.concurrency else None
    return Plan(operation, f"set {a.account_id} consumer concurrency {q.concurrency} -> {a.concurrency}", [Step("scale_concurrency", a.account_id, {"to": a.concurrency})], {a.account_id, q.consumer}, state, a.account_id, no_change=no)


class ConfigRollbackArgs(Args):
    timestamp: str
    service: str | None = None


def plan_config_rollback(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = ConfigRollbackArgs.model_validate(raw)
    f = ops.engine.fleet
    t = ops.time_ref(a.timestamp, "timestamp")
    assert t is not None
    if t > ops.engine.now_ms:
        raise OpError(BAD_ARGUMENT, f"{iso_utc(t)} is in the future", "timestamp")
    names = [ops.service(a.service).name] if a.service else list(f.services)
    targets = []
    for n in names:
        s = f.services[n]
        later = [c for c in s.changes if c.kind == "config" and c.at_ms >= t and isinstance(c.before, int)]
        if later and later[0].before != s.config_version:
            targets.append((n, later[0].before))
    if not targets:
        last = max((c.at_ms for n in names for c in f.services[n].changes if c.kind == "config"), default=None)
        hint = f" (last config change {iso_utc(last)})" if last is not None else " (no config change recorded)"
        raise OpError(NOT_FOUND, f"no config change since {iso_utc(t)} to roll back{hint}", "timestamp")
    state = lambda: {n: {"config_version": f.services[n].config_version, "config": dict(f.services[n].config)} for n, _ in targets}  # noqa: E731
    steps = [Step("revert_config", n, {"before_ms": t}) for n, _ in targets]
    summary = "roll back config to before " + iso_utc(t) + ": " + ", ".join(f"{n} v{f.services[n].config_version} -> v{v}" for n, v in targets)
    return Plan(operation, summary, steps, {n for n, _ in targets}, state, ",".join(n for n, _ in targets))


class ConflictArgs(Args):
    strategy: Literal["standby-wins", "timestamp-wins"]


def plan_conflict_resolve(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = ConflictArgs.model_validate(raw)
    f = ops.engine.fleet
    state = lambda: _region_state(ops)  # noqa: E731
    holders = [r for r in f.regions.values() if r.stranded > 0 and (a.strategy == "timestamp-wins" or r.name != f.standby)]
    no = None
    if not holders:
        no = "no conflicting records between the regions"
    elif a.strategy == "timestamp-wins" and not all(r.up for r in f.regions.values()):
        down = ", ".join(r.name for r in f.regions.values() if not r.up)
        raise OpError(REFUSED, f"timestamp-wins compares both copies of each record, and {down} does not answer; use --strategy standby-wins or wait for it", "strategy")
    n = int(round(sum(r.stranded for r in holders)))
    summary = f"resolve {n} conflicting records ({a.strategy}: " + ("the standby's data wins, the others are discarded and replayable from the write log)" if a.strategy == "standby-wins" else "the newest write of each record wins)")
    return Plan(operation, summary, [Step("resolve_replication_conflicts", f.standby, {"strategy": a.strategy})], set(f.regions), state, "replication", no_change=no)


class IndexArgs(Args):
    index_name: str = Field(min_length=1, max_length=200)
    database: str | None = None


def plan_index(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = IndexArgs.model_validate(raw)
    db = ops.database(a.database)
    create = operation.endswith("create")
    state = lambda: {db.name: {"indexes": sorted(db.indexes), "building": sorted(db.pending_indexes)}}  # noqa: E731
    callers = {e.caller.name for e in db.callers}
    if create:
        no = f"index {a.index_name} already exists" if a.index_name in db.indexes else (f"index {a.index_name} is already being built" if a.index_name in db.pending_indexes else None)
        if no is None and a.index_name not in db.pre_approved_indexes:
            raise OpError(REFUSED, f"index {a.index_name} is not pre-approved for {db.name} (pre-approved: {', '.join(db.pre_approved_indexes) or 'none'}); get it reviewed first", "index_name")
        return Plan(operation, f"create index {a.index_name} on {db.name} (concurrently, then ANALYZE)", [Step("create_index", db.name, {"index": a.index_name})], {db.name} | callers, state, db.name, no_change=no)
    if a.index_name not in db.indexes and a.index_name not in db.pending_indexes:
        raise OpError(NOT_FOUND, f"no index {a.index_name} on {db.name} (indexes: {', '.join(sorted(db.indexes))})", "index_name")
    return Plan(operation, f"drop index {a.index_name} on {db.name}", [Step("drop_index", db.name, {"index": a.index_name})], {db.name} | callers, state, db.name)


class OptimizeArgs(Args):
    query_id: str = Field(min_length=1, max_length=100)
    database: str | None = None


def plan_optimize(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = OptimizeArgs.model_validate(raw)
    db = ops.database(a.database)
    f = ops.engine.fleet
    from engine.fleet.model import slow_query_id

    faults = [x for x in f.faults if x.kind == "slow_queries" and x.target == db.name and slow_query_id(x) == a.query_id]
    if not faults:
        known = sorted({slow_query_id(x) for x in f.faults if x.kind == "slow_queries" and x.target == db.name})
        raise OpError(NOT_FOUND, f"no query {a.query_id!r} in {db.name}'s slow-query log (known: {', '.join(known) or 'none'})", "query_id")
    state = lambda: {db.name: {"rewritten_queries": sorted(db.optimized_queries), "indexes": sorted(db.indexes)}}  # noqa: E731
    no = None
    if a.query_id in db.optimized_queries:
        no = f"query {a.query_id} is already rewritten"
    elif all(x.params["index"] in db.indexes for x in faults):
        no = f"query {a.query_id} already uses index {faults[0].params['index']}: nothing to rewrite"
    callers = {x.params.get("caller", "app") for x in faults}
    return Plan(operation, f"rewrite query {a.query_id} on {db.name} (narrower select, bounded scan)", [Step("optimize_query", db.name, {"query_id": a.query_id})], {db.name} | callers, state, db.name, no_change=no)


class CompressionArgs(Args):
    algorithm: str | None = None
    service: str | None = None


def plan_compression(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = CompressionArgs.model_validate(raw)
    f = ops.engine.fleet
    enable = operation.endswith("enable")
    known = ops.engine.policy.mitigation.compression.ratio_pct
    if enable:
        if a.algorithm is None:
            raise OpError(BAD_ARGUMENT, f"compression enable needs --algorithm ({', '.join(known)})", "algorithm")
        if a.algorithm not in known:
            raise OpError(BAD_ARGUMENT, f"unknown algorithm {a.algorithm!r} (known: {', '.join(known)})", "algorithm")
    names = [ops.service(a.service).name] if a.service else _ingress(ops)  # responses to clients
    want = a.algorithm if enable else None
    todo = [n for n in names if f.services[n].compression_algorithm != want]
    state = lambda: {n: {"compression": f.services[n].compression_algorithm, "response_p99_bytes": int(f.services[n].response_bytes_p99)} for n in names}  # noqa: E731
    summary = (f"enable {a.algorithm} response compression on " if enable else "disable response compression on ") + ", ".join(todo or names)
    no = None if todo else ("compression already " + (a.algorithm or "off") + " on " + ", ".join(names))
    return Plan(operation, summary, [Step("set_compression", n, {"algorithm": want}) for n in todo], set(names), state, ",".join(names), no_change=no)


class FailbackArgs(Args):
    region: str


def plan_failback(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = FailbackArgs.model_validate(raw)
    r = ops.region(a.region)
    f = ops.engine.fleet
    need = ops.engine.policy.mitigation.failover.failback_passing_checks
    state = lambda: _region_state(ops)  # noqa: E731
    if f.dns.weights.get(a.region, 0.0) >= 100.0 and not f.dns.moving:
        return Plan(operation, f"fail back to {a.region}", [], set(f.regions), state, a.region, no_change=f"traffic is already on {a.region}")
    if not r.up or r.consecutive_passed < need:
        raise OpError(REFUSED, f"failback refused: {a.region} has passed {r.consecutive_passed} consecutive health checks; failback needs {need}", "region")
    conflicts = f.replication_conflicts()
    if conflicts:
        raise OpError(REFUSED, f"failback refused: {conflicts} conflicting records between the regions; settle them first (ggen replication conflict-resolve --strategy standby-wins|timestamp-wins)", "region")
    if r.catchup > 0:
        raise OpError(REFUSED, f"failback refused: {a.region} is still replaying {int(r.catchup)} records it missed; check ggen replication verify --bidirectional", "region")
    if f.dns.moving:
        raise OpError(REFUSED, "failback refused: a DNS change is already propagating", "region")
    return Plan(operation, f"fail back to {a.region}: DNS moves over ~{ops.engine.policy.mitigation.failover.propagation[-1][0]} s (TTL {ops.engine.policy.mitigation.failover.dns_ttl_s} s)", [Step("failback_region", a.region, {})], set(f.regions), state, a.region)


class FlagArgs(Args):
    service: str
    flag: str


def plan_flag_disable(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = FlagArgs.model_validate(raw)
    s = ops.service(a.service)
    if a.flag not in s.feature_flags:
        raise OpError(BAD_ARGUMENT, f"{a.service} has no feature flag {a.flag!r} (flags: {', '.join(sorted(s.feature_flags)) or 'none'})", "flag")
    state = lambda: {a.service: {"flags": dict(s.feature_flags)}}  # noqa: E731
    no = f"flag {a.flag} is already off" if not s.feature_flags[a.flag] else None
    return Plan(operation, f"disable feature flag {a.flag} on {a.service}", [Step("disable_feature_flag", a.service, {"flag": a.flag})], {a.service}, state, a.service, no_change=no)


# ----------------------------------------------------------------------------- mitigation trigger
class TriggerArgs(Args):
    incident_id: str = Field(min_length=1)
    action: str = Field(min_length=1)
    params: dict[str, Any] = {}


# Friendly action names per incident type -> (engine action, how to pick the target).
FRIENDLY: dict[str, dict[str, tuple[str, str]]] = {
    "queue_backlog_overflow": {
        "scale-up": ("scale_concurrency", "entity"),
        "throttle": ("rate_limit", "entity"),
        "rate-limit": ("rate_limit", "entity"),
        "open-breaker": ("open_breaker", "consumer_dependency"),
        "close-breaker": ("close_breaker", "consumer_dependency"),
        "restart": ("restart_service", "consumer"),
    },
    "circuit_breaker_opened": {
        "restart": ("restart_service", "dependency"),
        "scale-up": ("scale_replicas", "dependency"),
        "open-breaker": ("open_breaker", "entity"),
        "close-breaker": ("close_breaker", "entity"),
        "rollback": ("rollback_deploy", "dependency"),
    },
    "latency_spike": {
        "scale-up": ("scale_replicas", "service"),
        "restart": ("restart_service", "service"),
        "prioritize": ("prioritize_requests", "service"),
        "create-index": ("create_index", "database"),
        "compress": ("set_compression", "service"),
        "throttle": ("throttle", "service"),
        "rollback": ("rollback_deploy", "service"),
    },
    "error_rate_spike": {
        "rollback": ("rollback_deploy", "service"),
        "revert-config": ("revert_config", "service"),
        "disable-flag": ("disable_feature_flag", "service"),
        "throttle": ("throttle", "service"),
        "open-breaker": ("open_breaker", "failing_dependency"),
        "close-breaker": ("close_breaker", "failing_dependency"),
        "restart": ("restart_service", "service"),
        "scale-up": ("scale_replicas", "service"),
    },
    "region_failover": {
        "failover": ("failover_region", "entity"),
        "failback": ("failback_region", "primary"),
    },
}


def _trigger_target(ops: Any, inc: Any, how: str) -> str:
    f = ops.engine.fleet
    if how == "entity":
        return inc.entity
    if how == "service":
        return inc.service
    if how == "primary":
        return f.primary
    if how == "dependency":
        return f.breakers[inc.entity].dependency if inc.entity in f.breakers else inc.service
    if how == "consumer":
        return f.queues[inc.entity].consumer
    if how == "consumer_dependency":
        consumer = f.services[f.queues[inc.entity].consumer]
        bad = [e for e in consumer.deps if e.breaker.state != CLOSED or e.dep.err5 >= 0.5 or e.tshare >= 0.2]
        return (bad or consumer.deps)[0].breaker.name
    if how == "failing_dependency":
        s = f.services[inc.service]
        bad = [e for e in s.deps if e.dep.own_err5 >= 0.2 or not e.dep.up or e.tshare >= 0.2]
        if not bad:
            raise OpError(REFUSED, f"{inc.service} has no failing dependency to break off (its dependencies look healthy)", "action")
        return bad[0].breaker.name
    if how == "database":
        dbs = [e.dep.name for e in f.services[inc.service].deps if e.dep.kind == "database"]
        if not dbs:
            raise OpError(REFUSED, f"{inc.service} does not call a database", "action")
        return dbs[0]
    raise OpError(BAD_ARGUMENT, f"cannot pick a target ({how})", "action")


def plan_trigger(ops: Any, operation: str, raw: dict[str, Any]) -> Plan:
    a = TriggerArgs.model_validate(raw)
    eng = ops.engine
    try:
        inc = eng.get_incident(a.incident_id)
    except KeyError as exc:
        raise OpError(NOT_FOUND, _key_message(exc), "incident_id") from None
    if not inc.open:
        raise OpError(REFUSED, f"incident {inc.id} is resolved; act without an incident (the runbook's own commands) to change things now", "incident_id")
    table = FRIENDLY.get(inc.type, {})
    name = a.action.strip().lower().replace("_", "-")
    if name in table:
        action, how = table[name]
        target = str(a.params.pop("target")) if "target" in a.params else _trigger_target(ops, inc, how)
    else:
        engine_name = a.action.strip().lower().replace("-", "_")
        if not hasattr(eng.sim_actuator, f"_do_{engine_name}") or engine_name == "none":
            raise OpError(BAD_ARGUMENT, f"unknown action {a.action!r} for a {inc.type} incident (use one of: {', '.join(table)}; or an engine action such as scale_concurrency)", "action")
        action = engine_name
        target = str(a.params.pop("target", inc.entity))
    params = dict(a.params)
    if action == "scale_concurrency" and "to" not in params:
        params["force"] = True
    if action == "set_compression" and "algorithm" not in params:
        params["algorithm"] = "gzip"
    if action == "rate_limit" and "max_per_second" not in params:
        raise OpError(BAD_ARGUMENT, "throttling a tenant needs --param max_per_second=N", "params")
    snap = lambda: {"incident": {"id": inc.id, "state": inc.state, "signals": {k: round(v, 2) for k, v in eng.signals(inc.entity_kind, inc.entity).items()}}, "target": {target: entity_state(ops, target)}}  # noqa: E731
    summary = f"{a.action} on incident {inc.id} ({inc.type} {inc.entity}): {action} on {target}"
    return Plan(operation, summary, [Step(action, target, params)], {target, inc.entity}, snap, target, incident_id=inc.id)


PLANNERS: dict[str, Callable[[Any, str, dict[str, Any]], Plan]] = {
    "circuit-breaker.open": plan_breaker,
    "circuit-breaker.close": plan_breaker,
    "circuit-breaker.reset": plan_breaker,
    "circuit-breaker.override": plan_breaker,
    "rate-limit.enable": plan_rate_limit,
    "rate-limit.disable": plan_rate_limit,
    "governor.update": plan_governor_update,
    "config.rollback": plan_config_rollback,
    "replication.conflict-resolve": plan_conflict_resolve,
    "db.indexes.create": plan_index,
    "db.indexes.drop": plan_index,
    "db.queries.optimize": plan_optimize,
    "compression.enable": plan_compression,
    "compression.disable": plan_compression,
    "failback": plan_failback,
    "feature-flags.disable": plan_flag_disable,
    "mitigation.trigger": plan_trigger,
}


# ----------------------------------------------------------------------------- acting
def _concerns(ops: Any, inc: Any) -> set[str]:
    """Names an incident is about: its entity, service, affected services and their dependencies."""
    f = ops.engine.fleet
    names = {inc.entity, inc.service} | set(inc.affected)
    if inc.entity_kind == "queue":
        q = f.queues[inc.entity]
        names |= {q.consumer} | f.dependencies_of(q.consumer)
        names |= {e.breaker.name for e in f.services[q.consumer].deps}
    elif inc.entity_kind == "circuit":
        names |= f.dependencies_of(inc.service)
    elif inc.entity_kind == "service":
        names |= f.dependencies_of(inc.service)
        names |= {e.breaker.name for e in f.services[inc.service].deps}
        names |= {e.caller.name for e in f.services[inc.service].callers if f.services[e.caller.name].ingress_rps > 0}
    elif inc.entity_kind == "region":
        names |= set(f.regions) | {"replication"}
    return names


def _pick_incident(ops: Any, plan: Plan, a: ActArgs) -> tuple[Any, str | None]:
    eng = ops.engine
    wanted = plan.incident_id or a.incident_id
    if wanted:
        try:
            inc = eng.get_incident(wanted)
        except KeyError as exc:
            raise OpError(NOT_FOUND, _key_message(exc), "incident_id") from None
        if not inc.open:
            raise OpError(REFUSED, f"incident {inc.id} is resolved; run the command without --incident-id", "incident_id")
        return inc, None
    if not a.attach:
        return None, None
    cands = [i for i in eng.incidents.values() if i.open and _concerns(ops, i) & plan.touches]
    if len(cands) == 1:
        return cands[0], None
    if len(cands) > 1:
        return None, f"not recorded on an incident: {len(cands)} open incidents concern it (pass --incident-id)"
    return None, None


def _detail(st: Step, r: Any) -> str:
    """What an action did, in words: a rate limit reads ``none -> 100/s``, never Python's None."""
    ch = r.changes if isinstance(getattr(r, "changes", None), dict) else {}
    if r.ok and st.action in ("rate_limit", "throttle") and "from" in ch and "to" in ch:
        who = f"tenant {st.target}" if st.action == "rate_limit" else st.target
        unit = " msg/s" if st.action == "rate_limit" else " req/s"
        return f"{who} rate limit {limit_text(ch['from'], unit)} -> {limit_text(ch['to'], unit)}"
    return str(r.detail)


def act(ops: Any, a: ActArgs) -> dict[str, Any]:
    """Plan, then (unless ``plan_only``) apply a manual operation and record it."""
    planner = PLANNERS.get(a.operation)
    if planner is None:
        raise OpError(BAD_ARGUMENT, f"unknown manual operation {a.operation!r} (known: {', '.join(sorted(PLANNERS))})", "operation")
    eng = ops.engine
    with eng.lock:
        try:
            plan = planner(ops, a.operation, dict(a.args))
        except OpError:
            raise
        except Exception as exc:
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                arg = str(err["loc"][0]) if err["loc"] else None
                what = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
                raise OpError(BAD_ARGUMENT, what, arg) from None
            raise
        before = plan.state()
        inc, note = _pick_incident(ops, plan, a)
        out: dict[str, Any] = {
            "operation": a.operation,
            "summary": plan.summary,
            "target": plan.target,
            "steps": [{"action": s.action, "target": s.target, "params": s.params} for s in plan.steps],
            "before": before,
            "incident_id": inc.id if inc is not None else None,
            "incident_note": note,
            "dry_run_mode": eng.governor.dry_run,
            "now_ms": eng.now_ms,
        }
        if a.plan_only:
            out.update(status="plan", no_change=plan.no_change)
            return out
        results: list[dict[str, Any]] = []
        status = "applied"
        failure: OpError | None = None
        if plan.no_change is not None:
            status = "no_change"
        for st in plan.steps if plan.no_change is None else []:
            r = eng.manual_action(st.action, st.target, actor=a.actor, incident_id=inc.id if inc is not None else None, params=st.params, reason=a.reason or plan.summary)
            results.append({"action": st.action, "target": st.target, "ok": r.ok, "detail": _detail(st, r), "changes": r.changes, "dry_run": bool(r.outcome.get("dry_run"))})
            if r.outcome.get("dry_run"):
                status = "planned"
                continue
            if r.ok:
                continue
            if r.outcome.get("refused"):
                status, failure = "refused", OpError(REFUSED, r.detail)
            elif r.deferred:
                status = "no_change" if status == "applied" and not any(x["ok"] for x in results[:-1]) else status
                if st.action == "failback_region":
                    status, failure = "refused", OpError(REFUSED, f"failback refused: {r.detail}", "region")
            else:
                status, failure = "failed", OpError(FAILED, r.detail)
            break
        after = plan.state()
        detail = "; ".join(x["detail"] for x in results) or (plan.no_change or plan.summary)
        receipt = ops.oplog.record(
            operation=a.operation,
            actor=a.actor,
            status=status,
            summary=f"{plan.summary}: {detail}" if status != "no_change" else f"{a.operation}: {plan.no_change or detail} (no change)",
            args=dict(a.args),
            target=plan.target,
            before=before,
            after=after,
            results=results,
            incident_id=inc.id if inc is not None else None,
            reason=a.reason,
        )
        if failure is not None:
            failure.message = f"{failure.message} (recorded as {receipt})" if receipt else failure.message
            raise failure
        out.update(status=status, after=after, results=results, receipt_id=receipt, detail=detail if status != "no_change" else (plan.no_change or detail))
        return out
