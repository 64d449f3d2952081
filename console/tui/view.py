"""What the console shows, read from the engine in one pass under its lock.

:func:`read_view` runs in a worker thread four times a second. It copies what the screen needs
(plain dataclasses, no engine objects) so widgets never touch the engine while it steps.
Health levels come from the policy data: a service is on ``alert`` when an open incident touches
it, ``warn`` when one of its runbooks' detection conditions holds right now (not yet sustained),
when an advisory is open on it, or when it fails health checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from engine.detect.rules import compare
from engine.incident import SEV_RANK, Incident

SPARK_SAMPLES = 120  # history samples (ticks) copied per service and queue; sparklines bucket them
ACTION_EVENT_KINDS = ("mitigation.applied", "mitigation.planned", "mitigation.refused", "mitigation.failed")


@dataclass
class ServiceRow:
    name: str
    kind: str
    critical: bool
    rps: float
    error_pct: float
    p99_ms: float
    healthy: bool
    replicas: int
    level: str  # alert | warn | ok
    severity: str | None  # most severe open incident touching it
    rps_hist: list[float]
    err_hist: list[float]
    p99_hist: list[float]
    order: int


@dataclass
class QueueRow:
    tenant: str
    consumer: str
    depth: float
    lag_p99_s: float
    concurrency: int
    limit: int
    depth_hist: list[float]
    level: str


@dataclass
class BreakerRow:
    name: str
    state: str  # CLOSED | HALF_OPEN | OPEN
    override: bool


@dataclass
class RegionRow:
    name: str
    role: str
    up: bool
    serving: bool
    weight_pct: float
    failed_checks: int
    passed_checks: int
    replication_lag_ms: float


@dataclass
class IncidentRow:
    id: str
    type: str
    title: str
    severity: str
    max_severity: str
    entity: str
    service: str
    state: str
    open: bool
    detected_at_ms: int
    age_ms: int
    ack_text: str
    ack_level: str  # auto | waiting | late | done | closed
    acknowledged_by: str | None
    escalated: bool


@dataclass
class StepRow:
    step_id: str
    title: str
    status: str
    runs: int
    detail: str
    before: dict[str, int]
    after: dict[str, int]


@dataclass
class CriterionRow:
    signal: str
    op: str
    value: float
    current: float
    holds: bool


@dataclass
class EventRow:
    seq: int
    at_ms: int
    kind: str
    actor: str
    summary: str
    severity: str


@dataclass
class IncidentDetail:
    row: IncidentRow
    rule: str
    runbook: str
    runbook_title: str
    mttr_target_s: int
    region: str
    first_anomaly_ms: int
    time_to_detect_ms: int
    first_action_at_ms: int | None
    escalated_at_ms: int | None
    escalation_reason: str | None
    acknowledged_at_ms: int | None
    resolved_at_ms: int | None
    mttr_ms: int | None
    ack_within_s: int
    steps: list[StepRow]
    criteria: list[CriterionRow]
    hold_s: int
    held_ms: int | None
    key_signals: tuple[str, ...]
    affected: list[str]
    manual: dict[str, list[str]]
    events: list[EventRow]
    signals: dict[str, float]


@dataclass
class SessionMetrics:
    incidents: int = 0
    open: int = 0
    resolved: int = 0
    escalated: int = 0
    escalated_open: int = 0
    auto_resolved: int = 0
    ttd_ms: float | None = None
    ttm_ms: float | None = None
    mttr_ms: float | None = None

    @property
    def decided(self) -> int:
        """Incidents whose outcome is known: resolved, or open but handed to a human."""
        return self.resolved + self.escalated_open

    @property
    def auto_rate(self) -> float | None:
        return None if self.decided == 0 else self.auto_resolved / self.decided


@dataclass
class ConsoleView:
    now_ms: int
    started_ms: int
    fleet_name: str
    services: list[ServiceRow]
    queues: list[QueueRow]
    breakers: list[BreakerRow]
    regions: list[RegionRow]
    serving_region: str
    dns_moving: bool
    incidents: list[IncidentRow]
    detail: IncidentDetail | None
    metrics: SessionMetrics
    kill_switch: bool
    dry_run: bool
    faults: list[dict[str, Any]]
    advisories: int
    speed: float
    paused: bool
    mode: str
    title: str
    script: tuple[int, int] | None
    crash: str | None
    notices: list[dict[str, Any]] = field(default_factory=list)
    spark_floor: dict[str, float] = field(default_factory=dict)


def _tail(dq: Any, n: int) -> list[Any]:
    """The last ``n`` items of a deque without copying all of it."""
    k = len(dq)
    return list(islice(dq, max(0, k - n), k))


def ack_state(inc: Incident, now_ms: int, ack_within_s: int) -> tuple[str, str]:
    """The acknowledgement column: automation at work, a countdown to the SLA, late, or who took it.

    The SLA clock starts at the escalation (when a human is paged)."""
    if inc.acknowledged_at_ms is not None:
        return "✓ " + (inc.acknowledged_by or "?"), "done"
    if not inc.open:
        return "—", "closed"
    paged = inc.escalated_at_ms if inc.escalated_at_ms is not None else inc.notes.get("paged_at_ms")  # training pages at detection
    if paged is None:
        return "auto", "auto"
    left = paged + ack_within_s * 1000 - now_ms
    from console.tui.text import countdown

    if left >= 0:
        return countdown(left), "waiting"
    return "late " + countdown(-left), "late"


def incident_row(inc: Incident, now_ms: int, ack_within_s: int) -> IncidentRow:
    text, level = ack_state(inc, now_ms, ack_within_s)
    end = now_ms if inc.open else (inc.resolved_at_ms or now_ms)
    return IncidentRow(
        id=inc.id,
        type=inc.type,
        title=inc.title,
        severity=inc.severity,
        max_severity=inc.max_severity,
        entity=inc.entity,
        service=inc.service,
        state=inc.state,
        open=inc.open,
        detected_at_ms=inc.detected_at_ms,
        age_ms=end - inc.detected_at_ms,
        ack_text=text,
        ack_level=level,
        acknowledged_by=inc.acknowledged_by,
        escalated=inc.escalated,
    )


def incident_order(row: IncidentRow) -> tuple[int, int, int]:
    """Open first, most severe first, newest first; then resolved, newest first."""
    return (0 if row.open else 1, SEV_RANK.get(row.severity, 9) if row.open else 0, -row.detected_at_ms)


def _detail(engine: Any, inc: Incident, row: IncidentRow) -> IncidentDetail:
    pol = engine.policy
    rb = pol.runbooks[inc.type]
    try:
        sig = dict(engine.signals(inc.entity_kind, inc.entity))
    except (KeyError, ValueError):
        sig = {}
    criteria = [CriterionRow(c.signal, c.op, c.value, float(sig.get(c.signal, 0.0)), bool(sig) and compare(sig.get(c.signal, 0.0), c.op, c.value)) for c in rb.recovery.all]
    held = None
    if inc.recovery_window_start_ms is not None:
        held = (inc.resolved_at_ms or engine.now_ms) - inc.recovery_window_start_ms
    elif inc.recovered_at_ms is not None and inc.resolved_at_ms is not None:
        held = inc.resolved_at_ms - inc.recovered_at_ms
    key = tuple(dict.fromkeys(c.signal for c in rb.recovery.all))[:3]
    return IncidentDetail(
        row=row,
        rule=inc.rule,
        runbook=f"{inc.runbook_id}@{inc.runbook_version}",
        runbook_title=rb.runbook.title,
        mttr_target_s=rb.runbook.mttr_target_s,
        region=inc.region,
        first_anomaly_ms=inc.first_anomaly_ms,
        time_to_detect_ms=inc.time_to_detect_ms,
        first_action_at_ms=inc.first_action_at_ms,
        escalated_at_ms=inc.escalated_at_ms,
        escalation_reason=inc.escalation_reason,
        acknowledged_at_ms=inc.acknowledged_at_ms,
        resolved_at_ms=inc.resolved_at_ms,
        mttr_ms=inc.mttr_ms,
        ack_within_s=pol.severity.levels[inc.severity].ack_within_s,
        steps=[StepRow(s.step_id, s.title, s.status, s.runs, s.detail, dict(s.before), dict(s.after)) for s in inc.steps],
        criteria=criteria,
        hold_s=rb.recovery.hold_s,
        held_ms=held,
        key_signals=key,
        affected=sorted(inc.affected),
        manual={"diagnose": list(rb.manual.diagnose), "mitigate": list(rb.manual.mitigate), "rollback": list(rb.manual.rollback)},
        events=[EventRow(e.seq, e.observed_at_ms, e.kind, e.actor, e.summary, e.severity) for e in inc.events],
        signals=sig,
    )


def _service_rules(policy: Any) -> list[tuple[str, str, float]]:
    rules = []
    for rb in policy.runbooks.values():
        if rb.runbook.entity == "service":
            for r in rb.detection:
                if r.baseline_below is None:
                    rules.append((r.signal, r.op, r.threshold))
    return rules


def alert_floors(policy: Any) -> dict[str, float]:
    """Per signal, the lowest ``>`` detection threshold of any runbook: sparklines use it as their
    scale's floor, so a bar is full only near where an incident would open."""
    out: dict[str, float] = {}
    for rb in policy.runbooks.values():
        for r in rb.detection:
            if r.op in (">", ">=") and r.baseline_below is None:
                out[r.signal] = min(out.get(r.signal, r.threshold), r.threshold)
    return out


def read_view(session: Any, selected_id: str | None = None, spark_samples: int = SPARK_SAMPLES) -> ConsoleView:
    """Copy everything the main screen shows, under the engine's lock."""
    engine = session.engine
    pol = engine.policy
    levels = pol.severity.levels
    rules = _service_rules(pol)
    with engine.lock:
        f = engine.fleet
        now = engine.now_ms
        incidents = list(engine.incidents.values())
        touched: dict[str, str] = {}
        for inc in incidents:
            if not inc.open:
                continue
            for name in (inc.service, *inc.affected):
                cur = touched.get(name)
                if cur is None or SEV_RANK[inc.severity] < SEV_RANK[cur]:
                    touched[name] = inc.severity
        advised = {name for (_, name) in engine.advisories}
        services = []
        for i, (name, s) in enumerate(f.services.items()):
            sig = engine.signals("service", name)
            hist = _tail(engine.history[name], spark_samples)
            sev = touched.get(name)
            healthy = sig.get("healthy", 1.0) >= 1.0
            if sev is not None:
                level = "alert"
            elif not healthy or name in advised or any(compare(sig.get(sg, 0.0), op, th) for sg, op, th in rules):
                level = "warn"
            else:
                level = "ok"
            services.append(
                ServiceRow(
                    name=name,
                    kind=s.kind,
                    critical=s.critical,
                    rps=sig["rps"],
                    error_pct=sig["error_pct"],
                    p99_ms=sig["p99_ms"],
                    healthy=healthy,
                    replicas=int(sig.get("replicas", s.replicas)),
                    level=level,
                    severity=sev,
                    rps_hist=[h[1] for h in hist],
                    err_hist=[h[2] for h in hist],
                    p99_hist=[h[3] for h in hist],
                    order=i,
                )
            )
        queue_touched = {inc.entity for inc in incidents if inc.open and inc.entity_kind == "queue"}
        queues = []
        scaler_depth = pol.mitigation.scaler.pre_incident_depth
        for name, q in f.queues.items():
            qs = engine.signals("queue", name)
            level = "alert" if name in queue_touched else ("warn" if qs["depth"] > scaler_depth else "ok")
            queues.append(QueueRow(name, q.consumer, qs["depth"], qs["lag_p99_s"], q.concurrency, q.limit, [h[1] for h in _tail(engine.queue_history[name], spark_samples)], level))
        from engine.mitigate.breaker import STATE_NAMES

        breakers = [BreakerRow(n, STATE_NAMES[b.state], b.override_state is not None) for n, b in f.breakers.items()]
        regions = [
            RegionRow(
                name=n,
                role=r.role,
                up=r.up,
                serving=n == f.serving,
                weight_pct=float(f.dns.weights.get(n, 0.0)),
                failed_checks=r.consecutive_failed,
                passed_checks=r.consecutive_passed,
                replication_lag_ms=float(r.replication_lag_ms),
            )
            for n, r in f.regions.items()
        ]
        rows = [incident_row(inc, now, levels[inc.severity].ack_within_s) for inc in incidents]
        rows.sort(key=incident_order)
        detail = None
        if selected_id is not None and selected_id in engine.incidents:
            inc = engine.incidents[selected_id]
            detail = _detail(engine, inc, next(r for r in rows if r.id == selected_id))
        metrics = session_metrics(incidents)
        gov = engine.governor
        faults = [x.to_dict() for x in f.active_faults(now)]
        advisories = len(engine.advisories)
        dns_moving = f.dns.moving
        serving = f.serving
        started = engine.started_ms
    return ConsoleView(
        now_ms=now,
        started_ms=started,
        fleet_name=pol.fleet.fleet.name,
        services=services,
        queues=queues,
        breakers=breakers,
        regions=regions,
        serving_region=serving,
        dns_moving=dns_moving,
        incidents=rows,
        detail=detail,
        metrics=metrics,
        kill_switch=gov.kill_switch,
        dry_run=gov.dry_run,
        faults=faults,
        advisories=advisories,
        speed=session.speed,
        paused=session.paused,
        mode=session.mode,
        title=session.title,
        script=session.script_progress(),
        crash=session.crash_text,
        notices=session.drain_notices(),
        spark_floor=alert_floors(pol),
    )


def session_metrics(incidents: list[Incident]) -> SessionMetrics:
    """Time to detect, time to mitigate, MTTR (means) and the auto-resolution rate of the session.

    The rate counts incidents whose outcome is known: resolved (with or without a human) or
    handed to a human (escalated). Open incidents still under automation are not counted yet."""
    m = SessionMetrics(incidents=len(incidents))
    ttd, ttm, mttr = [], [], []
    for inc in incidents:
        ttd.append(inc.time_to_detect_ms)
        if inc.time_to_mitigation_ms is not None:
            ttm.append(inc.time_to_mitigation_ms)
        if inc.mttr_ms is not None:
            mttr.append(inc.mttr_ms)
        if inc.open:
            m.open += 1
            if inc.escalated:
                m.escalated_open += 1
        else:
            m.resolved += 1
        if inc.escalated:
            m.escalated += 1
        if inc.auto_resolved:
            m.auto_resolved += 1
    m.ttd_ms = sum(ttd) / len(ttd) if ttd else None
    m.ttm_ms = sum(ttm) / len(ttm) if ttm else None
    m.mttr_ms = sum(mttr) / len(mttr) if mttr else None
    return m


def incident_events(session: Any, incident_id: str) -> tuple[IncidentRow, list[EventRow]] | None:
    """One incident's event log (for the timeline screen), copied under the lock."""
    engine = session.engine
    with engine.lock:
        inc = engine.incidents.get(incident_id)
        if inc is None:
            return None
        row = incident_row(inc, engine.now_ms, engine.policy.severity.levels[inc.severity].ack_within_s)
        return row, [EventRow(e.seq, e.observed_at_ms, e.kind, e.actor, e.summary, e.severity) for e in inc.events]
