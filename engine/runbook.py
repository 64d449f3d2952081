"""Runbook step conditions: the named predicates a runbook file's ``when`` and ``while`` refer to.

Runbooks are data; what a condition *means* against the fleet lives here, one small function each,
so a team can reorder steps, change windows and thresholds, or drop steps without touching code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from engine.mitigate.actuator import slow_queries
from engine.mitigate.breaker import CLOSED

if TYPE_CHECKING:
    from engine.core import Engine
    from engine.incident import Incident
    from engine.policy.models import RunbookStep

Condition = Callable[["Engine", "Incident", "RunbookStep"], bool]

DEFAULT_SETTLE_S = 30


def _service(engine: "Engine", inc: "Incident"):
    return engine.fleet.services.get(inc.service)


def _recent_change(engine: "Engine", inc: "Incident", kind: str, window_s: int) -> bool:
    s = _service(engine, inc)
    if s is None:
        return False
    limit = engine.now_ms - window_s * 1000
    for c in reversed(s.changes):
        if c.at_ms < limit:
            break
        if c.kind == kind and c.actor != "engine" and not c.detail.startswith(("rollback", "revert")):
            if kind == "flag" and c.after is not True:
                continue
            if kind == "deploy" and s.revision != c.after:
                continue
            if kind == "config" and s.config_version != c.after:
                continue
            if kind == "flag" and not s.feature_flags.get(c.detail, False):
                continue
            return True
    return False


def always(engine, inc, step) -> bool:
    return True


def queue_behind(engine, inc, step) -> bool:
    """The backlog is above target and will not get there within ``window_s`` (default 60 s)."""
    q = engine.fleet.queues.get(inc.entity)
    if q is None:
        return False
    excess = q.depth - engine.policy.mitigation.scaler.pre_incident_depth
    if excess <= 0:
        return False
    drain = q.net_drain
    return drain <= 0.0 or excess / drain > (step.window_s or 60)


def downstream_unhealthy(engine, inc, step) -> bool:
    """The consumer's downstream has been failing for a while: scaling cannot help."""
    q = engine.fleet.queues.get(inc.entity)
    if q is None:
        return False
    consumer = engine.fleet.services[q.consumer]
    bad = any(e.breaker.state != CLOSED or e.dep.err5 >= 0.5 for e in consumer.deps)
    key = ("downstream_bad_since", inc.id)
    if not bad:
        engine.scratch.pop(key, None)
        return False
    since = engine.scratch.setdefault(key, engine.now_ms)
    return engine.now_ms - since >= (step.window_s or 120) * 1000


def dependency_restartable(engine, inc, step) -> bool:
    dep = engine.fleet.services.get(inc.service)
    return dep is not None and dep.restartable and (not dep.up or dep.pool_in_use > 0 or dep.err5 >= 0.05)


def dependency_not_restartable(engine, inc, step) -> bool:
    dep = engine.fleet.services.get(inc.service)
    return dep is not None and not dep.restartable


def _slow(engine, inc) -> bool:
    return any(q.caller == inc.service for q in slow_queries(engine.fleet))


def slow_queries_(engine, inc, step) -> bool:
    return _slow(engine, inc)


def cpu_high(engine, inc, step) -> bool:
    s = _service(engine, inc)
    return s is not None and s.cpu_pct > engine.policy.mitigation.replicas.cpu_pct_trigger


def memory_high(engine, inc, step) -> bool:
    s = _service(engine, inc)
    return s is not None and s.memory_pct > engine.policy.mitigation.replicas.memory_pct_trigger


def no_local_cause(engine, inc, step) -> bool:
    settle = (step.window_s or DEFAULT_SETTLE_S) * 1000
    if engine.now_ms - inc.detected_at_ms < settle:
        return False
    return not (_slow(engine, inc) or cpu_high(engine, inc, step) or memory_high(engine, inc, step))


def deploy_within(engine, inc, step) -> bool:
    return _recent_change(engine, inc, "deploy", step.window_s or 600)


def config_changed_within(engine, inc, step) -> bool:
    return _recent_change(engine, inc, "config", step.window_s or 1800)


def flag_changed_within(engine, inc, step) -> bool:
    return _recent_change(engine, inc, "flag", step.window_s or 1800)


def failing_dependency(engine, inc, step) -> bool:
    s = _service(engine, inc)
    return s is not None and any(e.breaker.state == CLOSED and e.dep.own_err5 >= 0.2 for e in s.deps)


def no_recent_change(engine, inc, step) -> bool:
    settle = (step.window_s or DEFAULT_SETTLE_S) * 1000
    if engine.now_ms - inc.detected_at_ms < settle:
        return False
    return not (
        _recent_change(engine, inc, "deploy", 600)
        or _recent_change(engine, inc, "config", 1800)
        or _recent_change(engine, inc, "flag", 1800)
        or failing_dependency(engine, inc, step)
    )


def standby_healthy(engine, inc, step) -> bool:
    f = engine.fleet
    other = f.standby if inc.entity == f.primary else f.primary
    r = f.regions[other]
    return r.up and r.last_check_ok


def standby_unhealthy(engine, inc, step) -> bool:
    return not standby_healthy(engine, inc, step)


CONDITIONS: dict[str, Condition] = {
    "always": always,
    "queue_behind": queue_behind,
    "downstream_unhealthy": downstream_unhealthy,
    "dependency_restartable": dependency_restartable,
    "dependency_not_restartable": dependency_not_restartable,
    "slow_queries": slow_queries_,
    "cpu_high": cpu_high,
    "memory_high": memory_high,
    "no_local_cause": no_local_cause,
    "deploy_within": deploy_within,
    "config_changed_within": config_changed_within,
    "flag_changed_within": flag_changed_within,
    "failing_dependency": failing_dependency,
    "no_recent_change": no_recent_change,
    "standby_healthy": standby_healthy,
    "standby_unhealthy": standby_unhealthy,
}


def holds(name: str, engine: "Engine", inc: "Incident", step: "RunbookStep") -> bool:
    return CONDITIONS[name](engine, inc, step)
