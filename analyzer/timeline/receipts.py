"""An incident as its signed receipts tell it, with each receipt's verification state."""
from __future__ import annotations

from typing import Any, Iterable

from analyzer.timeline.model import IncidentFacts, ReceiptRef, TimelineError, TimelineNotFound
from engine.events import DETECTED, ESCALATED, MITIGATION_APPLIED, MITIGATION_FAILED, RECOVERY_VERIFIED
from engine.receipts.verify import time_ms

ENTITY_KIND = {
    "queue_backlog_overflow": "queue",
    "circuit_breaker_opened": "circuit",
    "latency_spike": "service",
    "error_rate_spike": "service",
    "region_failover": "region",
}


def _ms(payload: dict[str, Any], key: str) -> int | None:
    v = payload.get(key)
    if isinstance(v, str):
        try:
            return time_ms(v)
        except ValueError:
            return None
    return None


def _recovered_at(evidence: dict[str, Any], fallback: int) -> int:
    """Start of the recovery window that held (``recovered_at_ms`` or ``recovered_at`` in the
    resolution evidence), else the resolution receipt's own time (as engine.receipts.summary)."""
    ms = evidence.get("recovered_at_ms")
    if isinstance(ms, int) and not isinstance(ms, bool):
        return ms
    return _ms(evidence, "recovered_at") or fallback


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def find_incident_id(ledger: Any, text: str) -> str:
    """The incident named by an id, a unique 8+ hex prefix, or any of its receipts' ids."""
    from engine.receipts.ledger import AmbiguousId, LedgerError

    try:
        return ledger.find_incident(text)
    except AmbiguousId as exc:
        raise TimelineError(str(exc)) from None
    except LedgerError as exc:
        raise TimelineNotFound(f"{exc} in the ledger {ledger.path}") from None


def load_receipts(ledger: Any, incident_ids: Iterable[str], anchors: Any = None) -> list[ReceiptRef]:
    """The receipts of these incidents in ledger order, each with its verification state
    (``anchors`` is the trusted key set; without one nothing can be verified and each says so)."""
    from engine.receipts.verify import verify_ledger

    stored = []
    for iid in incident_ids:
        stored += ledger.incident_receipts(iid)
    stored.sort(key=lambda r: r.seq)
    states: dict[int, str] = {}
    if stored:
        if anchors is None or not anchors:
            states = {r.seq: "not verified: no trusted key" for r in stored}
        else:
            report = verify_ledger(ledger, anchors, receipt_seqs=[r.seq for r in stored], scope="incident")
            general = [f for f in report.failures if f.seq is None]
            for r in stored:
                own = report.failures_for(r.seq)
                if own:
                    states[r.seq] = f"failed: {own[0].reason}"
                elif general:
                    states[r.seq] = f"failed: {general[0].reason}"
                else:
                    states[r.seq] = "verified"
    out = []
    for r in stored:
        try:
            p = r.payload()
        except Exception:  # a damaged envelope still shows, with what the columns say
            p = {}
        out.append(
            ReceiptRef(
                receipt_id=r.receipt_id,
                seq=r.seq,
                kind=r.kind,
                observed_ms=r.observed_at_ms,
                summary=str(p.get("summary") or ""),
                actor=str(p.get("actor") or "?"),
                verification=states.get(r.seq, "not verified"),
                incident_id=r.incident_id,
                incident_type=_str(p.get("incident_type")),
                severity=_str(p.get("severity")),
                service=_str(p.get("service")),
                region=_str(p.get("region")),
                evidence=p.get("evidence") if isinstance(p.get("evidence"), dict) else {},
                actions=p.get("actions") if isinstance(p.get("actions"), list) else [],
            )
        )
    return out


def incident_facts(incident_id: str, receipts: list[ReceiptRef]) -> IncidentFacts:
    """Fold one incident's receipts into the figures the timeline compares with the data."""
    mine = [r for r in receipts if r.incident_id == incident_id]
    det = next((r for r in mine if r.kind == DETECTED), None)
    if det is None:
        raise TimelineError(f"incident {incident_id} has no detection receipt in the ledger")
    ev = det.evidence
    itype = det.incident_type or ""
    facts = IncidentFacts(
        incident_id=incident_id,
        incident_type=itype,
        severity=det.severity,
        service=det.service,
        entity=str(ev.get("entity")) if ev.get("entity") is not None else None,
        entity_kind=ENTITY_KIND.get(itype),
        region=det.region,
        summary=det.summary,
        detected_ms=det.observed_ms,
        first_anomaly_ms=_ms(ev, "first_anomaly_at"),
        time_to_detect_ms=_int(ev.get("time_to_detect_ms")),
        rule=ev.get("rule") if isinstance(ev.get("rule"), str) else None,
        signal=ev.get("signal") if isinstance(ev.get("signal"), str) else None,
        threshold=(_int(ev.get("threshold_milli")) or 0) / 1000 if _int(ev.get("threshold_milli")) is not None else None,
        value=(_int(ev.get("value_milli")) or 0) / 1000 if _int(ev.get("value_milli")) is not None else None,
        sustain_s=_int(ev.get("sustain_s")),
        detection_receipt=det.receipt_id,
    )
    for r in mine:
        sev = r.severity
        if isinstance(sev, str) and (facts.severity is None or sev < facts.severity):
            facts.severity = sev  # "Sev1" < "Sev2": the highest reached
        if r.kind in (MITIGATION_APPLIED, MITIGATION_FAILED) and facts.first_action_ms is None:
            facts.first_action_ms = r.observed_ms
        elif r.kind == ESCALATED:
            facts.escalated = True
        elif r.kind == RECOVERY_VERIFIED:
            e = r.evidence
            facts.resolved_ms = _ms(e, "resolved_at") or r.observed_ms
            facts.recovered_ms = _recovered_at(e, r.observed_ms)
            facts.mttr_ms = _int(e.get("mttr_ms"))
            facts.mttr_target_ms = _int(e.get("mttr_target_ms"))
            facts.met_mttr_target = e.get("met_mttr_target") if isinstance(e.get("met_mttr_target"), bool) else None
            facts.root_cause_hint = e.get("root_cause") if isinstance(e.get("root_cause"), str) else None
            facts.auto_resolved = e.get("auto_resolved") if isinstance(e.get("auto_resolved"), bool) else None
            facts.resolution_receipt = r.receipt_id
    if facts.mttr_ms is None and facts.recovered_ms is not None:
        facts.mttr_ms = facts.recovered_ms - facts.detected_ms
    return facts
