"""Reconstruct an incident's timeline: the receipts from the ledger merged with the logs, traces
and metric series of the window in the analyzer database (part 1 section 8, doc 04)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from analyzer.timeline.causes import read_traces, rank_causes
from analyzer.timeline.chart import draw_chart
from analyzer.timeline.data import WindowData, change_pattern, load_window, metric_names, open_analyzer_db
from analyzer.timeline.model import (
    Check,
    Duration,
    Evidence,
    Impact,
    IncidentFacts,
    Onset,
    Origin,
    Phase,
    ReceiptRef,
    Timeline,
    TimelineBadInput,
    TimelineError,
    TimelineNotFound,
)
from analyzer.timeline.infer import infer_incident, parse_alert
from analyzer.timeline.receipts import find_incident_id, incident_facts, load_receipts
from analyzer.timeline.series import Series, build_series, first_crossing, log_onsets, metric_onset, recovery_in_data, sample_interval
from analyzer.timeline.settings import ChangeSpec, TimelineSettings, load_timeline_settings
from engine.clock import iso_utc
from engine.events import (
    ACKNOWLEDGED,
    DETECTED,
    ESCALATED,
    MITIGATION_APPLIED,
    MITIGATION_ASSESSED,
    MITIGATION_FAILED,
    MITIGATION_PLANNED,
    MITIGATION_REFUSED,
    RECOVERY_STARTED,
    RECOVERY_VERIFIED,
)

ACTION_KINDS = (MITIGATION_APPLIED, MITIGATION_FAILED, MITIGATION_PLANNED, MITIGATION_REFUSED)


@dataclass
class Change:
    """A change or action line (or several lines saying the same thing in different logs)."""

    at_ms: int
    spec: ChangeSpec
    service: str | None
    text: str
    level: str | None
    origins: list[Origin]
    explained_by: str | None = None
    attrs: str | None = None  # the line's attributes as JSON text


def _hms(ms: int) -> str:
    return iso_utc(ms)[11:19]


def _classify(changes: pl.DataFrame, specs: list[ChangeSpec], settings: TimelineSettings) -> list[Change]:
    compiled = [(s, re.compile(s.pattern)) for s in specs]
    out: list[Change] = []
    for t, level, service, message, attrs, file, line in changes.iter_rows():
        spec = next((s for s, rx in compiled if rx.search(message or "")), None)
        if spec is None:
            continue
        svc = settings.alias(service)
        same = next((c for c in reversed(out[-8:]) if c.spec.kind == spec.kind and abs(c.at_ms - int(t)) <= 1500 and (spec.role != "state" or c.text.split(" ")[:2] == str(message).split(" ")[:2])), None)
        origin = Origin("log", file, int(line))
        if same is not None:
            same.origins.append(origin)
            if svc and svc not in settings.services.not_candidates and (same.service in settings.services.not_candidates or same.service is None):
                same.service = svc
            continue
        out.append(Change(int(t), spec, svc, str(message), level, [origin], attrs=attrs))
    return out


def _alert_line(changes: list[Change], incident_id: str | None, incident_type: str | None, near_ms: int | None) -> Change | None:
    alerts = [c for c in changes if c.spec.role == "alert"]
    if incident_type:
        typed = [c for c in alerts if c.text.startswith(f"ALERT {incident_type}")]
        alerts = typed or alerts
    if not alerts:
        return None
    if near_ms is None:
        return alerts[0]
    return min(alerts, key=lambda c: (abs(c.at_ms - near_ms), c.at_ms))


def _explain(changes: list[Change], receipts: list[ReceiptRef], tolerance_ms: int) -> None:
    """Match each action and alert line with the receipt that accounts for it."""
    for c in changes:
        if c.spec.role == "state":
            continue
        best = None
        for r in receipts:
            name = r.kind if r.kind == DETECTED else str(r.evidence.get("action") or "")
            if r.kind not in ACTION_KINDS and r.kind != DETECTED:
                continue
            late = c.at_ms - r.observed_ms
            if name in c.spec.explains and (abs(late) <= tolerance_ms or 0 <= late <= c.spec.completes_within_s * 1000):
                if best is None or abs(r.observed_ms - c.at_ms) < abs(best.observed_ms - c.at_ms):
                    best = r
        if best is not None:
            c.explained_by = best.receipt_id


def _sources_root(files: list[str]) -> str | None:
    real = [f for f in files if f and f.startswith("/")]
    if not real:
        return None
    root = os.path.commonpath(real)
    if root in real:  # a single file: its directory
        root = os.path.dirname(root)
    return root or None


class _Context:
    """Everything the steps share while one timeline is built."""

    def __init__(self, settings: TimelineSettings, facts: IncidentFacts | None, series: list[Series], standby: str | None, interval: int | None) -> None:
        self.settings = settings
        self.facts = facts
        self.series = series
        self.standby = standby
        self.interval = interval or 10_000

    def entity_series(self, kind: str | None, signal: str, service: str | None = None) -> Series | None:
        """The series of a runbook signal for the incident's entity (or for ``service``)."""
        if kind is None:
            return None
        spec = self.settings.signal(kind, signal)
        if spec is None:
            return None
        f = self.facts
        cands = [s for s in self.series if s.metric == spec.metric]
        if spec.label:
            want = f.entity if f else None
            cands = [s for s in cands if s.labels.get(spec.label) == want]
        if spec.entity_service:
            want = service or (f.service if f else None)
            cands = [s for s in cands if self.settings.alias(s.service) == want or s.service == want]
        if spec.region == "standby":
            cands = [s for s in cands if s.labels.get("region") == self.standby]
        return cands[0] if cands else None

    def snapshot_signals(self) -> list[tuple[str, Series, float]]:
        """(title, series, scale) of the incident type's snapshot, where the data has them."""
        f = self.facts
        if f is None:
            return []
        t = self.settings.types.get(f.incident_type)
        if t is None or f.entity_kind is None:
            return []
        out = []
        for ref in t.snapshot:
            if ref.startswith("service."):
                sig = ref.removeprefix("service.")
                s = self.entity_series("service", sig, service=f.service)
                spec = self.settings.signal("service", sig)
                title = f"{f.service} {spec.title}" if spec else ref
            else:
                s = self.entity_series(f.entity_kind, ref)
                spec = self.settings.signal(f.entity_kind, ref)
                title = spec.title if spec else ref
            if s is not None and spec is not None:
                out.append((title, s, spec.scale))
        return out

    def snapshot_origins(self, t_ms: int) -> list[Origin]:
        """The sample lines a snapshot at ``t_ms`` reads (the first one at or before it)."""
        out = []
        for _title, s, _scale in self.snapshot_signals()[:2]:
            i = s.index_at(t_ms)
            if i is None and s.t:
                i = 0
            if i is not None:
                out.append(s.origin(i))
        return out

    def snapshot(self, t_ms: int) -> dict[str, float | None]:
        snap: dict[str, float | None] = {}
        for title, s, scale in self.snapshot_signals():
            v = s.value_at(t_ms, grace_ms=self.interval)
            snap[title] = None if v is None else round(v * scale, 3)
        return snap


def reconstruct_timeline(
    db_path: Path | str,
    *,
    incident_id: str | None = None,
    ledger: Any = None,
    anchors: Any = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    service: str | None = None,
    policy: Any = None,
    settings: TimelineSettings | None = None,
) -> Timeline:
    """Build the timeline of an incident (its window from its receipts, with margins) or of a
    window (``start_ms``..``end_ms``). ``ledger`` is an open :class:`engine.receipts.Ledger`
    (needed for an incident id; optional for a window); ``anchors`` the trusted keys used to
    record each receipt's verification state. Raises :class:`TimelineError` (one line)."""
    st = settings or load_timeline_settings()
    if policy is None:
        from engine.policy.bundle import load_policy

        policy = load_policy()
    if incident_id is None and (start_ms is None or end_ms is None):
        raise TimelineError("give an incident id, or both ends of a window (--from and --to)")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise TimelineBadInput(f"the window {iso_utc(start_ms)} .. {iso_utc(end_ms)} is empty: its end must come after its start")

    receipts: list[ReceiptRef] = []
    facts: IncidentFacts | None = None
    if incident_id is not None:
        if ledger is None:
            raise TimelineNotFound("an incident id needs the ledger, and this data directory has none (nothing was recorded)")
        iid = find_incident_id(ledger, incident_id)
        receipts = load_receipts(ledger, [iid], anchors)
        facts = incident_facts(iid, receipts)
        begin = facts.first_anomaly_ms if facts.first_anomaly_ms is not None else facts.detected_ms
        last = max([facts.resolved_ms or 0, *[r.observed_ms for r in receipts]])
        start_ms = begin - st.window.margin_before_s * 1000 if start_ms is None else start_ms
        end_ms = last + st.window.margin_after_s * 1000 if end_ms is None else end_ms
    elif ledger is not None:
        assert start_ms is not None and end_ms is not None
        receipts, facts = _incidents_in_window(ledger, anchors, start_ms, end_ms)
    assert start_ms is not None and end_ms is not None

    con = open_analyzer_db(db_path)
    try:
        data = load_window(con, start_ms, end_ms, st, metric_names(st), change_pattern(st))
    finally:
        con.close()
    if data.data_start_ms is None or data.data_end_ms is None:
        raise TimelineNotFound(f"no logs, traces or metrics between {iso_utc(start_ms)} and {iso_utc(end_ms)} in {db_path}")
    return _build(Path(db_path), data, st, policy, facts, receipts, start_ms, end_ms, st.alias(service) if service else None)


def receipts_timeline(ledger: Any, incident_id: str, anchors: Any = None) -> Timeline:
    """A timeline from the receipts alone, for an incident whose logs were never ingested."""
    iid = find_incident_id(ledger, incident_id)
    receipts = load_receipts(ledger, [iid], anchors)
    facts = incident_facts(iid, receipts)
    start = min(r.observed_ms for r in receipts)
    end = max(r.observed_ms for r in receipts)
    tl = Timeline(start_ms=start, end_ms=end, db_path="", incident=facts, receipts=receipts)
    tl.counts = {"log_records": 0, "traces": 0, "spans_read": 0, "metric_samples": 0, "receipts": len(receipts)}
    ctx = _Context(load_timeline_settings(), facts, [], None, None)
    _phases(tl, ctx, facts, receipts, [], None, None, WindowData(0, start, end, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame()), start)
    dropped = [e for p in tl.phases if p.name == "BASELINE" for e in p.during]
    tl.phases = [p for p in tl.phases if p.name != "BASELINE"]
    if dropped and tl.phases:
        tl.phases[0].during[:0] = dropped
    _durations(tl, facts, receipts, [], None, None)
    tl.notes.append("no logs, traces or metrics: phases and durations come from the receipts only")
    return tl


def _incidents_in_window(ledger: Any, anchors: Any, start_ms: int, end_ms: int) -> tuple[list[ReceiptRef], IncidentFacts | None]:
    """Receipts of the incidents detected inside a window; the first one gives the context."""
    ids = ledger.incident_ids(start_ms, include_unresolved=False)
    picked: list[str] = []
    for iid in ids:
        recs = ledger.incident_receipts(iid)
        det = next((r for r in recs if r.kind == DETECTED), None)
        if det is not None and start_ms <= det.observed_at_ms < end_ms:
            picked.append(iid)
    if not picked:
        return [], None
    receipts = load_receipts(ledger, picked, anchors)
    firsts = sorted((r.observed_ms, r.incident_id) for r in receipts if r.kind == DETECTED and r.incident_id)
    return receipts, incident_facts(firsts[0][1], receipts) if firsts else None


def _build(
    db_path: Path,
    data: WindowData,
    st: TimelineSettings,
    policy: Any,
    facts: IncidentFacts | None,
    receipts: list[ReceiptRef],
    start_ms: int,
    end_ms: int,
    service_filter: str | None,
) -> Timeline:
    assert data.data_start_ms is not None and data.data_end_ms is not None
    series = build_series(data.metrics, st)
    standby = next((r.name for r in policy.fleet.regions if r.role == "standby"), None)
    floors = st.anomaly.floor
    health = [s for s in series if s.metric in floors]
    ctx = _Context(st, facts, series, standby, None)
    tl = Timeline(start_ms=start_ms, end_ms=end_ms, db_path=str(db_path), service_filter=service_filter, incident=facts, receipts=receipts)
    tl.data_start_ms, tl.data_end_ms = data.data_start_ms, data.data_end_ms
    tl.counts = {
        "log_records": data.log_records,
        "traces": data.traces.height,
        "spans_read": data.spans.height,
        "metric_samples": data.metrics.height,
        "receipts": len(receipts),
    }
    files = [*data.changes.get_column("file").to_list()] if data.changes.height else []
    files += data.metrics.get_column("file").unique().to_list() if data.metrics.height else []
    files += data.disorder.get_column("file").to_list() if data.disorder.height else []
    files += data.spans.get_column("file").unique().to_list() if data.spans.height else []
    tl.sources_root = _sources_root(sorted(set(files)))

    changes = _classify(data.changes, st.changes, st)
    tol = st.window.match_tolerance_s * 1000
    _explain(changes, receipts, tol)
    if service_filter is not None and service_filter not in _services_named(data, series, changes, st):
        tl.warnings.append(f"no log, trace or metric in the window names the service {service_filter!r}: nothing to show for it")
    if facts is None:
        facts = _infer(data, series, changes, st, policy, service_filter, tl.sources_root)
        ctx.facts = tl.incident = facts
        if facts is not None:
            tl.notes.append(
                f"no receipts for this window: the incident ({facts.incident_type} on {facts.entity or facts.service}, service {facts.service}) is inferred from {facts.inferred_from}; "
                "its phases, snapshots, chart and durations come from the data alone"
            )
    main = _main_series(ctx)
    interval = sample_interval([main] if main is not None and len(main.t) > 2 else health or series)
    ctx.interval = interval or 10_000
    tl.metric_interval_ms = interval
    alert = _alert_line(changes, facts.incident_id if facts else None, facts.incident_type if facts else None, facts.detected_ms if facts else None)

    # Baseline: from the first data to part-way to the receipts' first anomaly (or the alert).
    reference = None
    if facts is not None:
        reference = facts.first_anomaly_ms if facts.first_anomaly_ms is not None else facts.detected_ms
    elif alert is not None:
        reference = alert.at_ms
    else:
        reference = (data.data_start_ms + data.data_end_ms) // 2
    span = max(0, reference - data.data_start_ms)
    baseline_end = data.data_start_ms + min(st.baseline.max_s * 1000, span * st.baseline.reference_share_pct // 100)
    tl.baseline_end_ms = baseline_end
    if baseline_end - data.data_start_ms < 3 * ctx.interval:
        tl.notes.append(f"the window has only {(baseline_end - data.data_start_ms) // 1000} s of data before the incident: too little for a baseline, so no anomaly can be measured (widen --from)")

    detected_ms = alert.at_ms if alert is not None else (facts.detected_ms if facts else None)
    horizon = facts.recovered_ms if facts and facts.recovered_ms else (detected_ms + 600_000 if detected_ms else data.data_end_ms)
    onsets = [o for s in health if (o := metric_onset(s, baseline_end, floors[s.metric], st.anomaly, until_ms=horizon)) is not None]
    onsets += log_onsets(data.buckets, baseline_end, data.data_start_ms, data.data_end_ms, st.anomaly, st.services.aliases, until_ms=horizon)
    skip = set(st.services.not_candidates)
    onsets = sorted((o for o in onsets if o.service not in skip), key=lambda o: (o.at_ms, o.series))
    limit = detected_ms if detected_ms is not None else data.data_end_ms
    early = [o for o in onsets if o.at_ms <= limit]
    tl.first_anomaly = early[0] if early else None
    tl.onsets = onsets

    first_ms = tl.first_anomaly.at_ms if tl.first_anomaly else (detected_ms or baseline_end)
    recovery = None
    if facts is not None and detected_ms is not None:
        recovery = _recovery(ctx, policy, detected_ms)
    period_end = recovery.recovered_ms if recovery and recovery.recovered_ms else (facts.recovered_ms if facts and facts.recovered_ms else horizon)
    period = (first_ms - st.anomaly.log_bucket_s * 1000, max(period_end or first_ms, first_ms))
    traces = read_traces(data.traces, data.spans, baseline_end, st)
    tl.causes, tl.propagation = rank_causes(traces, onsets, period, (data.data_start_ms, baseline_end), st)

    tl.incident_period = period
    tl.impact = _impact(ctx, period)
    _phases(tl, ctx, facts, receipts, changes, alert, recovery, data, baseline_end)
    _durations(tl, facts, receipts, changes, alert, recovery)
    _checks(tl, ctx, facts, receipts, changes, alert, recovery, data, policy)
    _evidence(tl, ctx, receipts, changes, traces, main)
    if main is not None:
        marks = [(p.at_ms, p.name) for p in tl.phases]
        tl.chart_title, tl.chart = draw_chart(main, ctx.settings.signal(facts.entity_kind, st.types[facts.incident_type].chart).title if facts and facts.entity_kind else main.name, marks, start_ms, end_ms)  # type: ignore[union-attr]
    if service_filter:
        _apply_filter(tl, service_filter)
    return tl


def _services_named(data: WindowData, series: list[Series], changes: list[Change], st: TimelineSettings) -> set[str]:
    """Every service the window's logs, spans and metric series name (by both spellings)."""
    names: set[str] = set()
    if data.buckets.height:
        names |= {str(x) for x in data.buckets.get_column("service").unique().to_list() if x}
    if data.spans.height:
        names |= {str(x) for x in data.spans.get_column("service").unique().to_list() if x}
    if data.traces.height:
        names |= {str(x) for x in data.traces.get_column("root_service").unique().to_list() if x}
    for s in series:
        names |= {x for x in (s.service, s.owner) if x}
    names |= {c.service for c in changes if c.service}
    return names | {a for x in names if (a := st.alias(x))}


def _infer(data: WindowData, series: list[Series], changes: list[Change], st: TimelineSettings, policy: Any, service: str | None, root: str | None) -> IncidentFacts | None:
    """The incident of a window without receipts, from its alert line or its metrics."""
    known = set(st.types)
    alerts = [a for c in changes if c.spec.role == "alert" and (a := parse_alert(c.at_ms, c.text, c.attrs, c.origins[0], known)) is not None]
    if service is not None:
        alerts = [a for a in alerts if a.service is not None and st.alias(a.service) == service] or alerts
    assert data.data_start_ms is not None
    callers = frozenset(a for x in data.traces.get_column("root_service").unique().to_list() if x and (a := st.alias(str(x)))) if data.traces.height else frozenset()
    return infer_incident(series, alerts[0] if alerts else None, st, policy, data.data_start_ms, service_hint=service, root=root, callers=callers)


def _main_series(ctx: _Context) -> Series | None:
    f = ctx.facts
    if f is None or f.entity_kind is None or f.incident_type not in ctx.settings.types:
        return None
    return ctx.entity_series(f.entity_kind, ctx.settings.types[f.incident_type].chart)


def _recovery(ctx: _Context, policy: Any, detected_ms: int) -> Any:
    f = ctx.facts
    assert f is not None
    rb = policy.runbooks.get(f.incident_type)
    if rb is None or f.entity_kind is None:
        return None
    crit = []
    unmapped = []
    scales = {}
    for c in rb.recovery.all:
        s = ctx.entity_series(f.entity_kind, c.signal)
        spec = ctx.settings.signal(f.entity_kind, c.signal)
        if s is None or spec is None:
            unmapped.append(f"{c.signal} {c.op} {c.value:g}")
            continue
        scales[c.signal] = spec.scale
        crit.append((c.signal, s, c.op, c.value))
    return recovery_in_data(crit, unmapped, detected_ms, rb.recovery.hold_s * 1000, scales)


def _phases(tl: Timeline, ctx: _Context, facts: IncidentFacts | None, receipts: list[ReceiptRef], changes: list[Change], alert: Change | None, recovery: Any, data: WindowData, baseline_end: int) -> None:
    phases: list[Phase] = []
    start = data.data_start_ms or tl.start_ms
    phases.append(Phase("BASELINE", start, f"normal operation: the baseline is the data from {_hms(start)} to {_hms(baseline_end)}", ctx.snapshot(start), ctx.snapshot_origins(start)))
    fa = tl.first_anomaly
    if fa is not None:
        phases.append(Phase("FIRST ANOMALY", fa.at_ms, f"{fa.series} left its baseline: {fa.value:g} (baseline {fa.baseline:g}, threshold {fa.threshold:g})", ctx.snapshot(fa.at_ms), [fa.origin]))
    det = next((r for r in receipts if facts and r.kind == DETECTED and r.incident_id == facts.incident_id), None)
    if det is not None:
        origins = [Origin("receipt", receipt_id=det.receipt_id)] + (alert.origins if alert else [])
        phases.append(Phase("ALERT TRIGGERED", det.observed_ms, det.summary, ctx.snapshot(det.observed_ms), origins, from_data=False))
    elif alert is not None:
        phases.append(Phase("ALERT TRIGGERED", alert.at_ms, alert.text, ctx.snapshot(alert.at_ms), list(alert.origins)))
    elif facts is not None and facts.inferred_from is not None:
        phases.append(Phase("ALERT TRIGGERED", facts.detected_ms, f"no alert line: the runbook's detection threshold is met in the data ({facts.summary})", ctx.snapshot(facts.detected_ms), ctx.snapshot_origins(facts.detected_ms)))
    mine = [r for r in receipts if facts is None or r.incident_id == facts.incident_id]
    inside: list[Evidence] = []  # acts that start no phase: listed under the phase they happened in
    for r in mine:
        if r.kind in ACTION_KINDS:
            line = next((c for c in changes if c.explained_by == r.receipt_id), None)
            origins = [Origin("receipt", receipt_id=r.receipt_id)] + (line.origins if line else [])
            phases.append(Phase("MITIGATION", r.observed_ms, r.summary, ctx.snapshot(r.observed_ms), origins, from_data=False))
        elif r.kind == ESCALATED:
            phases.append(Phase("ESCALATED", r.observed_ms, r.summary, ctx.snapshot(r.observed_ms), [Origin("receipt", receipt_id=r.receipt_id)], from_data=False))
        elif r.kind == ACKNOWLEDGED:
            inside.append(Evidence(r.observed_ms, "receipt", r.summary or r.kind, Origin("receipt", receipt_id=r.receipt_id), r.service, r.kind))
    alert_ms = alert.at_ms if alert is not None else (facts.detected_ms if facts is not None and facts.inferred_from is not None else None)
    if det is None and alert_ms is not None:
        # Actions in the logs from the alert until the data shows the recovery (later ones, such
        # as a scale-up after the fact, stay in the evidence: they mitigated nothing).
        until = recovery.recovered_ms if recovery is not None and recovery.recovered_ms is not None else None
        for c in changes:
            if c.spec.role == "action" and c.at_ms >= alert_ms and (until is None or c.at_ms <= until):
                phases.append(Phase("MITIGATION", c.at_ms, c.text, ctx.snapshot(c.at_ms), list(c.origins)))
    started = next((r for r in mine if r.kind == RECOVERY_STARTED), None)
    if started is not None:
        phases.append(Phase("RECOVERING", started.observed_ms, started.summary, ctx.snapshot(started.observed_ms), [Origin("receipt", receipt_id=started.receipt_id)], from_data=False))
    elif recovery is not None and recovery.first_met_ms is not None:
        phases.append(Phase("RECOVERING", recovery.first_met_ms, "the runbook's recovery criteria are first met in the data", ctx.snapshot(recovery.first_met_ms), []))
    verified = next((r for r in mine if r.kind == RECOVERY_VERIFIED), None)
    if recovery is not None and recovery.recovered_ms is not None:
        what = f"recovery criteria hold in the data from here ({', '.join(recovery.criteria)})"
        if facts and facts.recovered_ms is not None:
            what += f"; the receipts say {_hms(facts.recovered_ms)}"
        phases.append(Phase("RECOVERED", recovery.recovered_ms, what, ctx.snapshot(recovery.recovered_ms), list(recovery.origins)))
    elif facts is not None and facts.recovered_ms is not None:
        origins = [Origin("receipt", receipt_id=verified.receipt_id)] if verified else []
        phases.append(Phase("RECOVERED", facts.recovered_ms, "recovered, as the resolution receipt states (the data does not show it)", ctx.snapshot(facts.recovered_ms), origins, from_data=False))
    if verified is not None:
        phases.append(Phase("ALL CLEAR", verified.observed_ms, verified.summary, ctx.snapshot(verified.observed_ms), [Origin("receipt", receipt_id=verified.receipt_id)], from_data=False))
    elif facts is not None and facts.inferred_from is not None and recovery is not None and recovery.recovered_ms is not None and recovery.held_full:
        clear = recovery.recovered_ms + recovery.hold_ms
        phases.append(Phase("ALL CLEAR", clear, f"the recovery criteria have held for the runbook's {recovery.hold_ms // 1000} s (from the data; no resolution receipt)", ctx.snapshot(clear), list(recovery.origins)))
    # Stable order: by time, and the canonical phase order for equal times.
    from analyzer.timeline.model import PHASE_ORDER

    phases.sort(key=lambda p: (p.at_ms, PHASE_ORDER.index(p.name)))
    for e in sorted(inside, key=lambda e: e.at_ms):
        home = next((p for p in reversed(phases) if p.at_ms <= e.at_ms), phases[0] if phases else None)
        if home is not None:
            home.during.append(e)
    tl.phases = phases


def _durations(tl: Timeline, facts: IncidentFacts | None, receipts: list[ReceiptRef], changes: list[Change], alert: Change | None, recovery: Any) -> None:
    if facts is None and alert is None:
        return
    det_ms = alert.at_ms if alert is not None else None
    det_basis = f"alert log line {_hms(alert.at_ms)}" if alert else "no alert line in the logs"
    if det_ms is None and facts is not None and facts.inferred_from is not None:
        det_ms = facts.detected_ms
        det_basis = f"detection threshold met in the metrics at {_hms(det_ms)}"
    fa = tl.first_anomaly
    ttd_data = det_ms - fa.at_ms if (det_ms is not None and fa is not None) else None
    ttd_rec = facts.time_to_detect_ms if facts else None
    tl.durations.append(
        Duration(
            "time to detect",
            ttd_data,
            ttd_rec,
            f"first anomaly {_hms(fa.at_ms)} ({fa.series}) to the {det_basis}" if fa else "no anomaly found before the alert",
            f"detection receipt: first anomaly {_hms(facts.first_anomaly_ms)} to detection {_hms(facts.detected_ms)}" if facts and facts.first_anomaly_ms is not None else "-",
        )
    )
    first_action = None
    if det_ms is not None:
        acts = [c for c in changes if c.spec.role == "action" and c.at_ms >= det_ms and c.spec.kind != "chaos"]
        first_action = acts[0] if acts else None
    tl.durations.append(
        Duration(
            "time to mitigate",
            first_action.at_ms - det_ms if (first_action is not None and det_ms is not None) else None,
            facts.first_action_ms - facts.detected_ms if facts and facts.first_action_ms is not None else None,
            f"{'alert' if alert else 'detection'} to the first action in the logs ({first_action.text} at {_hms(first_action.at_ms)})" if first_action else "no action in the logs after the alert",
            "detection receipt to the first mitigation receipt" if facts and facts.first_action_ms is not None else "-",
        )
    )
    rec_ms = recovery.recovered_ms if recovery is not None else None
    tl.durations.append(
        Duration(
            "MTTR",
            rec_ms - det_ms if (rec_ms is not None and det_ms is not None) else None,
            facts.mttr_ms if facts else None,
            f"{'alert' if alert else 'detection'} to the start of the held recovery in the metrics ({_hms(rec_ms)})" if rec_ms is not None else "recovery not seen in the metrics",
            f"resolution receipt (target {facts.mttr_target_ms // 1000} s)" if facts and facts.mttr_target_ms else ("resolution receipt" if facts and facts.mttr_ms is not None else "-"),
        )
    )


def _checks(tl: Timeline, ctx: _Context, facts: IncidentFacts | None, receipts: list[ReceiptRef], changes: list[Change], alert: Change | None, recovery: Any, data: WindowData, policy: Any) -> None:
    checks: list[Check] = []
    root = tl.sources_root
    interval = ctx.interval
    # 1. Timestamps ordered.
    late = [(f, int(n), int(k)) for f, n, k in data.disorder.iter_rows() if k]
    problems = [f"{_rel(f, root)}: {k} of {n} lines sit after lines of a later {ctx.settings.anomaly.log_bucket_s}-second slice (out of time order)" for f, n, k in late]
    for iid in sorted({r.incident_id for r in receipts if r.incident_id}):
        times = [r.observed_ms for r in receipts if r.incident_id == iid]
        if any(b < a for a, b in zip(times, times[1:])):
            problems.append(f"receipts of {iid} go back in time")
    names = [p.name for p in tl.phases]
    from analyzer.timeline.model import PHASE_ORDER

    ranks = [PHASE_ORDER.index(n) for n in names]
    if any(b < a for a, b in zip(ranks, ranks[1:])):
        problems.append("phases out of order: " + " -> ".join(names))
    checks.append(Check("timestamps ordered", "warn" if problems else "ok", "; ".join(problems) if problems else f"every file's lines, the receipts and the phases are in time order ({tl.counts['log_records']} log records)"))

    # 2. Cause before effect.
    detail = []
    status = "ok"
    top = tl.causes[0] if tl.causes else None
    det_ms = alert.at_ms if alert else (facts.detected_ms if facts else None)
    if top is None or top.onset_ms is None:
        status = "n/a"
        detail.append("no candidate cause with an onset in the data")
    else:
        if det_ms is not None and top.onset_ms > det_ms:
            status = "warn"
            detail.append(f"{top.service} left its baseline at {_hms(top.onset_ms)}, after the alert at {_hms(det_ms)}")
        else:
            detail.append(f"{top.service} left its baseline at {_hms(top.onset_ms)}" + (f", before the alert at {_hms(det_ms)}" if det_ms else ""))
        onset_of = {c.service: c.onset_ms for c in tl.causes if c.onset_ms is not None}
        slack = ctx.settings.anomaly.log_bucket_s * 1000
        for chain, _n in tl.propagation[:3]:
            svcs = chain.split(" <- ")
            for effect, cause in zip(svcs, svcs[1:]):
                a, b = onset_of.get(cause), onset_of.get(effect)
                if a is not None and b is not None and a > b + slack:
                    status = "warn"
                    detail.append(f"{cause} (cause, {_hms(a)}) left its baseline after {effect} (effect, {_hms(b)})")
    trigger = [c for c in changes if c.spec.role == "action" and c.explained_by is None and tl.first_anomaly and c.at_ms <= tl.first_anomaly.at_ms + ctx.settings.anomaly.log_bucket_s * 1000]
    for c in trigger[-3:]:
        gap = (tl.first_anomaly.at_ms - c.at_ms) / 1000  # type: ignore[union-attr]
        when = f"{gap:.0f} s before" if gap >= 1 else "at"
        detail.append(f"'{c.text}' ({c.spec.kind}, no receipt) at {_hms(c.at_ms)}, {when} the first anomaly")
    if facts and det_ms is not None and recovery is not None and recovery.recovered_ms is not None and recovery.recovered_ms < det_ms:
        status = "warn"
        detail.append("the data recovers before the alert")
    checks.append(Check("cause before effect", status, "; ".join(detail)))

    # 3. Threshold crossings match the detection receipts.
    checks.append(_crossing_check(ctx, facts, policy, alert, interval))

    # 4. Alert, actions and breaker times in the logs match the receipts.
    missing = []
    matched = 0
    for r in receipts:
        if r.kind == DETECTED or r.kind in ACTION_KINDS:
            name = r.kind if r.kind == DETECTED else str(r.evidence.get("action") or "")
            expected = any(name in s.explains for s in ctx.settings.changes)
            if not expected:
                continue
            if any(c.explained_by == r.receipt_id for c in changes):
                matched += 1
            else:
                missing.append(f"{name} at {_hms(r.observed_ms)} (receipt {r.receipt_id}) has no log line within {ctx.settings.window.match_tolerance_s} s")
    silent = sorted({str(r.evidence.get("action")) for r in receipts if r.kind in ACTION_KINDS and not any(str(r.evidence.get("action")) in s.explains for s in ctx.settings.changes)})
    text = f"{matched} receipt(s) matched by a log line"
    if silent:
        text += f"; no log records {', '.join(silent)} (nothing to compare)"
    checks.append(Check("alert and action times match the logs", "warn" if missing else ("ok" if matched else "n/a"), "; ".join([text, *missing])))

    # 5. Durations plausible.
    mttr = tl.duration("MTTR")
    if mttr is None or mttr.diff_ms is None:
        checks.append(Check("durations plausible", "n/a", "no MTTR from both the data and the receipts to compare"))
    else:
        ok = abs(mttr.diff_ms) <= interval
        neg = [d.name for d in tl.durations if d.data_ms is not None and d.data_ms < 0]
        text = f"MTTR {mttr.data_ms // 1000} s from the data vs {mttr.receipt_ms // 1000} s in the receipts ({mttr.diff_ms / 1000:+.0f} s; sampling every {interval // 1000} s)"  # type: ignore[operator]
        if recovery is not None and recovery.unmapped:
            text += f"; not in the metrics, so not checked: {', '.join(recovery.unmapped)}"
        if neg:
            text += f"; negative: {', '.join(neg)}"
        checks.append(Check("durations plausible", "ok" if ok and not neg else "warn", text))

    # 6. Unexplained: errors, deploys and manual actions without a receipt.
    unexplained = []
    for c in changes:
        if c.spec.role == "action" and c.explained_by is None:
            unexplained.append(Evidence(c.at_ms, "log", f"{c.spec.kind} without a receipt: {c.text}", c.origins[0], c.service, c.spec.kind, c.level))
    chain_services = {s for chain, _ in tl.propagation for s in chain.split(" <- ")}
    known = chain_services | ({top.service} if top else set()) | ({facts.service} if facts and facts.service else set())
    for o in tl.onsets:
        if o.series.startswith("error/warning lines") and o.service not in known:
            unexplained.append(Evidence(o.at_ms, "log", f"errors on {o.service} from {_hms(o.at_ms)} that no cause chain explains ({o.value:g} lines in {ctx.settings.anomaly.log_bucket_s} s, baseline {o.baseline:.1f})", o.origin, o.service, "errors"))
    unexplained.sort(key=lambda e: e.at_ms)
    tl.unexplained = unexplained
    checks.append(Check("unexplained events", "warn" if unexplained else "ok", f"{len(unexplained)} error burst(s), deploy(s) or action(s) without a receipt or a cause" if unexplained else "every action in the logs has a receipt and every error burst a cause"))
    tl.checks = checks


def _crossing_check(ctx: _Context, facts: IncidentFacts | None, policy: Any, alert: Change | None, interval: int) -> Check:
    name = "threshold crossing matches the detection receipt"
    if facts is None or facts.signal is None or facts.threshold is None or facts.entity_kind is None:
        return Check(name, "n/a", "no detection receipt in the window")
    s = ctx.entity_series(facts.entity_kind, facts.signal)
    rb = policy.runbooks.get(facts.incident_type)
    rule = None
    if rb is not None:
        rule = next((r for r in rb.detection if r.signal == facts.signal and abs(r.threshold - facts.threshold) < 1e-9), None)
    op = rule.op if rule is not None else ">"
    if s is None:
        return Check(name, "n/a", f"{facts.signal} is not among the ingested metrics")
    spec = ctx.settings.signal(facts.entity_kind, facts.signal)
    scale = spec.scale if spec else 1.0
    scaled = Series(s.metric, s.service, s.labels, s.owner, s.t, [v * scale for v in s.v], s.files, s.lines)
    after = (facts.first_anomaly_ms or facts.detected_ms) - 600_000
    found = first_crossing(scaled, op, facts.threshold, (facts.sustain_s or 0) * 1000, after_ms=after)
    if found is None:
        return Check(name, "warn", f"the metrics never show {facts.signal} {op} {facts.threshold:g} for {facts.sustain_s or 0} s, yet the detection receipt says it fired at {_hms(facts.detected_ms)}", [Origin("receipt", receipt_id=facts.detection_receipt)])
    i0, i1 = found
    crossed, held = s.t[i0], s.t[i1]
    predicted = max(held, crossed + (facts.sustain_s or 0) * 1000)
    diff = predicted - facts.detected_ms
    ok = abs(diff) <= interval
    detail = (
        f"{facts.signal} {op} {facts.threshold:g} from {_hms(crossed)} ({s.v[i0] * scale:g}), held {facts.sustain_s or 0} s by {_hms(predicted)}; "
        f"the receipt detected at {_hms(facts.detected_ms)} ({diff / 1000:+.0f} s)"
    )
    if facts.first_anomaly_ms is not None:
        detail += f", its first anomaly {_hms(facts.first_anomaly_ms)} ({(crossed - facts.first_anomaly_ms) / 1000:+.0f} s)"
    if alert is not None:
        detail += f"; alert line at {_hms(alert.at_ms)}"
    return Check(name, "ok" if ok else "warn", detail, [s.origin(i0), Origin("receipt", receipt_id=facts.detection_receipt)])


def _rel(path: str, root: str | None) -> str:
    return Origin("log", path, 0).ref(root).rsplit(":", 1)[0]


def _evidence(tl: Timeline, ctx: _Context, receipts: list[ReceiptRef], changes: list[Change], traces: Any, main: Series | None) -> None:
    ev: list[tuple[int, Evidence]] = []
    for r in receipts:
        text = r.summary or r.kind
        if r.kind == MITIGATION_ASSESSED:
            text = f"{r.evidence.get('action')}: {r.evidence.get('effectiveness')} ({_metrics_text(r.evidence.get('metrics_before'))} -> {_metrics_text(r.evidence.get('metrics_after'))})"
        ev.append((0, Evidence(r.observed_ms, "receipt", f"{r.kind}: {text}", Origin("receipt", receipt_id=r.receipt_id), r.service, r.kind)))
    for c in changes:
        tag = "" if c.spec.role != "action" or c.explained_by else " (no receipt)"
        ev.append((1 if c.spec.role != "state" else 2, Evidence(c.at_ms, "log", c.text + tag, c.origins[0], c.service, c.spec.kind, c.level)))
    for o in tl.onsets:
        src = "log" if o.origin.source == "log" else "metric"
        ev.append((1, Evidence(o.at_ms, src, f"{o.series} leaves its baseline: {o.value:g} (baseline {o.baseline:g}, threshold {o.threshold:g})", o.origin, o.service, "onset")))
    for c in tl.causes[:3]:
        for origin in c.evidence:
            if origin.source == "trace":
                reason = next((x for x in c.reasons if "trace" in x), "trace evidence")
                at = next((f.t for f in traces.failing + traces.slow if f.origin == origin), tl.start_ms)
                ev.append((1, Evidence(at, "trace", f"{c.service}: {reason}", origin, c.service, "trace")))
    if main is not None and main.v:
        i = max(range(len(main.v)), key=lambda k: (main.v[k], -k))
        tl.peak = Evidence(main.t[i], "metric", f"peak {main.metric} {main.v[i]:g}", main.origin(i), main.owner, "peak")
        ev.append((1, tl.peak))
    cap = ctx.settings.window.evidence_lines
    keep = sorted(ev, key=lambda pe: (pe[0], pe[1].at_ms))[:cap]
    tl.evidence = sorted((e for _, e in keep), key=lambda e: (e.at_ms, e.source, e.text))
    dropped = len(ev) - len(keep)
    if dropped > 0:
        tl.notes.append(f"{dropped} more evidence line(s) not shown (state changes repeat; see --format json or raise window.evidence_lines)")


def _integrate(rate: Series, t0: int, t1: int, step_ms: int, per_ms: float, factor: Series | None = None) -> tuple[float, list[Origin]]:
    """Sum ``rate`` (x ``factor``) over the samples inside ``t0..t1``, each standing for ``step_ms``."""
    total = 0.0
    origins: list[Origin] = []
    for i, (t, v) in enumerate(zip(rate.t, rate.v)):
        if t0 <= t <= t1:
            f = 1.0
            if factor is not None:
                fv = factor.value_at(t)
                if fv is None:
                    continue
                f = fv
            total += v * f * step_ms * per_ms
            if not origins:
                origins.append(rate.origin(i))
    return total, origins


def _impact(ctx: _Context, period: tuple[int, int]) -> list[Impact]:
    """Failed requests and delayed accounts over the incident period, from the metric series."""
    f = ctx.facts
    out: list[Impact] = []
    if f is None:
        return out
    t0, t1 = period
    step = ctx.interval
    svc = ctx.settings.alias(f.service) or f.service
    rps = next((s for s in ctx.series if s.metric == "request_rate_per_second" and ctx.settings.alias(s.service) == svc), None)
    err = ctx.entity_series("region", "edge_error_pct") if f.entity_kind == "region" else next(
        (s for s in ctx.series if s.metric == "custom.governor/error_rate_percent" and ctx.settings.alias(s.service) == svc), None
    )
    if rps is not None and err is not None:
        total, o1 = _integrate(rps, t0, t1, step, 1 / 1000)
        failed, o2 = _integrate(err, t0, t1, step, 1 / 1000 / 100, factor=rps)
        if total > 0:
            out.append(Impact("failed requests", f"{failed:,.0f} / {total:,.0f} requests at {svc} failed ({100 * failed / total:.1f}%) between {iso_utc(t0)[11:19]} and {iso_utc(t1)[11:19]} UTC", round(failed), round(total), o2 + o1))
    depth_spec = ctx.settings.signal("queue", "depth")
    if depth_spec is not None:
        queues = [s for s in ctx.series if s.metric == depth_spec.metric and depth_spec.label and depth_spec.label in s.labels]
        floor = ctx.settings.anomaly.floor.get(depth_spec.metric, 0.0)
        hit = []
        for s in queues:
            before = [v for t, v in zip(s.t, s.v) if t < t0]
            base = sorted(before)[len(before) // 2] if before else 0.0
            peak = max((v for t, v in zip(s.t, s.v) if t0 <= t <= t1), default=None)
            if peak is not None and peak - base > floor:
                i = max((k for k, t in enumerate(s.t) if t0 <= t <= t1), key=lambda k: s.v[k])
                hit.append((s.labels[depth_spec.label], peak, s.origin(i)))
        if queues:
            names = ", ".join(f"{a} (peak {p:,.0f})" for a, p, _ in sorted(hit))
            out.append(Impact("accounts affected", f"{len(hit)} / {len(queues)} accounts had delayed messages" + (f": {names}" if names else ""), len(hit), len(queues), [o for _, _, o in sorted(hit)]))
    return out


def _metrics_text(m: Any) -> str:
    if not isinstance(m, dict):
        return "?"
    return ", ".join(f"{k} {v}" for k, v in list(m.items())[:4])


def _apply_filter(tl: Timeline, service: str) -> None:
    tl.evidence = [e for e in tl.evidence if e.source == "receipt" or e.service == service]
    tl.onsets = [o for o in tl.onsets if o.service == service]
    tl.unexplained = [e for e in tl.unexplained if e.service == service]
    tl.notes.append(f"evidence limited to service {service}; phases, durations and the cause ranking use every service")
