"""Prevention drills (06-prevention-strategies) and the ``prevention_failure_detected`` rule.

A *check* (runbooks/training/prevention.toml) injects a fault against the automation (the engine's
runbooks on), headless on the virtual clock, and judges it with the criteria the document states:
``queue_backlog`` passes if scaling fires and the queue is normal within 3 min; ``timeout_service``
if the breaker opens within 1 min, traffic falls back to cache and nothing cascades; one check per
runbook makes the monthly chaos drill.

The rule reads the ledger: the same incident type twice within 30 days triggers a review.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from engine import events as ev
from engine.clock import iso_utc
from engine.drill.runner import start_engine
from engine.drill.scenario import Expectation, FaultStep, Scenario, ScenarioHeader
from engine.mitigate.breaker import CLOSED
from engine.policy.bundle import Policy
from engine.policy.loader import PolicyError, StrictModel, load_model
from engine.policy.models import IncidentType

CriterionKind = Literal[
    "scaling_fires", "queue_normal_within", "breaker_opens_within", "falls_back_to_cache",
    "no_cascade", "action_within", "resolved_within", "traffic_on_standby",
]


class CheckCriterion(StrictModel):
    kind: CriterionKind
    entity: str | None = None
    within_s: int | None = Field(default=None, gt=0)
    normal_depth: float | None = Field(default=None, gt=0)
    max_error_pct: float | None = Field(default=None, ge=0)
    action: str | None = None


class PreventionCheck(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    runbook: IncidentType
    title: str
    faults: list[FaultStep] = Field(min_length=1)
    criteria: list[CheckCriterion] = Field(min_length=1)


class PreventionRule(StrictModel):
    name: str = "prevention_failure_detected"
    window_s: int = Field(default=2_592_000, gt=0)
    repeats: int = Field(default=2, ge=2)


class PreventionFile(StrictModel):
    rule: PreventionRule = Field(default_factory=PreventionRule)
    checks: list[PreventionCheck] = Field(min_length=1)


def load_prevention(path: Path | None = None) -> PreventionFile:
    from engine.training.config import training_dir

    p = path or training_dir() / "prevention.toml"
    pf = load_model(p, PreventionFile)
    names = [c.name for c in pf.checks]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise PolicyError(p, f"checks.{i}.name", f"{n!r} is used twice")
    return pf


# ----------------------------------------------------------------------------- running a check
@dataclass
class CriterionResult:
    kind: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "detail": self.detail}


@dataclass
class CheckResult:
    name: str
    runbook: str
    title: str
    seed: int
    duration_s: int
    passed: bool
    criteria: list[CriterionResult]
    incidents: list[dict[str, Any]] = field(default_factory=list)
    simulated_s: float = 0.0
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "runbook": self.runbook,
            "title": self.title,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "passed": self.passed,
            "criteria": [c.to_dict() for c in self.criteria],
            "incidents": self.incidents,
            "simulated_s": self.simulated_s,
            "wall_s": round(self.wall_s, 4),
        }


OBSERVE_AFTER_S = 600  # beyond the fault: long enough for the slowest recovery hold (5 min) to finish


def check_scenario(check: PreventionCheck, duration_s: int) -> Scenario:
    """The check as a scenario: its faults last ``duration_s`` unless they name their own duration."""
    faults = [f.model_copy(update={"duration_s": f.duration_s or duration_s}) for f in check.faults]
    header = ScenarioHeader(name=check.name, title=check.title, description=check.title, runbook=check.runbook, warmup_s=120, run_s=duration_s + OBSERVE_AFTER_S, drill=False)
    return Scenario(scenario=header, faults=faults, expect=Expectation(outcome="no_incident"))


@dataclass
class _Trace:
    depth: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    opened: dict[str, int] = field(default_factory=dict)
    caller_err_while_open: dict[str, float] = field(default_factory=dict)
    other_open: set[str] = field(default_factory=set)


def run_check(check: PreventionCheck, *, duration_s: int = 300, seed: int = 1, policy: Policy | None = None, **engine_kwargs: Any) -> CheckResult:
    """Inject the check's faults against the automation and judge its criteria (``engine_kwargs``
    go to the engine, e.g. ``kill_switch=True`` to see the checks fail without automation)."""
    wall = time.perf_counter()
    sc = check_scenario(check, duration_s)
    engine, play = start_engine(sc, seed, policy, **engine_kwargs)
    t0 = engine.now_ms
    end = t0 + sc.scenario.run_s * 1000
    watched_queues = {c.entity for c in check.criteria if c.kind in ("queue_normal_within", "scaling_fires") and c.entity}
    watched_circuits = {c.entity for c in check.criteria if c.kind in ("breaker_opens_within", "falls_back_to_cache") and c.entity}
    tr = _Trace()
    play()
    while engine.now_ms < end:
        engine.clock.sleep_until(engine.now_ms + engine.tick_ms)  # type: ignore[attr-defined]
        engine.step()
        play()
        now = engine.now_ms
        for q in watched_queues:
            if q in engine.fleet.queues:
                tr.depth.setdefault(q, []).append((now, engine.fleet.queues[q].depth))
        for name, b in engine.fleet.breakers.items():
            if b.state == CLOSED:
                continue
            if name in watched_circuits:
                if name not in tr.opened:
                    tr.opened[name] = now  # it opened at the end of this tick: callers saw it from the next
                    continue
                caller = engine.signals("service", b.caller)["error_pct"]
                tr.caller_err_while_open[name] = max(tr.caller_err_while_open.get(name, 0.0), caller)
            else:
                tr.other_open.add(name)
    results = [_judge(c, check, engine, tr, t0) for c in check.criteria]
    incs = sorted(engine.incidents.values(), key=lambda i: i.detected_at_ms)
    return CheckResult(
        name=check.name,
        runbook=check.runbook,
        title=check.title,
        seed=seed,
        duration_s=duration_s,
        passed=all(r.ok for r in results),
        criteria=results,
        incidents=[{"type": i.type, "entity": i.entity, "severity": i.max_severity, "state": i.state, "detected_s": (i.detected_at_ms - t0) / 1000, "mttr_s": None if i.mttr_ms is None else i.mttr_ms / 1000, "auto_resolved": i.auto_resolved} for i in incs],
        simulated_s=(engine.now_ms - engine.started_ms) / 1000,
        wall_s=time.perf_counter() - wall,
    )


def _s(ms: float) -> str:
    return f"{ms / 1000:.0f} s"


def _runbook_incident(check: PreventionCheck, engine: Any) -> Any:
    incs = sorted((i for i in engine.incidents.values() if i.type == check.runbook), key=lambda i: i.detected_at_ms)
    return incs[0] if incs else None


def _judge(c: CheckCriterion, check: PreventionCheck, engine: Any, tr: _Trace, t0: int) -> CriterionResult:
    k = c.kind
    if k == "scaling_fires":
        firsts = [n for n in engine.notices if n.get("kind") == "scaling.applied" and n.get("tenant") == c.entity]
        for inc in engine.incidents.values():
            for e in inc.events:
                if e.kind == ev.MITIGATION_APPLIED and e.data.get("action") == "scale_concurrency" and e.data.get("target") == c.entity:
                    firsts.append({"at_ms": e.recorded_at_ms, "text": e.summary})
        if not firsts:
            return CriterionResult(k, False, f"scaling never fired for {c.entity}")
        f = min(firsts, key=lambda n: n["at_ms"])
        return CriterionResult(k, True, f"scaling fired at +{_s(f['at_ms'] - t0)}: {f['text']}")
    if k == "queue_normal_within":
        samples = tr.depth.get(c.entity or "", [])
        limit = c.normal_depth or 500.0
        start = next((t for t, d in samples if d > limit), None)
        peak = max((d for _, d in samples), default=0.0)
        if start is None:
            return CriterionResult(k, True, f"{c.entity} never left normal (peak depth {peak:.0f}, normal < {limit:g})")
        back = next((t for t, d in samples if t > start and d < limit), None)
        if back is None:
            return CriterionResult(k, False, f"{c.entity} above {limit:g} from +{_s(start - t0)} and never back (peak {peak:.0f})")
        took = back - start
        ok = took <= (c.within_s or 180) * 1000
        return CriterionResult(k, ok, f"{c.entity} above {limit:g} at +{_s(start - t0)}, normal again after {_s(took)} (limit {c.within_s} s, peak {peak:.0f})")
    if k == "breaker_opens_within":
        at = tr.opened.get(c.entity or "")
        if at is None:
            return CriterionResult(k, False, f"{c.entity} never opened")
        ok = at - t0 <= (c.within_s or 60) * 1000
        return CriterionResult(k, ok, f"{c.entity} opened {_s(at - t0)} after the fault (limit {c.within_s} s)")
    if k == "falls_back_to_cache":
        b = engine.fleet.breakers.get(c.entity or "")
        if b is None:
            return CriterionResult(k, False, f"no circuit {c.entity!r}")
        if c.entity not in tr.opened:
            return CriterionResult(k, False, f"{c.entity} never opened, so nothing fell back")
        worst = tr.caller_err_while_open.get(c.entity or "", 0.0)
        ok = b.policy.fallback == "cached" and worst <= (c.max_error_pct if c.max_error_pct is not None else 1.0)
        return CriterionResult(k, ok, f"fallback {b.policy.fallback}; {b.caller}'s error rate while open peaked at {worst:.2f} % (limit {c.max_error_pct:g} %)")
    if k == "no_cascade":
        others = [f"{i.type} on {i.entity}" for i in engine.incidents.values() if i.entity != c.entity]
        breakers = sorted(x for x in tr.other_open if x != c.entity)
        if others or breakers:
            return CriterionResult(k, False, "cascaded: " + ", ".join(others + [f"breaker {x} opened" for x in breakers]))
        return CriterionResult(k, True, f"nothing beyond {c.entity} was affected")
    inc = _runbook_incident(check, engine)
    if inc is None:
        return CriterionResult(k, False, f"no {check.runbook} incident opened, so the runbook never ran")
    if k == "action_within":
        applied = [e for e in inc.events if e.kind == ev.MITIGATION_APPLIED and e.data.get("action") == c.action and e.actor.startswith("runbook:")]
        if not applied:
            return CriterionResult(k, False, f"the runbook never applied {c.action}")
        took = applied[0].recorded_at_ms - inc.detected_at_ms
        ok = took <= (c.within_s or 60) * 1000
        return CriterionResult(k, ok, f"{c.action} applied {_s(took)} after detection (limit {c.within_s} s)")
    if k == "resolved_within":
        target = engine.policy.runbooks[inc.type].runbook.mttr_target_s
        if inc.mttr_ms is None:
            return CriterionResult(k, False, f"{inc.type} did not resolve (state {inc.state})")
        ok = inc.mttr_ms <= target * 1000 and inc.auto_resolved
        how = "" if inc.auto_resolved else ", but only after escalating to a human"
        return CriterionResult(k, ok, f"{inc.type} resolved, MTTR {_s(inc.mttr_ms)} against the {target} s target{how}")
    if k == "traffic_on_standby":
        ok = bool(inc.failover_complete)
        return CriterionResult(k, ok, "all traffic reached the standby" if ok else "traffic never fully moved to the standby")
    return CriterionResult(k, False, f"unknown criterion {k}")


# ----------------------------------------------------------------------------- the ledger rule
@dataclass
class RepeatAlert:
    """``prevention_failure_detected``: one incident type recurring within the window."""

    rule: str
    incident_type: str
    incidents: list[dict[str, Any]]
    window_s: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "incident_type": self.incident_type, "window_s": self.window_s, "count": len(self.incidents), "incidents": self.incidents}


def repeat_alerts(summaries: list[Any], rule: PreventionRule) -> list[RepeatAlert]:
    """Every incident type with ``rule.repeats`` incidents within ``rule.window_s``: the most
    recent such run of incidents per type (all the incidents that fall in its window)."""
    by_type: dict[str, list[Any]] = {}
    for s in summaries:
        if s.incident_type and s.detected_at_ms is not None:
            by_type.setdefault(s.incident_type, []).append(s)
    out = []
    win = rule.window_s * 1000
    for t, items in sorted(by_type.items()):
        items.sort(key=lambda s: s.detected_at_ms)
        best: list[Any] | None = None
        for i in range(len(items)):
            group = [x for x in items[: i + 1] if items[i].detected_at_ms - x.detected_at_ms <= win]
            if len(group) >= rule.repeats:
                best = group
        if best is not None:
            out.append(RepeatAlert(rule.name, t, [{"incident_id": x.incident_id, "detected_at": iso_utc(x.detected_at_ms), "severity": x.severity, "service": x.service, "status": x.status} for x in best], rule.window_s))
    return out
