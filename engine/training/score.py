"""Scoring a trainee session against the scenario's rubric.

Criteria (weights from the scenario's ``[training.weights]``, scaled to 100 over those that apply):

- ``acknowledge``: acknowledged within the severity's SLA (severity.toml ``ack_within_s``), counted
  from the page (the detection).
- ``severity``: the trainee's last classification equals the expected severity.
- ``runbook``: the trainee's last runbook choice equals the expected runbook.
- ``mttr``: resolved within the runbook's ``mttr_target_s`` (full marks), falling linearly to
  nothing at ``mttr_zero_factor`` times the target; only when the trainee can fix it.
- ``escalation``: escalated by the trainee within ``escalate_within_s`` of the page when the
  scenario says so; an escalation the runbook makes unnecessary (before its MTTR target passed)
  earns nothing.
- ``actions``: the share of the reference path's required actions the trainee took.
- ``safety``: no action the scenario or the training settings mark unsafe, none the safety
  governor refused.
- ``automation``: in a scenario where automation must be stopped, the kill switch or dry-run was on
  before the automation applied ``stop_automation_before``.

Per-incident criteria split their weight between the expected incidents. Hints cost their points.
A scenario passes at ``pass_pct`` with no critical failure: a missing or late acknowledgement, a
wrong severity or runbook, a missed or late escalation, an unsafe action, automation not stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import events as ev
from engine.drill.scenario import ExpectedResponse, TraineeStep
from engine.incident import RESOLVED, Incident
from engine.training.session import TraineeSession

LABELS = {
    "acknowledge": "Acknowledged within the SLA",
    "severity": "Severity",
    "runbook": "Runbook",
    "mttr": "MTTR vs the runbook's target",
    "escalation": "Escalation",
    "actions": "Reference actions taken",
    "safety": "No unsafe action",
    "automation": "Automation stopped in time",
}


@dataclass
class Criterion:
    """One line of the score: its weight, what was earned, and why."""

    key: str
    incident: str | None
    weight: float
    earned: float
    ok: bool
    critical: bool  # failing it fails the scenario whatever the points
    detail: str

    @property
    def label(self) -> str:
        return LABELS.get(self.key, self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "incident": self.incident,
            "weight": round(self.weight, 2),
            "earned": round(self.earned, 2),
            "ok": self.ok,
            "critical": self.critical,
            "detail": self.detail,
        }


@dataclass
class ScoreReport:
    """The end of a training scenario: the score, what was right and wrong, and the reference path."""

    scenario: str
    title: str
    trainee: str
    seed: int
    score_pct: float
    pass_pct: int
    passed: bool
    criteria: list[Criterion]
    failures: list[str]
    hints_used: int
    hint_penalty: int
    timeline: list[dict[str, Any]]
    reference: list[str]
    debrief: str
    incidents: list[dict[str, Any]]
    unapplied: list[str] = field(default_factory=list)
    simulated_s: float = 0.0

    @property
    def right(self) -> list[Criterion]:
        return [c for c in self.criteria if c.ok]

    @property
    def wrong(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "trainee": self.trainee,
            "seed": self.seed,
            "score_pct": self.score_pct,
            "pass_pct": self.pass_pct,
            "passed": self.passed,
            "failures": self.failures,
            "criteria": [c.to_dict() for c in self.criteria],
            "hints_used": self.hints_used,
            "hint_penalty": self.hint_penalty,
            "timeline": self.timeline,
            "reference": self.reference,
            "debrief": self.debrief,
            "incidents": self.incidents,
            "unapplied": self.unapplied,
            "simulated_s": self.simulated_s,
        }


def step_text(st: TraineeStep) -> str:
    """A reference step as a person reads it."""
    when = f"at +{st.at_s:g} s" if st.at_s is not None else f"{st.after_page_s:g} s after the page"
    on = f" ({st.incident})" if st.incident else ""
    if st.do == "acknowledge":
        what = "acknowledge"
    elif st.do == "classify":
        what = f"classify {st.severity}"
    elif st.do == "runbook":
        what = f"follow runbook {st.runbook}"
    elif st.do == "action":
        params = ", ".join(f"{k}={v}" for k, v in st.params.items())
        what = f"{st.action} on {st.target}" + (f" ({params})" if params else "")
    elif st.do == "escalate":
        what = "escalate" + (f": {st.reason}" if st.reason else "")
    elif st.do in ("kill_switch", "dry_run"):
        what = f"{st.do.replace('_', ' ')} {'on' if st.on else 'off'}" + (f": {st.reason}" if st.reason else "")
    elif st.do == "hint":
        what = "ask for a hint"
    else:
        what = f"note {st.text!r}"
    return f"{when}: {what}{on}"


def _s(ms: int) -> str:
    return f"{ms / 1000:.0f} s"


def _last(choices: dict[str, list[tuple[int, str]]], inc: Incident) -> str | None:
    got = choices.get(inc.id)
    return got[-1][1] if got else None


def _escalation_event(inc: Incident) -> ev.IncidentEvent | None:
    return next((e for e in inc.events if e.kind == ev.ESCALATED), None)


def _per_incident(s: TraineeSession, r: ExpectedResponse, inc: Incident | None, share: float) -> list[Criterion]:
    w = s.spec.weights
    ref = r.ref
    out: list[Criterion] = []
    if inc is None:
        for key in ("acknowledge", "severity", "runbook", "mttr" if r.resolve else "", "escalation"):
            if key:
                out.append(Criterion(key, ref, getattr(w, key) * share, 0.0, False, key != "mttr", f"{ref} was never detected, so it could not be handled"))
        return out
    page = inc.detected_at_ms
    # acknowledge
    sla_s = r.ack_within_s or s.policy.severity.levels[r.severity].ack_within_s
    if inc.acknowledged_at_ms is None or inc.acknowledged_by != s.trainee:
        out.append(Criterion("acknowledge", ref, w.acknowledge * share, 0.0, False, True, f"never acknowledged ({r.severity} SLA {sla_s} s)"))
    else:
        t = inc.acknowledged_at_ms - page
        if t <= sla_s * 1000:
            out.append(Criterion("acknowledge", ref, w.acknowledge * share, w.acknowledge * share, True, True, f"acknowledged {_s(t)} after the page ({r.severity} SLA {sla_s} s)"))
        else:
            out.append(Criterion("acknowledge", ref, w.acknowledge * share, 0.0, False, True, f"late acknowledgement: {_s(t)} after the page, the {r.severity} SLA is {sla_s} s"))
    # severity
    sev = _last(s.classified, inc)
    if sev is None:
        out.append(Criterion("severity", ref, w.severity * share, 0.0, False, True, f"never classified (expected {r.severity})"))
    elif sev != r.severity:
        out.append(Criterion("severity", ref, w.severity * share, 0.0, False, True, f"wrong severity: classified {sev}, expected {r.severity}"))
    else:
        out.append(Criterion("severity", ref, w.severity * share, w.severity * share, True, True, f"classified {sev}"))
    # runbook
    rb = _last(s.runbook_choice, inc)
    want = r.expected_runbook
    if rb is None:
        out.append(Criterion("runbook", ref, w.runbook * share, 0.0, False, True, f"no runbook chosen (expected {want})"))
    elif rb != want:
        out.append(Criterion("runbook", ref, w.runbook * share, 0.0, False, True, f"wrong runbook: chose {rb}, expected {want}"))
    else:
        out.append(Criterion("runbook", ref, w.runbook * share, w.runbook * share, True, True, f"runbook {rb}"))
    # mttr
    target_s = s.policy.runbooks[inc.type].runbook.mttr_target_s
    if r.resolve:
        if inc.recovered_at_ms is None:
            when = "by the end of the scenario" if s.over else f"when the scenario was finished at +{s.offset_s:.0f} s"
            out.append(Criterion("mttr", ref, w.mttr * share, 0.0, False, False, f"not resolved {when} (target {target_s} s)"))
        else:
            mttr = inc.recovered_at_ms - page
            zero = target_s * s.spec.mttr_zero_factor * 1000
            if mttr <= target_s * 1000:
                frac = 1.0
            else:
                frac = max(0.0, 1.0 - (mttr - target_s * 1000) / (zero - target_s * 1000))
            ok = mttr <= target_s * 1000
            out.append(Criterion("mttr", ref, w.mttr * share, w.mttr * share * frac, ok, False, f"MTTR {_s(mttr)} against the {target_s} s target" + ("" if ok else f" ({frac * 100:.0f} % of the points)")))
    # escalation
    e = _escalation_event(inc)
    by_trainee = e is not None and e.actor == f"person:{s.trainee}"
    via = ""
    if e is not None and not by_trainee and s.kill_switch_on_ms is not None and s.kill_switch_on_ms <= e.recorded_at_ms:
        # The engine pages humans for every incident opened while the kill switch is on: the
        # trainee's kill switch made that escalation.
        by_trainee = "kill switch" in str(e.data.get("reason", ""))
        via = " (the kill switch you turned on paged the ladder)" if by_trainee else ""
    if r.escalate:
        deadline = (r.escalate_within_s or 0) * 1000
        if e is None:
            out.append(Criterion("escalation", ref, w.escalation * share, 0.0, False, True, f"missed escalation: it needed a human beyond the on-call within {r.escalate_within_s} s of the page"))
        elif not by_trainee:
            at = (inc.escalated_at_ms or page) - page
            out.append(Criterion("escalation", ref, w.escalation * share, 0.0, False, True, f"missed escalation: the engine escalated on its own {_s(at)} after the page ({inc.escalation_reason})"))
        elif (inc.escalated_at_ms or 0) - page > deadline:
            out.append(Criterion("escalation", ref, w.escalation * share, 0.0, False, True, f"late escalation: {_s((inc.escalated_at_ms or 0) - page)} after the page, the deadline is {r.escalate_within_s} s"))
        else:
            out.append(Criterion("escalation", ref, w.escalation * share, w.escalation * share, True, True, f"escalated {_s((inc.escalated_at_ms or 0) - page)} after the page (deadline {r.escalate_within_s} s){via}"))
    else:
        early = by_trainee and (inc.escalated_at_ms or 0) - page < target_s * 1000 and (inc.recovered_at_ms is None or (inc.escalated_at_ms or 0) < inc.recovered_at_ms)
        if early:
            out.append(Criterion("escalation", ref, w.escalation * share, 0.0, False, False, f"unnecessary escalation {_s((inc.escalated_at_ms or 0) - page)} after the page: the runbook fixes this within its {target_s} s target"))
        else:
            out.append(Criterion("escalation", ref, w.escalation * share, w.escalation * share, True, False, "no escalation needed" + (" (escalated after the MTTR target passed, as the decision tree allows)" if by_trainee else "")))
    return out


def _automation(s: TraineeSession) -> Criterion | None:
    name = s.spec.stop_automation_before
    if name is None:
        return None
    w = s.spec.weights.automation
    applied_at: int | None = None
    for inc in s.engine.incidents.values():
        for e in inc.events:
            if e.kind == ev.MITIGATION_APPLIED and e.data.get("action") == name and e.actor.startswith("runbook:"):
                applied_at = e.recorded_at_ms if applied_at is None else min(applied_at, e.recorded_at_ms)
    stops = [t for t in (s.kill_switch_on_ms, s.dry_run_on_ms) if t is not None]
    if applied_at is not None:
        return Criterion("automation", None, w, 0.0, False, True, f"automation applied {name} at +{(applied_at - s.t0) / 1000:.0f} s: it should have been stopped (kill switch or dry-run) before")
    if not stops:
        return Criterion("automation", None, w, 0.0, False, True, f"automation was never stopped; it would have applied {name}")
    how = "kill switch" if s.kill_switch_on_ms is not None and s.kill_switch_on_ms == min(stops) else "dry-run"
    return Criterion("automation", None, w, w, True, True, f"automation stopped ({how} at +{(min(stops) - s.t0) / 1000:.0f} s) before it could apply {name}")


def _actions(s: TraineeSession) -> Criterion | None:
    want = [(st.action, st.target) for st in s.spec.reference if st.do == "action" and st.required]
    if not want:
        return None
    uniq = list(dict.fromkeys(want))
    done = {(r.args.get("action"), r.args.get("target")) for r in s.records if r.do == "action" and r.reached}
    missing = [f"{a} on {t}" for a, t in uniq if (a, t) not in done]
    frac = (len(uniq) - len(missing)) / len(uniq)
    w = s.spec.weights.actions
    detail = f"took {len(uniq) - len(missing)} of {len(uniq)} reference actions" + (f"; missed {', '.join(missing)}" if missing else "")
    return Criterion("actions", None, w, w * frac, not missing, False, detail)


def _safety(s: TraineeSession) -> Criterion:
    w = s.spec.weights.safety
    bad = [r for r in s.records if r.unsafe]
    if not bad:
        return Criterion("safety", None, w, w, True, True, "no unsafe action")
    r = bad[0]
    what = f"{r.args.get('action')} on {r.args.get('target')} at +{r.offset_s:.0f} s"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return Criterion("safety", None, w, 0.0, False, True, f"unsafe action: {what}: {r.unsafe}{more}")


def _incident_summary(s: TraineeSession, inc: Incident) -> dict[str, Any]:
    t0 = s.t0
    return {
        "incident": f"{inc.type}@{inc.entity}",
        "id": inc.id,
        "severity": inc.max_severity,
        "state": inc.state,
        "detected_s": (inc.detected_at_ms - t0) / 1000,
        "acknowledged_s": None if inc.acknowledged_at_ms is None else (inc.acknowledged_at_ms - t0) / 1000,
        "escalated_s": None if inc.escalated_at_ms is None else (inc.escalated_at_ms - t0) / 1000,
        "escalated_by": (lambda e: e.actor if e else None)(_escalation_event(inc)),
        "mttr_s": None if inc.mttr_ms is None else inc.mttr_ms / 1000,
        "resolved": inc.state == RESOLVED,
    }


def score(session: TraineeSession, *, unapplied: list[str] | None = None) -> ScoreReport:
    """Score a session (it may still be running: the score is of what happened so far)."""
    s = session
    spec = s.spec
    share = 1.0 / len(spec.incidents)
    criteria: list[Criterion] = []
    with s.engine.lock:
        for r in spec.incidents:
            criteria += _per_incident(s, r, s.first(r.ref), share)
        for c in (_actions(s), _safety(s), _automation(s)):
            if c is not None:
                criteria.append(c)
        incidents = [_incident_summary(s, i) for i in sorted(s.engine.incidents.values(), key=lambda i: i.detected_at_ms)]
    total = sum(c.weight for c in criteria)
    earned = sum(c.earned for c in criteria)
    penalty = sum(spec.hints[i].cost for i in s.hints_used)
    pct = max(0.0, round(100.0 * earned / total - penalty, 1)) if total > 0 else 0.0
    failures = [c.detail for c in criteria if c.critical and not c.ok]
    if pct < spec.pass_pct:
        failures.append(f"score {pct:g} % is below the pass mark of {spec.pass_pct} %")
    return ScoreReport(
        scenario=s.scenario.name,
        title=s.scenario.scenario.title,
        trainee=s.trainee,
        seed=s.seed,
        score_pct=pct,
        pass_pct=spec.pass_pct,
        passed=not failures,
        criteria=criteria,
        failures=failures,
        hints_used=len(s.hints_used),
        hint_penalty=penalty,
        timeline=[r.to_dict() for r in s.records],
        reference=[step_text(st) for st in spec.reference],
        debrief=spec.debrief,
        incidents=incidents,
        unapplied=list(unapplied or []),
        simulated_s=(s.engine.now_ms - s.t0) / 1000,
    )
