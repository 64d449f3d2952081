"""Draft a post-incident review (part 1 section 7) from an incident's receipts and its
reconstructed timeline. Every factual sentence cites a receipt (``[receipt 1a2b3c4d]``, a prefix
``ggen incidents verify --receipt-id`` accepts) or a source line (``[logs/app.gcp.jsonl:113]``);
what the data cannot know is left as a marked placeholder for the review."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from analyzer.pir.settings import PRIORITIES, PirSettings, load_pir_settings
from analyzer.pir.template import heading
from analyzer.timeline.model import Origin, ReceiptRef, Timeline
from engine.clock import iso_utc
from engine.events import ESCALATED, MITIGATION_APPLIED, MITIGATION_ASSESSED, MITIGATION_FAILED, RECOVERY_VERIFIED

TEMPLATE_SOURCES = ("Ticket", "Slack #incidents", "Kubernetes events", "Git deploys")
PLACEHOLDER = "TODO (fill in)"


@dataclass
class ActionItem:
    """One suggested action item (template: Current, New, Owner, Effort, Expected impact, Status)."""

    priority: str
    title: str
    current: str
    new: str
    owner: str
    effort: str
    expected: str
    due: str
    source: str

    def line(self) -> str:
        return (
            f"- {self.title}. Current: {self.current}. New: {self.new}. Owner: {self.owner}. Effort: {self.effort}. "
            f"Expected impact: {self.expected}. Due: {self.due}. Status: Not Started. [{self.source}]"
        )


@dataclass
class PirDraft:
    """A drafted PIR: its Markdown and what it was built from."""

    incident_id: str
    title: str
    severity: str | None
    incident_type: str
    detected_ms: int
    resolved_ms: int | None
    due_ms: int | None
    drafted_ms: int
    text: str
    cited: list[ReceiptRef] = field(default_factory=list)
    actions: list[ActionItem] = field(default_factory=list)

    def default_name(self) -> str:
        """``pir-<date>-<first 8 hex of the incident>.md``."""
        day = iso_utc(self.detected_ms)[:10]
        return f"pir-{day}-{self.incident_id.removeprefix('urn:uuid:')[:8]}.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _day(ms: int) -> str:
    return iso_utc(ms)[:10]


def _hm(ms: int | None) -> str:
    return "-" if ms is None else iso_utc(ms)[11:16]


def _hms(ms: int | None) -> str:
    return "-" if ms is None else iso_utc(ms)[11:19]


def _dur(ms: int | None) -> str:
    if ms is None:
        return "unknown"
    s = round(ms / 1000)
    if abs(s) < 120:
        return f"{s} s"
    return f"{s // 60} min {s % 60:02d} s"


class _Cite:
    """Short citations: receipt id prefixes that stay unique, source lines relative to the root."""

    def __init__(self, receipts: Sequence[ReceiptRef], root: str | None) -> None:
        self.root = root
        ids = [r.receipt_id.removeprefix("urn:uuid:") for r in receipts]
        width = 8
        while len({i[:width] for i in ids}) < len(set(ids)) and width < 36:
            width += 4
        self.width = width
        self.used: list[str] = []

    def r(self, receipt_id: str | None) -> str:
        if not receipt_id:
            return ""
        if receipt_id not in self.used:
            self.used.append(receipt_id)
        return f"receipt {receipt_id.removeprefix('urn:uuid:')[: self.width]}"

    def o(self, origin: Origin | None) -> str:
        if origin is None:
            return ""
        if origin.source == "receipt":
            return self.r(origin.receipt_id)
        return origin.ref(self.root)

    def __call__(self, *refs: str | Origin | None) -> str:
        parts = []
        for ref in refs:
            if ref is None or ref == "":
                continue
            text = self.o(ref) if isinstance(ref, Origin) else (self.r(ref) if str(ref).startswith("urn:uuid:") else str(ref))
            if text and text not in parts:
                parts.append(text)
        return f" [{'; '.join(parts)}]" if parts else ""


def due_ms(severity: str | None, resolved_ms: int | None, policy: Any) -> int | None:
    """When the PIR is due: ``pir_due_s`` of the severity after resolution (None: optional or open)."""
    if severity is None or resolved_ms is None:
        return None
    level = policy.severity.levels.get(severity)
    if level is None or not level.pir_due_s:
        return None
    return resolved_ms + level.pir_due_s * 1000


def draft_pir(
    tl: Timeline,
    title: str,
    *,
    policy: Any = None,
    settings: PirSettings | None = None,
    similar: Sequence[Any] = (),
    previous: Any = None,
    now_ms: int,
) -> PirDraft:
    """The Markdown draft of ``tl``'s incident. ``similar`` are knowledge-base hits (for action
    items and the comparison); ``previous`` the ledger's previous incident of the same type."""
    if tl.incident is None:
        raise ValueError("a PIR needs an incident (its receipts)")
    if policy is None:
        from engine.policy.bundle import load_policy

        policy = load_policy()
    st = settings or load_pir_settings()
    f = tl.incident
    receipts = [r for r in tl.receipts if r.incident_id == f.incident_id]
    cite = _Cite(tl.receipts, tl.sources_root)
    det, res = f.detection_receipt, f.resolution_receipt
    resolved = f.resolved_ms
    due = due_ms(f.severity, resolved, policy)
    rb = policy.runbooks.get(f.incident_type)
    runbook_name = f"{rb.runbook.id}@{rb.runbook.version}" if rb else f.incident_type
    top = tl.causes[0] if tl.causes else None
    hint = f.root_cause_hint or "unknown"
    hint_words = st.hints.get(hint, hint)
    applied = [r for r in receipts if r.kind in (MITIGATION_APPLIED, MITIGATION_FAILED)]
    assessed = [r for r in receipts if r.kind == MITIGATION_ASSESSED]
    escalations = [r for r in receipts if r.kind == ESCALATED]
    verified = next((r for r in receipts if r.kind == RECOVERY_VERIFIED), None)
    ttd = tl.duration("time to detect")
    mttr = tl.duration("MTTR")
    impact = {i.name: i for i in tl.impact}
    fa = tl.first_anomaly
    out: list[str] = []

    # ------------------------------------------------------------ front matter
    meta = {
        "incident_id": f.incident_id,
        "title": title,
        "severity": f.severity,
        "incident_type": f.incident_type,
        "status": "DRAFT",
        "detected_at": iso_utc(f.detected_ms),
        "resolved_at": iso_utc(resolved) if resolved is not None else None,
        "service": f.service,
        "due_at": iso_utc(due) if due is not None else None,
        "drafted_at": iso_utc(now_ms),
        "drafted_by": "ggen pir create",
    }
    out.append("---")
    out.append(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=200).rstrip())
    out.append("---")
    out.append("")
    out.append(f"# Post-Incident Review: {title}")
    out.append("")
    out.append(
        f"> Draft written by `ggen pir create` at {iso_utc(now_ms)} from {len(receipts)} signed receipts and the ingested logs, traces and metrics. "
        "Each fact cites a receipt (`ggen incidents verify --receipt-id <id>`) or a source line"
        + (f" (files under `{tl.sources_root}`)" if tl.sources_root else "")
        + ". Placeholders are left for the review to write. Blameless: describe systems and decisions, not people."
    )
    out.append("")

    # ------------------------------------------------------------ 1. summary
    out.append(heading(1))
    out.append("")
    out.append(f"- **Incident ID:** {f.incident_id}{cite(det)}")
    out.append(f"- **Severity:** {f.severity} (highest reached){cite(det)}")
    if resolved is not None:
        minutes = max(0, round((resolved - f.detected_ms) / 60000))
        out.append(f"- **Duration:** {_hm(f.detected_ms)}-{_hm(resolved)} UTC ({minutes} min from detection to resolution){cite(det, res)}")
    else:
        out.append(f"- **Duration:** from {_hm(f.detected_ms)} UTC; not resolved when this draft was written{cite(det)}")
    fr = impact.get("failed requests")
    acc = impact.get("accounts affected")
    if acc is not None and acc.count:
        out.append(f"- **Impact:** {int(acc.count)} / {int(acc.total or 0)} accounts affected ({100 * acc.count / (acc.total or 1):.1f}%): delayed messages{cite(*acc.origins[:2])}")
    elif fr is not None:
        out.append(f"- **Impact:** {int(fr.count or 0):,} / {int(fr.total or 0):,} requests failed ({100 * (fr.count or 0) / (fr.total or 1):.1f}%) at {f.service if f.entity_kind != 'region' else 'the edge'}{cite(*fr.origins[:1])}")
    else:
        out.append(f"- **Impact:** {PLACEHOLDER}: the data has no request or account figures")
    out.append("")
    summary = [
        f"{f.summary} at {_hms(f.detected_ms)} UTC{cite(det)}.",
    ]
    if fa is not None and ttd is not None and ttd.data_ms is not None:
        summary.append(f"The data shows the first anomaly at {_hms(fa.at_ms)} UTC, {_dur(ttd.data_ms)} before the alert: {fa.series} reached {fa.value:g} against a baseline of {fa.baseline:g}{cite(fa.origin)}.")
    if top is not None:
        summary.append(f"The service that failed first, from traces and the order of first errors, was {top.service}{cite(*top.evidence[:2])}.")
    if verified is not None and f.mttr_ms is not None:
        how = "automatically" if f.auto_resolved else "after escalation to a human"
        target = f" against a target of {_dur(f.mttr_target_ms)}" if f.mttr_target_ms else ""
        summary.append(f"It was resolved {how} at {_hms(resolved)} UTC with an MTTR of {_dur(f.mttr_ms)}{target}{cite(res)}.")
    out.append(" ".join(summary))
    out.append("")

    # ------------------------------------------------------------ 2. timeline
    out.append(heading(2))
    out.append("")
    events: list[tuple[int, str]] = []
    for p in tl.phases:
        refs = [cite.o(o) for o in p.evidence[:2]]
        snap = "; ".join(f"{k} {v:g}" for k, v in p.snapshot.items() if v is not None)
        text = f"{p.name}: {p.what}" + (f" ({snap})" if snap and p.name != "BASELINE" else "")
        events.append((p.at_ms, f"- {_hms(p.at_ms)} UTC  {text}" + (f" [{'; '.join(x for x in refs if x)}]" if any(refs) else f" [{_span_ref(tl, cite)}]")))
        for e in p.during:  # an acknowledgement: inside the phase, starting none
            events.append((e.at_ms, f"- {_hms(e.at_ms)} UTC  {e.text}{cite(e.origin)}"))
    for e in tl.unexplained:
        if e.kind != "errors":
            events.append((e.at_ms, f"- {_hms(e.at_ms)} UTC  {e.text}{cite(e.origin)}"))
    for _, line in sorted(events, key=lambda x: x[0]):
        out.append(line)
    out.append("")
    out.append("Sources used:")
    out.append("")
    c = tl.counts
    out.append(f"- [x] Receipts from the signed ledger ({c.get('receipts', 0)}){cite(det)}")
    out.append(f"- [{'x' if c.get('log_records') else ' '}] Logs ({c.get('log_records', 0)} records in the window)")
    out.append(f"- [{'x' if c.get('traces') else ' '}] Traces ({c.get('traces', 0)} traces in the window)")
    out.append(f"- [{'x' if c.get('metric_samples') else ' '}] Metrics ({c.get('metric_samples', 0)} samples" + (f", every {tl.metric_interval_ms // 1000} s" if tl.metric_interval_ms else "") + ")")
    for s in TEMPLATE_SOURCES:
        out.append(f"- [ ] {s}")
    out.append("")
    out.append("Validation of the reconstructed timeline (part 1 section 8):")
    out.append("")
    for chk in tl.checks:
        refs = cite(*chk.evidence[:2]) if chk.evidence else ""
        out.append(f"- [{'x' if chk.status == 'ok' else ' '}] {chk.name} ({chk.status}): {chk.detail}{refs}")
    if tl.chart:
        out.append("")
        out.append(f"Chart: {tl.chart_title}")
        out.append("")
        out.append("```text")
        out += tl.chart
        out.append("```")
    out.append("")

    # ------------------------------------------------------------ 3. five whys
    out.append(heading(3))
    out.append("")
    symptom = f.rule or f.summary
    out.append(f"**Chain 1: why did {f.incident_type} fire on {f.entity or f.service}?**")
    out.append("")
    out.append(f"- Q1: Why did the incident fire? A1: The detection rule '{symptom}' held on {f.entity}: {f.signal} was {f.value:g} at {_hms(f.detected_ms)} UTC{cite(det)}." if f.value is not None and f.signal else f"- Q1: Why did the incident fire? A1: {f.summary}{cite(det)}.")
    if top is not None and top.reasons:
        out.append(f"- Q2: Why did {f.signal or 'the signal'} move? A2: {top.service} failed first: {top.reasons[0]}{cite(top.evidence[0] if top.evidence else None)}.")
    elif fa is not None:
        out.append(f"- Q2: Why did {f.signal or 'the signal'} move? A2: {fa.series} left its baseline first, at {_hms(fa.at_ms)} UTC{cite(fa.origin)}.")
    else:
        out.append(f"- Q2: Why did {f.signal or 'the signal'} move? A2: {PLACEHOLDER}: the data shows no anomaly before the alert.")
    trigger = [e for e in tl.unexplained if e.kind in ("deploy", "config", "feature flag", "chaos") and fa is not None and e.at_ms <= fa.at_ms + 60_000]
    if trigger:
        e = trigger[-1]
        out.append(f"- Q3: Why did {top.service if top else f.service} fail? A3: A change came just before: {e.text} at {_hms(e.at_ms)} UTC{cite(e.origin)}; the fix that worked points the same way: {hint_words}{cite(res)}.")
    elif verified is not None:
        out.append(f"- Q3: Why did {top.service if top else f.service} fail? A3: The fix that worked points at {hint_words}{cite(res)}.")
    else:
        out.append(f"- Q3: Why did {top.service if top else f.service} fail? A3: {PLACEHOLDER}")
    out.append(f"- Q4: Why was that possible? A4: {PLACEHOLDER}")
    out.append(f"- Q5: Why was it not prevented or caught earlier? A5: {PLACEHOLDER}")
    out.append(f"- ROOT CAUSE: {hint_words} (to be confirmed by the review){cite(res)}")
    out.append("")
    out.append("### Contributing factors")
    out.append("")
    factors = []
    if ttd is not None and ttd.data_ms is not None and ttd.receipt_ms is not None and ttd.data_ms > ttd.receipt_ms + (tl.metric_interval_ms or 10_000):
        factors.append(f"- The anomaly was visible {_dur(ttd.data_ms)} before the alert, while the detection receipt counts {_dur(ttd.receipt_ms)}{cite(fa.origin if fa else None, det)}")
    for e in tl.unexplained:
        factors.append(f"- {e.text[0].upper()}{e.text[1:]} at {_hms(e.at_ms)} UTC{cite(e.origin)}")
    crossing = next((c for c in tl.checks if c.name.startswith("threshold crossing") and c.status == "warn"), None)
    if crossing is not None:
        factors.append(f"- The detection receipt and the metrics disagree: {crossing.detail}{cite(*crossing.evidence[:2])}")
    out += factors or [f"- {PLACEHOLDER}"]
    out.append("")
    where = top.service if top else f.service
    out.append(f"**Root cause statement:** {where} failed first with {hint_words}; the {f.incident_type} on {f.entity} followed{cite(res, top.evidence[0] if top and top.evidence else None)}.")
    out.append("")
    out.append("_The statement above is drafted from the record: to be confirmed or rewritten by the review._")
    out.append("")

    # ------------------------------------------------------------ 4. went well
    out.append(heading(4))
    out.append("")
    well = [f"- [x] Detected automatically by the runbook rule '{symptom}' ({runbook_name}){cite(det)}"]
    for a in assessed:
        eff = str(a.evidence.get("effectiveness") or "")
        if eff in ("successful", "in_progress"):
            well.append(f"- [x] {a.evidence.get('action')} worked: assessed '{eff}' {_metrics_delta(a.evidence)}{cite(a.receipt_id)}")
    if f.met_mttr_target:
        well.append(f"- [x] MTTR {_dur(f.mttr_ms)} met the {_dur(f.mttr_target_ms)} target{cite(res)}")
    if f.auto_resolved:
        well.append(f"- [x] Resolved by the runbook without paging a human{cite(res)}")
    if receipts and all(r.verified for r in receipts):
        well.append(f"- [x] All {len(receipts)} receipts verified when this draft was written{cite(det, res)}")
    out += well
    out.append("")

    # ------------------------------------------------------------ 5. went wrong
    out.append(heading(5))
    out.append("")
    wrong = []
    if ttd is not None and ttd.data_ms is not None and fa is not None and ttd.data_ms > (tl.metric_interval_ms or 10_000):
        sustain = f" (the rule waits {f.sustain_s} s by design)" if f.sustain_s else ""
        wrong.append(f"- [x] {_dur(ttd.data_ms)} passed between the first anomaly in the data and the alert{sustain}{cite(fa.origin, det)}")
    for a in assessed:
        eff = str(a.evidence.get("effectiveness") or "")
        if eff == "failed":
            wrong.append(f"- [x] {a.evidence.get('action')} did not help: assessed 'failed' {_metrics_delta(a.evidence)}{cite(a.receipt_id)}")
    for r in applied:
        if r.kind == MITIGATION_FAILED:
            wrong.append(f"- [x] {r.summary}{cite(r.receipt_id)}")
    for r in escalations:
        wrong.append(f"- [x] Escalated to a human: {r.summary}{cite(r.receipt_id)}")
    if f.met_mttr_target is False:
        wrong.append(f"- [x] MTTR {_dur(f.mttr_ms)} missed the {_dur(f.mttr_target_ms)} target{cite(res)}")
    for e in tl.unexplained:
        wrong.append(f"- [x] {e.text[0].upper()}{e.text[1:]}{cite(e.origin)}")
    bad = [r for r in receipts if not r.verified]
    for r in bad:
        wrong.append(f"- [x] Receipt {r.kind} does not verify: {r.verification}{cite(r.receipt_id)}")
    out += wrong or [f"- [ ] {PLACEHOLDER}: nothing in the record went wrong; the review adds what people saw"]
    out.append("")

    # ------------------------------------------------------------ 6. action items
    base_ms = resolved if resolved is not None else f.detected_ms
    actions = _actions(tl, st, similar, base_ms)
    out.append(heading(6))
    out.append("")
    for prio in PRIORITIES:
        label = {"High": "High (within 1 week)", "Medium": "Medium (within 1 month)", "Low": "Low (within 3 months)"}[prio]
        out.append(f"### {label}")
        out.append("")
        mine = [a for a in actions if a.priority == prio]
        out += [a.line() for a in mine] or ["- None suggested."]
        out.append("")

    # ------------------------------------------------------------ 7. metrics
    out.append(heading(7))
    out.append("")
    out.append("| Metric | Value | Evidence |")
    out.append("|---|---|---|")
    if resolved is not None:
        out.append(f"| Duration | {_dur(resolved - f.detected_ms)} ({_hms(f.detected_ms)} to {_hms(resolved)} UTC) |{cite(det, res)} |")
    if acc is not None and acc.count:
        out.append(f"| Accounts Affected | {int(acc.count)} / {int(acc.total or 0)} ({100 * acc.count / (acc.total or 1):.1f}%): {_cell(acc.text)} |{cite(*acc.origins[:2])} |")
    else:
        out.append(f"| Accounts Affected | {PLACEHOLDER}: requests in the data carry no account |  |")
    if fr is not None:
        out.append(f"| Failed Requests | {_cell(fr.text)} |{cite(*fr.origins[:1])} |")
    if tl.peak is not None:
        out.append(f"| Peak {_cell(tl.peak.text.removeprefix('peak '))} | at {_hms(tl.peak.at_ms)} UTC |{cite(tl.peak.origin)} |")
    out.append(f"| Revenue Impact ($) | {PLACEHOLDER} |  |")
    if mttr is not None and (mttr.receipt_ms is not None or mttr.data_ms is not None):
        met = " (met)" if f.met_mttr_target else (" (missed)" if f.met_mttr_target is False else "")
        out.append(f"| MTTR vs target | {_dur(mttr.receipt_ms)} vs {_dur(f.mttr_target_ms)}{met}; {_dur(mttr.data_ms)} from the data |{cite(res)} |")
    if ttd is not None:
        out.append(f"| Time to detect | {_dur(ttd.data_ms)} from the data (first anomaly to alert); {_dur(ttd.receipt_ms)} in the detection receipt |{cite(fa.origin if fa else None, det)} |")
    tm = tl.duration("time to mitigate")
    if tm is not None and tm.receipt_ms is not None:
        first = applied[0].receipt_id if applied else None
        out.append(f"| Time to mitigate | {_dur(tm.receipt_ms)} (detection to first action) |{cite(det, first)} |")
    out.append(f"| Customer Complaints | {PLACEHOLDER} |  |")
    out.append(f"| Data Loss | {PLACEHOLDER} |  |")
    if previous is not None:
        out.append(
            f"| Previous incident | {previous.incident_id} detected {iso_utc(previous.detected_at_ms)[:16]}Z, MTTR {_dur(previous.mttr_ms)} |{cite(previous.incident_id)} |"
        )
    elif (earlier := [h for h in similar if str(h.date) < _day(f.detected_ms)]):
        h = max(earlier, key=lambda x: str(x.date))
        out.append(f"| Previous incident | {h.date} {_cell(h.title)} (MTTR {h.mttr_min} min) | [knowledge {h.entry_id}] |")
    else:
        out.append("| Previous incident | none of this type in the ledger or the knowledge base |  |")
    if due is not None:
        out.append(f"| PIR due | {iso_utc(due)[:16]}Z ({f.severity}: {(due - (resolved or 0)) // 3_600_000} h after resolution) | [runbooks/severity.toml] |")
    out.append("")

    # ------------------------------------------------------------ 8. follow-up
    out.append(heading(8))
    out.append("")
    out.append("| Item | Owner | Due Date | Status |")
    out.append("|---|---|---|---|")
    review_due = _day(due) if due is not None else _day(base_ms + st.horizons["High"] * 86_400_000)
    out.append(f"| Confirm the root cause and answer whys 4 and 5 | Incident Commander | {review_due} | Not Started |")
    out.append(f"| Fill in the impact figures the data cannot give (revenue, complaints, data loss) | Incident Commander | {review_due} | Not Started |")
    for e in tl.unexplained[:3]:
        out.append(f"| Explain: {_cell(e.text)} ({_hms(e.at_ms)} UTC) | {st.draft.default_owner} | {review_due} | Not Started |")
    out.append("")
    out.append('"Complete" requires review, tests, deploy, monitoring and docs.')
    out.append("")

    # ------------------------------------------------------------ 9. lessons
    out.append(heading(9))
    out.append("")
    lessons = []
    if fa is not None and ttd is not None and ttd.data_ms is not None and ttd.data_ms > (tl.metric_interval_ms or 10_000):
        lessons.append(f"- {fa.series} moved {_dur(ttd.data_ms)} before the alert: it is a candidate early-warning signal{cite(fa.origin)}.")
    if top is not None and f.service and top.service != f.service:
        lessons.append(f"- The alert fired on {f.service}, but {top.service} failed first: look downstream first for this kind of incident{cite(*top.evidence[:1])}.")
    lessons.append(f"- {PLACEHOLDER}: what the responders learned.")
    out += lessons
    out.append("")

    # ------------------------------------------------------------ 10. sign-off
    out.append(heading(10))
    out.append("")
    out.append("| Role | Name | Date |")
    out.append("|---|---|---|")
    for role in ("Incident Commander", "Tech Lead", "Manager"):
        out.append(f"| {role} |  |  |")
    out.append("")
    out.append("Status: DRAFT")
    out.append("")

    # ------------------------------------------------------------ receipts cited
    out.append("## Receipts Cited")
    out.append("")
    out.append(f"Verification state at drafting time ({iso_utc(now_ms)}):")
    out.append("")
    out.append("| Receipt | Kind | Observed (UTC) | Verification |")
    out.append("|---|---|---|---|")
    by_id = {r.receipt_id: r for r in tl.receipts}
    for rid in sorted(cite.used, key=lambda x: (by_id[x].seq if x in by_id else 1 << 60, x)):
        r = by_id.get(rid)
        if r is None:
            continue
        out.append(f"| {r.receipt_id} | {r.kind} | {iso_utc(r.observed_ms)} | {r.verification} |")
    text = "\n".join(out).rstrip() + "\n"
    cited = [by_id[x] for x in cite.used if x in by_id]
    return PirDraft(f.incident_id, title, f.severity, f.incident_type, f.detected_ms, resolved, due, now_ms, text, cited, actions)


def _span_ref(tl: Timeline, cite: _Cite) -> str:
    """A citation for a phase placed by the data without its own origin line."""
    return cite.r(tl.incident.detection_receipt) if tl.incident and tl.incident.detection_receipt else "data"


def _metrics_delta(ev: dict[str, Any]) -> str:
    before, after = ev.get("metrics_before"), ev.get("metrics_after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    keys = [k for k in ("depth", "error_pct", "p99_ms", "edge_error_pct", "error_5xx_pct", "state") if k in before and k in after][:2]
    if not keys:
        return ""
    return "(" + ", ".join(f"{k} {before[k]} -> {after[k]}" for k in keys) + ")"


def _actions(tl: Timeline, st: PirSettings, similar: Sequence[Any], base_ms: int) -> list[ActionItem]:
    """Suggested action items: timeline findings, the prevention strategies of this incident
    type, and prevention items of similar past incidents in the knowledge base."""
    f = tl.incident
    assert f is not None

    def due(prio: str) -> str:
        return _day(base_ms + st.horizons[prio] * 86_400_000)  # type: ignore[index]

    out: list[ActionItem] = []
    ttd = tl.duration("time to detect")
    fa = tl.first_anomaly
    interval = tl.metric_interval_ms or 10_000
    late = ttd.data_ms - (ttd.receipt_ms or 0) if ttd is not None and ttd.data_ms is not None else None
    if fa is not None and late is not None and late > 2 * interval:
        out.append(
            ActionItem(
                "High",
                f"Alert earlier on {fa.series}",
                f"the alert came {_dur(ttd.data_ms)} after it left its baseline",
                f"page when it passes {fa.threshold:g} for 2 samples",
                "SRE",
                "S",
                f"detection up to {_dur(ttd.data_ms)} sooner",
                due("High"),
                fa.origin.ref(tl.sources_root),
            )
        )
    kinds = sorted({e.kind for e in tl.unexplained if e.kind in ("deploy", "config", "feature flag", "scaling", "chaos")})
    if kinds:
        first = next(e for e in tl.unexplained if e.kind in kinds)
        out.append(
            ActionItem(
                "Medium",
                f"Record every {', '.join(kinds)} change as a signed receipt",
                f"{len([e for e in tl.unexplained if e.kind in kinds])} change(s) in the logs have no receipt",
                "changes go through the engine (ggen mitigation/chaos commands) so they appear in timelines",
                "Platform",
                "M",
                "no unexplained change in the next incident timeline",
                due("Medium"),
                first.origin.ref(tl.sources_root),
            )
        )
    for p in st.prevention:
        if p.incident_type == f.incident_type:
            out.append(ActionItem(p.priority, p.strategy, p.current, p.action, p.owner, p.effort, p.expected, due(p.priority), "runbooks/pir/pir.toml"))
    taken = 0
    for h in similar:
        for item in h.prevention[:1]:
            if taken >= st.draft.knowledge_actions:
                break
            text = item.strip().rstrip(".")
            out.append(ActionItem("Low", f"Prevention from a similar past incident ({h.date})", "not in place here", text, st.draft.default_owner, "M", "the same cause does not recur", due("Low"), f"knowledge {h.entry_id}"))
            taken += 1
    return out


def write_draft(draft: PirDraft, path: Path, *, force: bool = False) -> Path:
    """Write the draft (refusing to replace an existing file unless ``force``); returns ``path``."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (a draft may hold the review's edits); pass --force to replace it or --output for another file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(draft.text, encoding="utf-8")
    tmp.replace(path)
    return path


def create_pir(
    db_path: Path | str,
    ledger: Any,
    incident_id: str,
    title: str,
    *,
    now_ms: int,
    anchors: Any = None,
    data_dir: Any = None,
    policy: Any = None,
    settings: PirSettings | None = None,
    knowledge: bool = True,
) -> tuple[PirDraft, Timeline]:
    """Reconstruct the incident's timeline and draft its PIR. Without ingested data for the
    window, the draft is built from the receipts alone (and says so). ``knowledge`` False skips
    the knowledge-base lookup."""
    from analyzer.timeline import TimelineNotFound, reconstruct_timeline, receipts_timeline
    from analyzer.timeline.receipts import find_incident_id

    if policy is None:
        from engine.policy.bundle import load_policy

        policy = load_policy()
    st = settings or load_pir_settings()
    iid = find_incident_id(ledger, incident_id)
    try:
        tl = reconstruct_timeline(db_path, incident_id=iid, ledger=ledger, anchors=anchors, policy=policy)
    except TimelineNotFound as exc:
        tl = receipts_timeline(ledger, iid, anchors)
        tl.notes.append(f"drafted from the receipts alone: {exc}")
    f = tl.incident
    assert f is not None
    similar: list[Any] = []
    if knowledge and st.draft.similar_incidents:
        try:
            from analyzer.knowledge import similar_incidents

            signals: dict[str, Any] = {"service": f.service, "root_cause_hint": f.root_cause_hint}
            if tl.causes:
                signals["affected_service"] = tl.causes[0].service
            hits = list(similar_incidents(f.incident_type, signals, limit=st.draft.similar_incidents * 3, data_dir=data_dir, exclude=[f.incident_id]))
            same = [h for h in hits if f.incident_type in h.incident_types]
            similar = (same or hits)[: st.draft.similar_incidents]
        except Exception as exc:  # the knowledge base is a bonus: a broken one must not stop a PIR
            tl.notes.append(f"knowledge base not consulted: {exc}")
    previous = None
    try:
        from engine.receipts.summary import incidents_from_ledger

        same = [s for s in incidents_from_ledger(ledger) if s.incident_type == f.incident_type and s.incident_id != f.incident_id and s.detected_at_ms is not None and s.detected_at_ms < f.detected_ms]
        previous = max(same, key=lambda s: s.detected_at_ms or 0) if same else None
    except Exception as exc:
        tl.notes.append(f"previous incidents not read: {exc}")
    return draft_pir(tl, title, policy=policy, settings=st, similar=similar, previous=previous, now_ms=now_ms), tl


__all__ = ["ActionItem", "PirDraft", "create_pir", "draft_pir", "due_ms", "write_draft"]
