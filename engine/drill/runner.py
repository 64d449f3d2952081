"""Run a scenario headless on a virtual clock and judge the result against its expectations."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.clock import VirtualClock
from engine.core import Engine, SeededIds
from engine.drill.scenario import Scenario
from engine.incident import SEV_RANK, Incident
from engine.policy.bundle import Policy, load_policy


@dataclass
class IncidentResult:
    """One incident as the drill saw it."""

    id: str
    type: str
    entity: str
    severity: str
    max_severity: str
    state: str
    auto_resolved: bool
    escalated: bool
    escalation_reason: str | None
    detect_after_fault_s: float | None
    time_to_detect_s: float
    time_to_mitigation_s: float | None
    mttr_s: float | None
    mttr_target_s: int
    met_target: bool


@dataclass
class DrillResult:
    """A scenario's verdict: passed, with the reasons it failed otherwise."""

    scenario: str
    seed: int
    expected_outcome: str
    expected: list[dict[str, Any]]
    incidents: list[IncidentResult]
    passed: bool
    reasons: list[str] = field(default_factory=list)
    simulated_s: float = 0.0
    wall_s: float = 0.0

    @property
    def fixable(self) -> bool:
        return self.expected_outcome == "auto_resolved"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "expected_outcome": self.expected_outcome,
            "expected": self.expected,
            "passed": self.passed,
            "reasons": self.reasons,
            "simulated_s": self.simulated_s,
            "wall_s": round(self.wall_s, 4),
            "incidents": [vars(i) for i in self.incidents],
        }


def start_engine(
    sc: Scenario, seed: int, policy: Policy | None = None, *, on_tick: Callable[[Engine], None] | None = None, **engine_kwargs: Any
) -> tuple[Engine, Callable[[], None]]:
    """An engine with the scenario's warm-up done and a function that plays its faults in time.

    ``on_tick`` (if given) is called after each warm-up tick, so recorders see the baseline too.
    """
    policy = policy or load_policy()
    clock = VirtualClock()
    engine_kwargs.setdefault("ids", SeededIds(seed))
    engine = Engine(policy, clock=clock, seed=seed, **engine_kwargs)
    if on_tick is None:
        engine.run_for(sc.scenario.warmup_s * 1000)
    else:
        end = engine.now_ms + sc.scenario.warmup_s * 1000
        while engine.now_ms < end:
            clock.sleep_until(engine.now_ms + engine.tick_ms)
            engine.step()
            on_tick(engine)
    t0 = engine.now_ms
    pending = sorted(sc.faults, key=lambda f: f.at_s)
    engine.scratch["scenario_t0_ms"] = t0

    def play_due() -> None:
        while pending and engine.now_ms >= t0 + int(pending[0].at_s * 1000):
            f = pending.pop(0)
            engine.inject(f.kind, f.target, params=f.params, duration_s=f.duration_s, actor=f"scenario:{sc.name}")

    return engine, play_due


def run_scenario(sc: Scenario, seed: int = 1, policy: Policy | None = None, **engine_kwargs: Any) -> tuple[DrillResult, Engine]:
    """Play the scenario to its end and judge it."""
    wall = time.perf_counter()
    engine, play_due = start_engine(sc, seed, policy, **engine_kwargs)
    t0 = engine.now_ms
    end = t0 + sc.scenario.run_s * 1000
    play_due()
    while engine.now_ms < end:
        engine.clock.sleep_until(engine.now_ms + engine.tick_ms)  # type: ignore[attr-defined]
        engine.step()
        play_due()
    result = judge(sc, engine, seed, t0)
    result.simulated_s = (engine.now_ms - engine.started_ms) / 1000
    result.wall_s = time.perf_counter() - wall
    return result, engine


def _incident_result(engine: Engine, inc: Incident, t0: int) -> IncidentResult:
    target = engine.policy.runbooks[inc.type].runbook.mttr_target_s
    mttr = inc.mttr_ms
    return IncidentResult(
        id=inc.id,
        type=inc.type,
        entity=inc.entity,
        severity=inc.severity,
        max_severity=inc.max_severity,
        state=inc.state,
        auto_resolved=inc.auto_resolved,
        escalated=inc.escalated,
        escalation_reason=inc.escalation_reason,
        detect_after_fault_s=(inc.detected_at_ms - t0) / 1000,
        time_to_detect_s=inc.time_to_detect_ms / 1000,
        time_to_mitigation_s=None if inc.time_to_mitigation_ms is None else inc.time_to_mitigation_ms / 1000,
        mttr_s=None if mttr is None else mttr / 1000,
        mttr_target_s=target,
        met_target=mttr is not None and mttr <= target * 1000,
    )


def judge(sc: Scenario, engine: Engine, seed: int, t0: int) -> DrillResult:
    incs = sorted(engine.incidents.values(), key=lambda i: i.detected_at_ms)
    results = [_incident_result(engine, i, t0) for i in incs]
    exp = sc.expect
    reasons: list[str] = []
    matched: set[str] = set()
    for want in exp.incidents:
        cands = [r for r in results if r.type == want.type and r.id not in matched and (want.entity is None or r.entity == want.entity)]
        if not cands:
            got = ", ".join(f"{r.type}({r.entity})" for r in results) or "nothing"
            reasons.append(f"expected {want.type}{f' on {want.entity}' if want.entity else ''}, detected {got}")
            continue
        r = cands[0]
        matched.add(r.id)
        if r.max_severity != want.severity:
            reasons.append(f"{r.type} classified {r.max_severity}, expected {want.severity}")
        if exp.outcome == "auto_resolved":
            if r.escalated:
                reasons.append(f"{r.type} escalated ({r.escalation_reason}) instead of auto-resolving")
            elif r.state != "resolved":
                reasons.append(f"{r.type} did not resolve within the drill ({sc.scenario.run_s} s)")
            elif not r.met_target:
                reasons.append(f"{r.type} MTTR {r.mttr_s:.0f} s missed the runbook target {r.mttr_target_s} s")
        elif exp.outcome == "escalated":
            if not r.escalated:
                reasons.append(f"{r.type} was not escalated although automation cannot fix it")
    for r in results:
        if r.id not in matched:
            reasons.append(f"unexpected incident {r.type} on {r.entity} ({r.max_severity})")
    if exp.outcome == "no_incident" and results:
        pass  # already listed as unexpected
    return DrillResult(
        scenario=sc.name,
        seed=seed,
        expected_outcome=exp.outcome,
        expected=[w.model_dump() for w in exp.incidents],
        incidents=results,
        passed=not reasons,
        reasons=reasons,
    )


def auto_resolution_rate(results: list[DrillResult]) -> float | None:
    """Share of fixable scenarios' expected incidents that resolved without a human."""
    fixable = [r for r in results if r.fixable]
    if not fixable:
        return None
    ok = sum(1 for r in fixable if r.incidents and all(i.auto_resolved for i in r.incidents))
    return ok / len(fixable)


def severity_rank(sev: str) -> int:
    return SEV_RANK[sev]
