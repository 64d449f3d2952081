"""PIR drafts from the console: the analyzer's drafter when it is installed, the facts otherwise.

:func:`draft_for` asks ``analyzer.pir.draft.create_pir`` (the same drafter as ``ggen pir
create``: it reconstructs the timeline from the signed receipts and any ingested data). When that
package is missing or fails, the console writes the incident's facts from the live engine in the
PIR's shape (YAML front matter and the ten numbered sections), with the parts only people can
write left as prompts, and says why. ``PIR_DRAFTER`` is a hook that overrides both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from analyzer.pir.template import PIR_SECTIONS
from engine.clock import iso_utc

SECTIONS = PIR_SECTIONS


@dataclass
class PirFacts:
    """Everything the engine knows about one incident, copied out of it under its lock."""

    incident: dict[str, Any]  # Incident.summary()
    events: list[dict[str, Any]]  # IncidentEvent.to_dict()-like: at_ms, kind, actor, summary, data
    runbook_title: str
    mttr_target_s: int
    pir_due_s: int
    ack_within_s: int
    notifications: list[dict[str, Any]] = field(default_factory=list)


# The hook: a drafter of one's own (Callable[[PirFacts], str]) used before anything else.
PIR_DRAFTER: Callable[[PirFacts], str] | None = None


def collect_facts(session: Any, incident_id: str) -> PirFacts:
    """Copy one incident's facts from the session's engine (in this process or attached)."""
    d = session.incident_facts(incident_id)
    return PirFacts(d["incident"], d["events"], d["runbook_title"], d["mttr_target_s"], d["pir_due_s"], d["ack_within_s"], d["notifications"])


def draft_for(session: Any, incident_id: str) -> tuple[str, str]:
    """(Markdown, where it came from) for one incident of a running session."""
    facts = collect_facts(session, incident_id)
    if PIR_DRAFTER is not None:
        return PIR_DRAFTER(facts), "the configured PIR drafter"
    try:
        drafted = analyzer_draft(session, facts)
    except Exception as exc:  # the facts are still worth showing
        return facts_markdown(facts), f"incident facts (the analyzer's PIR drafter failed: {type(exc).__name__}: {exc})"
    if drafted is None:
        return facts_markdown(facts), "incident facts (the analyzer's PIR drafter is not installed)"
    return drafted, "the analyzer's PIR drafter (signed receipts and reconstructed timeline)"


def analyzer_draft(session: Any, facts: PirFacts) -> str | None:
    """The analyzer's draft from the session's ledger, or None when the analyzer has no drafter."""
    try:
        from analyzer.pir.draft import create_pir
    except ImportError:
        return None
    dd = session.data_dir
    if dd is None or not dd.ledger_path.exists():
        return None
    from engine.receipts import KeyStore, Ledger

    ledger = Ledger(dd.ledger_path, readonly=True)
    try:
        anchors = KeyStore.open(dd.keys_dir).anchors()
        draft, _ = create_pir(dd.analyzer_db_path, ledger, facts.incident["id"], facts.incident["title"], now_ms=session.now_ms, anchors=anchors, data_dir=dd, policy=session.policy)
    finally:
        ledger.close()
    return str(draft.text)


def _dur(ms: int | None) -> str:
    if ms is None:
        return "n/a"
    s = ms // 1000
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def facts_markdown(f: PirFacts) -> str:
    """The incident's facts in the shape of a PIR draft (status DRAFT)."""
    i = f.incident
    t0 = i["detected_at_ms"]
    front = {
        "incident_id": i["id"],
        "title": i["title"],
        "severity": i["max_severity"],
        "incident_type": i["type"],
        "status": "DRAFT",
        "detected_at": iso_utc(i["detected_at_ms"]),
        "resolved_at": iso_utc(i["resolved_at_ms"]) if i["resolved_at_ms"] else None,
        "service": i["service"],
        "region": i["region"],
        "runbook": i["runbook"],
    }
    out = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# PIR draft: {i['title']}", ""]
    resolved = i["state"] == "resolved"
    auto = resolved and i["escalated_at_ms"] is None
    body: dict[str, list[str]] = {s: [] for s in SECTIONS}
    body[SECTIONS[0]] += [
        f"- **What**: {f.runbook_title} ({i['type']}) on `{i['entity']}` (service `{i['service']}`, region `{i['region']}`).",
        f"- **Severity**: {i['max_severity']} at its highest, {i['severity']} now.",
        f"- **Status**: {i['state']}" + (" (resolved automatically)" if auto else (" (escalated to a human)" if i["escalated_at_ms"] else "")) + ".",
        f"- **Affected**: {', '.join(i['affected']) or 'no other service recorded'}.",
        "- **Customer impact**: _to be written by the investigator_.",
    ]
    for e in f.events:
        body[SECTIONS[1]].append(f"- T+{(e['at_ms'] - t0) // 1000} s ({iso_utc(e['at_ms'])}) `{e['kind']}` by {e['actor']}: {e['summary']}")
    cause = next((e["data"].get("root_cause") for e in f.events if e["kind"] == "recovery.verified" and e["data"].get("root_cause")), None)
    body[SECTIONS[2]] += [
        f"- Engine's hint from the actions that worked: **{cause or 'unknown (not resolved yet)'}** (a hint, not a verdict).",
        f"- Detection rule: `{next((e['data'].get('rule') for e in f.events if e['kind'] == 'incident.detected'), 'n/a')}`.",
        "- Why 1-5: _to be written_.",
    ]
    good = [e for e in f.events if e["kind"] in ("mitigation.applied", "recovery.verified") or (e["kind"] == "mitigation.assessed" and e["data"].get("effectiveness") == "successful")]
    bad = [e for e in f.events if e["kind"] in ("mitigation.failed", "mitigation.refused", "incident.escalated") or (e["kind"] == "mitigation.assessed" and e["data"].get("effectiveness") == "failed")]
    body[SECTIONS[3]] += [f"- {e['summary']}" for e in good] or ["- _nothing recorded_"]
    body[SECTIONS[4]] += [f"- {e['summary']}" for e in bad] or ["- _nothing recorded_"]
    body[SECTIONS[5]] += ["- [ ] _owner, action, due date_"]
    mttr = i["mttr_ms"]
    body[SECTIONS[6]] += [
        f"- Time to detect: {_dur(i['time_to_detect_ms'])} (first anomaly {iso_utc(i['first_anomaly_ms'])}).",
        f"- Time to first mitigation: {_dur(i['time_to_mitigation_ms'])}.",
        f"- MTTR: {_dur(mttr)} (runbook target {_dur(f.mttr_target_s * 1000)}){'; met' if mttr is not None and mttr <= f.mttr_target_s * 1000 else ''}.",
        f"- Acknowledged: {i['acknowledged_by'] or 'no'}" + (f" after {_dur(i['acknowledged_at_ms'] - (i['escalated_at_ms'] or t0))} (SLA {_dur(f.ack_within_s * 1000)})" if i["acknowledged_at_ms"] else "") + ".",
        f"- Notifications sent: {len(f.notifications)} ({sum(1 for n in f.notifications if n['kind'] == 'page')} pages).",
    ]
    body[SECTIONS[7]] += [f"- PIR due {_dur(f.pir_due_s * 1000)} after resolution." if f.pir_due_s else "- PIR optional at this severity."]
    body[SECTIONS[8]] += ["- _to be written_"]
    body[SECTIONS[9]] += ["- Incident commander: _name_", "- Reviewed by: _name_"]
    for s in SECTIONS:
        out += [f"## {s}", "", *body[s], ""]
    return "\n".join(out)
