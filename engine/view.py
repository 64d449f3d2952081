"""What a face shows of a running engine, read in one pass under the engine's lock.

:func:`read_engine_view` copies everything a console screen needs (plain dataclasses, no engine
objects), so widgets never touch the engine while it steps. The same view travels over the
control socket (:func:`view_to_json` / :func:`view_from_json`, operation ``console.view``), so a
console attached to an engine in another process (``ggen console --attach``) draws exactly what
the console running the engine draws.

Health levels come from the policy data: a service is on ``alert`` when an open incident touches
it, ``stale`` when a real source stopped answering for it (its values are unknown, never shown
as healthy), ``warn`` when one of its runbooks' detection conditions holds right now (not yet
sustained), when an advisory is open on it, or when it fails health checks.

Also here, for the same reason (both kinds of console need them, and only the engine knows):
the fault menu, the likely target of a manual action, an incident's event log and facts, and a
cursor over the engine's notices (:class:`NoticeFeed`).
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any

import orjson

from engine.detect.rules import compare
from engine.incident import SEV_RANK, Incident

SPARK_SAMPLES = 120  # history samples (ticks) copied per service and queue; sparklines bucket them
NAN = float("nan")
UNKNOWN_STATE = "UNKNOWN"  # a breaker whose state no source gives freshly
REGION_HEALTH = ("healthy", "up", "consecutive_failed_checks")  # any one fresh: the region's health is known


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
    level: str  # alert | stale | warn | ok
    severity: str | None  # most severe open incident touching it
    rps_hist: tuple[float, ...]  # tuples of floats: the garbage collector stops tracking them at once
    err_hist: tuple[float, ...]
    p99_hist: tuple[float, ...]
    order: int
    stale: bool = False  # a real source has no fresh value for one of its signals


@dataclass
class QueueRow:
    tenant: str
    consumer: str
    depth: float
    lag_p99_s: float
    concurrency: int
    limit: int
    depth_hist: tuple[float, ...]
    level: str


@dataclass
class BreakerRow:
    name: str
    state: str  # CLOSED | HALF_OPEN | OPEN | UNKNOWN (a real source has no fresh state for it)
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
    known: bool = True  # False: a real source has no fresh health for it (shown as unknown)


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
    ack_from: str = "escalation"  # what starts the ack SLA clock: escalation | page (training)


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
    # Where the signals come from: "sim", or the real sources' kinds ("prometheus", ...), with
    # each source's status and the signals that are stale right now ("kind:entity" -> names).
    source: str = "sim"
    sources: list[dict[str, Any]] = field(default_factory=list)
    stale: dict[str, list[str]] = field(default_factory=dict)
    # Who is on call now and next (when a roster is configured) and failed deliveries.
    oncall: dict[str, Any] | None = None
    delivery_failures: int = 0
    last_delivery_failure: str | None = None

    @property
    def stale_signals(self) -> int:
        return sum(len(v) for v in self.stale.values())


def _tail(dq: Any, n: int) -> list[Any]:
    """The last ``n`` items of a deque without copying all of it."""
    k = len(dq)
    return list(islice(dq, max(0, k - n), k))


def countdown(ms: int) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a time left; callers say whether it is late."""
    s = max(0, int(ms // 1000))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def ack_clock(inc: Incident) -> tuple[int | None, str]:
    """When the acknowledgement SLA started, and what started it.

    A human is paged at the escalation; in training the trainee (the on-call) is paged at
    detection, and their own escalation later does not restart their clock."""
    paged = inc.notes.get("paged_at_ms")
    if isinstance(paged, int):
        return paged, "page"
    return inc.escalated_at_ms, "escalation"


def ack_state(inc: Incident, now_ms: int, ack_within_s: int) -> tuple[str, str]:
    """The acknowledgement column: automation at work, a countdown to the SLA, late, or who took it."""
    if inc.acknowledged_at_ms is not None:
        return "✓ " + (inc.acknowledged_by or "?"), "done"
    if not inc.open:
        return "—", "closed"
    paged, _ = ack_clock(inc)
    if paged is None:
        return "auto", "auto"
    left = paged + ack_within_s * 1000 - now_ms
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
        ack_from=ack_clock(inc)[1],
    )


def incident_order(row: IncidentRow) -> tuple[int, int, int]:
    """Open first, most severe first, newest first; then resolved, newest first."""
    return (0 if row.open else 1, SEV_RANK.get(row.severity, 9) if row.open else 0, -row.detected_at_ms)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _detail(engine: Any, inc: Incident, row: IncidentRow) -> IncidentDetail:
    pol = engine.policy
    rb = pol.runbooks[inc.type]
    try:
        sig = dict(engine.signals(inc.entity_kind, inc.entity))
    except (KeyError, ValueError):
        sig = {}
    criteria = []
    for c in rb.recovery.all:
        cur = sig.get(c.signal)
        known = _finite(cur)
        criteria.append(CriterionRow(c.signal, c.op, c.value, float(cur) if known else NAN, known and compare(cur, c.op, c.value)))
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


def source_of(fleet: Any) -> tuple[str, list[dict[str, Any]], dict[str, list[str]]]:
    """(source kinds, each source's status, stale signals by "kind:entity") of a fleet."""
    if not hasattr(fleet, "source_status"):
        return "sim", [], {}
    sources = fleet.source_status()
    kinds = ", ".join(dict.fromkeys(str(s.get("source", "?")) for s in sources)) or "observed"
    stale = {k: sorted(v) for k, v in getattr(fleet, "stale", {}).items() if v}
    return kinds, sources, stale


def read_engine_view(
    engine: Any,
    selected_id: str | None = None,
    spark_samples: int = SPARK_SAMPLES,
    *,
    speed: float = 1.0,
    paused: bool = False,
    mode: str = "live",
    title: str = "live",
    script: tuple[int, int] | None = None,
    crash: str | None = None,
    notices: list[dict[str, Any]] | None = None,
    extras: Any = None,
) -> ConsoleView:
    """Copy everything the main screen shows, under the engine's lock. ``extras`` (a
    :class:`ViewExtras`) adds who is on call and the failed deliveries."""
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
        isfinite = math.isfinite
        for i, (name, s) in enumerate(f.services.items()):
            sig = engine.signals("service", name)
            hist = _tail(engine.history[name], spark_samples)
            cols = tuple(zip(*hist)) if hist else ((), (), (), ())  # (t, rps, error %, p99) columns
            sev = touched.get(name)
            health = sig.get("healthy", 1.0)
            rps, err, p99 = sig["rps"], sig["error_pct"], sig["p99_ms"]
            stale = not (isfinite(rps) and isfinite(err) and isfinite(p99) and isfinite(health))
            healthy = isfinite(health) and health >= 1.0
            if sev is not None:
                level = "alert"
            elif stale:
                level = "stale"
            elif not healthy or name in advised or any(compare(sig.get(sg, 0.0), op, th) for sg, op, th in rules):
                level = "warn"
            else:
                level = "ok"
            replicas = sig.get("replicas", s.replicas)
            services.append(
                ServiceRow(
                    name=name,
                    kind=s.kind,
                    critical=s.critical,
                    rps=rps,
                    error_pct=err,
                    p99_ms=p99,
                    healthy=healthy,
                    replicas=int(replicas) if isfinite(replicas) else int(s.replicas),
                    level=level,
                    severity=sev,
                    rps_hist=cols[1],
                    err_hist=cols[2],
                    p99_hist=cols[3],
                    order=i,
                    stale=stale,
                )
            )
        queue_touched = {inc.entity for inc in incidents if inc.open and inc.entity_kind == "queue"}
        queues = []
        scaler_depth = pol.mitigation.scaler.pre_incident_depth
        for name, q in f.queues.items():
            qs = engine.signals("queue", name)
            depth = qs["depth"]
            if name in queue_touched:
                level = "alert"
            elif not isfinite(depth):
                level = "stale"
            else:
                level = "warn" if depth > scaler_depth else "ok"
            queues.append(QueueRow(name, q.consumer, depth, qs["lag_p99_s"], q.concurrency, q.limit, tuple([h[1] for h in _tail(engine.queue_history[name], spark_samples)]), level))
        from engine.mitigate.breaker import STATE_NAMES

        seen = getattr(f, "known", None)  # an observed fleet: is this signal fresh now?
        breakers = [
            BreakerRow(n, STATE_NAMES[b.state] if seen is None or seen("circuit", n, "state") else UNKNOWN_STATE, b.override_state is not None)
            for n, b in f.breakers.items()
        ]
        regions = [
            RegionRow(
                name=n,
                role=r.role,
                up=r.up,
                serving=n == f.serving,
                weight_pct=float(f.dns.weights.get(n, 0.0)) if seen is None or seen("region", n, "traffic_pct") else NAN,
                failed_checks=r.consecutive_failed,
                passed_checks=r.consecutive_passed,
                replication_lag_ms=float(r.replication_lag_ms),
                known=seen is None or any(seen("region", n, sg) for sg in REGION_HEALTH),
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
        source, sources, stale_map = source_of(f)
    view = ConsoleView(
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
        speed=speed,
        paused=paused,
        mode=mode,
        title=title,
        script=script,
        crash=crash,
        notices=notices or [],
        spark_floor=alert_floors(pol),
        source=source,
        sources=sources,
        stale=stale_map,
    )
    if extras is not None:
        extras.fill(view, now)
    return view


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


# ============================================================================ on call, deliveries
def roster_of(engine: Any) -> Any:
    """The engine's on-call roster when one is configured (an OnCallRoster), else None."""
    r = getattr(engine, "roster", None)
    r = getattr(r, "current", r)  # a RosterFileWatch holds the last good roster
    return r if hasattr(r, "segment_at") else None


def oncall_at(roster: Any, at_ms: int) -> dict[str, Any]:
    """Who holds primary and secondary now, until when, and who takes over next."""

    def name(pid: str) -> str:
        p = roster.people.get(pid)
        return p.name if p is not None else pid

    seg = roster.segment_at(at_ms)
    nxt = roster.segment_at(seg.shift_end_ms)
    return {
        "shift": seg.shift.name,
        "primary": name(seg.primary),
        "secondary": name(seg.secondary),
        "until_ms": seg.shift_end_ms,
        "next_shift": nxt.shift.name,
        "next_primary": name(nxt.primary),
        "next_secondary": name(nxt.secondary),
        "notes": list(seg.notes),
    }


class ViewExtras:
    """What a view adds from beside the engine: the on-call pair and the delivery failures of
    the delivery services among ``services`` (a live engine's)."""

    def __init__(self, engine: Any, services: Any = None) -> None:
        self.engine = engine
        self.services = services if services is not None else []

    def deliveries(self) -> list[Any]:
        return [s for s in list(self.services) if hasattr(s, "failures") and hasattr(s, "subscribe")]

    def oncall(self, now_ms: int) -> dict[str, Any] | None:
        roster = roster_of(self.engine)
        if roster is None:
            return None
        try:
            return oncall_at(roster, now_ms)
        except Exception as exc:  # a roster that cannot answer is shown, never fatal
            return {"error": f"{type(exc).__name__}: {exc}"}

    def failures(self) -> list[dict[str, Any]]:
        """Every delivery that failed for good, oldest first."""
        return sorted((f for svc in self.deliveries() for f in list(svc.failures)), key=lambda r: str(r.get("at", "")))

    def fill(self, view: ConsoleView, now_ms: int) -> None:
        view.oncall = self.oncall(now_ms)
        failures = self.failures()
        view.delivery_failures = len(failures)
        if failures:
            view.last_delivery_failure = delivery_text(failures[-1])

    def status(self, now_ms: int, last: int = 5) -> dict[str, Any]:
        """Who is on call and the latest failed deliveries, JSON-able (for the warroom screen)."""
        failures = self.failures()
        return {"oncall": self.oncall(now_ms), "delivery_failures": len(failures), "failures": [delivery_text(f) for f in failures[-last:]]}


def delivery_text(rec: dict[str, Any]) -> str:
    """One delivery record as a line: channel (type) -> recipient: outcome: error."""
    why = f": {rec['error']}" if rec.get("error") else ""
    return f"{rec.get('channel')} ({rec.get('type')}) -> {rec.get('recipient')}: {rec.get('outcome', '')}{why}"


def delivery_notice(rec: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A delivery record as a line of the notices feed."""
    return {"at_ms": now_ms, "kind": f"delivery.{rec.get('outcome', '')}", "text": delivery_text(rec)}


# ============================================================================ notices for attached faces
class NoticeFeed:
    """The engine's notices (and delivery records) numbered, so each attached console reads
    what is new to it with its own cursor (:meth:`since`)."""

    def __init__(self, engine: Any, *, keep: int = 2000, backlog: int = 200) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._items: deque[tuple[int, dict[str, Any]]] = deque(maxlen=keep)
        self._next = 0
        self._watched: set[int] = set()
        with engine.lock:
            for n in list(engine.notices)[-backlog:]:
                self._add(n)
            engine.on_notice(self._add)

    def _add(self, n: dict[str, Any]) -> None:
        clean = orjson.loads(orjson.dumps(n, default=str, option=orjson.OPT_NON_STR_KEYS))  # JSON-able, whatever an engine put in it
        with self._lock:
            self._items.append((self._next, clean))
            self._next += 1

    def watch_deliveries(self, services: Any) -> None:
        """Also number the records of every delivery service in ``services`` (once each)."""
        for svc in list(services):
            if hasattr(svc, "subscribe") and hasattr(svc, "feed") and id(svc) not in self._watched:
                self._watched.add(id(svc))
                svc.subscribe(lambda rec: self._add(delivery_notice(rec, self.engine.now_ms)))

    def since(self, cursor: int | None, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
        """(notices from ``cursor`` on, the cursor to pass next). ``None``: the recent backlog."""
        with self._lock:
            if cursor is None or cursor > self._next:  # a first call, or a cursor of another engine
                return [n for _, n in list(self._items)[-limit:]], self._next
            picked = [(seq, n) for seq, n in self._items if seq >= cursor][:limit]
            return [n for _, n in picked], (picked[-1][0] + 1 if picked else cursor)


# ============================================================================ menus and targets
def fault_menu(engine: Any) -> list[tuple[str, str, str, str]]:
    """(fault kind, default target, incident type it leads to, description) for every fault."""
    from engine.core import default_target as fault_target
    from engine.fleet.faults import FAULT_KINDS

    with engine.lock:
        return [(kind, fault_target(engine.fleet, kind), meta[0], meta[2]) for kind, meta in FAULT_KINDS.items()]


def entities(engine: Any, target_kind: str) -> list[str]:
    """Every entity of a kind (service | queue | region | circuit)."""
    f = engine.fleet
    pools = {"service": f.services, "queue": f.queues, "region": f.regions, "circuit": f.breakers}
    with engine.lock:
        return list(pools[target_kind])


def fault_targets(engine: Any) -> dict[str, list[str]]:
    """Per fault kind, every entity it can act on (slow_queries: databases only; the same rule
    ``ggen chaos inject`` enforces)."""
    from engine.control.catalog import fault_targets as targets_of
    from engine.fleet.faults import FAULT_KINDS

    with engine.lock:
        return {kind: targets_of(engine.fleet, kind) for kind in FAULT_KINDS}


def action_target(engine: Any, name: str, target_kind: str, incident: Incident | None) -> str:
    """The target a person most likely means for a manual action, from the selected incident."""
    f = engine.fleet
    kind = target_kind
    if kind == "queue":
        if incident is not None and incident.entity_kind == "queue":
            return incident.entity
        return next(iter(f.queues), "")
    if kind == "circuit":
        if incident is not None and incident.entity_kind == "circuit":
            return incident.entity
        if incident is not None:
            for bname, b in f.breakers.items():
                if b.dependency == incident.service:
                    return bname
        return next(iter(f.breakers), "")
    if kind == "database":
        return next((n for n, s in f.services.items() if s.kind == "database"), next(iter(f.services), ""))
    if kind == "region":
        if incident is not None and incident.entity_kind == "region":
            return incident.entity
        return f.serving if name == "failover_region" else f.primary
    if incident is not None:
        return incident.service
    return next(iter(f.services), "")


def action_targets(engine: Any, actions: list[tuple[str, str]], incident_id: str | None) -> dict[str, str]:
    """``{action: likely target}`` for (action name, target kind) pairs."""
    with engine.lock:
        inc = engine.incidents.get(incident_id) if incident_id else None
        return {name: action_target(engine, name, kind, inc) for name, kind in actions}


# ============================================================================ one incident
def incident_events(engine: Any, incident_id: str) -> tuple[IncidentRow, list[EventRow]] | None:
    """One incident's event log (for the timeline screen), copied under the lock."""
    with engine.lock:
        inc = engine.incidents.get(incident_id)
        if inc is None:
            return None
        row = incident_row(inc, engine.now_ms, engine.policy.severity.levels[inc.severity].ack_within_s)
        return row, [EventRow(e.seq, e.observed_at_ms, e.kind, e.actor, e.summary, e.severity) for e in inc.events]


def incident_facts(engine: Any, incident_id: str) -> dict[str, Any]:
    """What a PIR draft is written from: the incident's summary, events, runbook and SLAs."""
    with engine.lock:
        inc = engine.get_incident(incident_id)
        rb = engine.policy.runbooks[inc.type]
        level = engine.policy.severity.levels[inc.max_severity]
        events = [
            {"at_ms": e.observed_at_ms, "kind": e.kind, "actor": e.actor, "summary": e.summary, "severity": e.severity, "data": dict(e.data)}
            for e in inc.events
        ]
        notes = [n.to_dict() for n in engine.outbox.items if n.incident_id == inc.id]
        return {
            "incident": inc.summary(),
            "events": events,
            "runbook_title": rb.runbook.title,
            "mttr_target_s": rb.runbook.mttr_target_s,
            "pir_due_s": level.pir_due_s,
            "ack_within_s": level.ack_within_s,
            "notifications": notes,
            "now_ms": engine.now_ms,
        }


def similar_query(engine: Any, incident_id: str) -> tuple[str, dict[str, Any], list[str]]:
    """(incident type, signals, ids to exclude) for the knowledge base's similarity query.
    Stale signals (NaN from a real source) are left out."""
    with engine.lock:
        inc = engine.get_incident(incident_id)
        signals: dict[str, Any] = {"service": inc.service, "region": inc.region}
        for e in inc.events:
            if e.kind == "incident.detected":
                for k in ("suspected_bottleneck", "signal", "trigger_reason", "first_anomaly_at"):
                    if isinstance(e.data.get(k), str):
                        signals[k] = e.data[k]
                changes = e.data.get("recent_changes")  # last deploy, config changes: cause signals
                if isinstance(changes, dict):
                    signals.update({k: v for k, v in changes.items() if isinstance(v, (str, bool))})
            if e.kind == "recovery.verified" and isinstance(e.data.get("root_cause"), str):
                signals["root_cause_hint"] = e.data["root_cause"]
        try:
            for k, v in engine.signals(inc.entity_kind, inc.entity).items():
                if math.isfinite(v):
                    signals[k] = int(round(v))
        except (KeyError, ValueError):
            pass
        return inc.type, signals, [inc.id]


# ============================================================================ over the wire
def view_to_json(view: ConsoleView) -> bytes:
    """The view as JSON (NaN, an unknown value, travels as null)."""
    return orjson.dumps(view, default=str, option=orjson.OPT_NON_STR_KEYS)


def _floats(xs: list[Any]) -> tuple[float, ...]:
    return tuple([NAN if x is None else x for x in xs] if None in xs else xs)


def _num(x: Any) -> float:
    return NAN if x is None else x


_FLOAT_FIELDS: dict[type, tuple[str, ...]] = {}
_FLOAT_LISTS: dict[type, tuple[str, ...]] = {}


def _row(cls: type, d: dict[str, Any]) -> Any:
    """A flat row dataclass from its JSON dict: unknown (null) floats back to NaN."""
    scalar = _FLOAT_FIELDS.get(cls)
    if scalar is None:
        scalar = _FLOAT_FIELDS[cls] = tuple(f.name for f in fields(cls) if str(f.type) == "float")
        _FLOAT_LISTS[cls] = tuple(f.name for f in fields(cls) if str(f.type).startswith("tuple[float"))
    for k in scalar:
        if d.get(k) is None:
            d[k] = NAN
    for k in _FLOAT_LISTS[cls]:
        d[k] = _floats(d[k])
    return cls(**d)


def view_from_dict(d: dict[str, Any]) -> ConsoleView:
    """A :class:`ConsoleView` from :func:`view_to_json`'s JSON (parsed)."""
    d = dict(d)
    d["services"] = [_row(ServiceRow, r) for r in d["services"]]
    d["queues"] = [_row(QueueRow, r) for r in d["queues"]]
    d["breakers"] = [BreakerRow(**r) for r in d["breakers"]]
    d["regions"] = [_row(RegionRow, r) for r in d["regions"]]
    d["incidents"] = [IncidentRow(**r) for r in d["incidents"]]
    d["metrics"] = SessionMetrics(**d["metrics"])
    if d.get("script") is not None:
        d["script"] = tuple(d["script"])
    det = d.get("detail")
    if det is not None:
        det = dict(det)
        det["row"] = IncidentRow(**det["row"])
        det["steps"] = [StepRow(**s) for s in det["steps"]]
        det["criteria"] = [_row(CriterionRow, c) for c in det["criteria"]]
        det["events"] = [EventRow(**e) for e in det["events"]]
        det["key_signals"] = tuple(det["key_signals"])
        det["signals"] = {k: _num(v) for k, v in det["signals"].items()}
        d["detail"] = IncidentDetail(**det)
    return ConsoleView(**d)


def view_from_json(raw: bytes | str) -> ConsoleView:
    return view_from_dict(orjson.loads(raw))
