"""Incidents as the ledger tells them: receipts folded into one summary per incident.

History needs no running engine: everything here is derived from receipt payloads. Severity is
both the highest reached and the current one; MTTR is ``recovered_at - detected_at``, where
``recovered_at`` is the start of the recovery window that held (``evidence.recovered_at_ms`` or
``evidence.recovered_at`` of the ``recovery.verified`` receipt; its ``observed_at`` when absent).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from engine.clock import iso_utc
from engine.events import ACKNOWLEDGED, DETECTED, ESCALATED, NOTE, RECOVERY_VERIFIED

from .verify import time_ms

SEVERITY_RANK = {"Sev1": 1, "Sev2": 2, "Sev3": 3, "Sev4": 4}
STATUSES = ("open", "escalated", "resolved")


@dataclass
class IncidentSummary:
    """One incident folded from its receipts (in ledger order)."""

    incident_id: str
    incident_type: str | None = None
    service: str | None = None
    region: str | None = None
    severity: str | None = None  # the highest reached
    current_severity: str | None = None
    status: str = "open"
    summary: str = ""
    detected_at_ms: int | None = None
    acknowledged_at_ms: int | None = None
    escalated_at_ms: int | None = None
    recovered_at_ms: int | None = None
    resolved_at_ms: int | None = None
    last_activity_ms: int | None = None
    receipt_count: int = 0
    receipt_ids: list[str] = field(default_factory=list)
    # When the engine that watched it stopped with the incident still open (its last receipt is
    # the engine's "unwatched" note); None while an engine watches it or once it is resolved.
    unwatched_since_ms: int | None = None

    @property
    def mttr_ms(self) -> int | None:
        if self.recovered_at_ms is None or self.detected_at_ms is None:
            return None
        return max(0, self.recovered_at_ms - self.detected_at_ms)

    def to_json(self) -> dict[str, Any]:
        def t(ms: int | None) -> str | None:
            return None if ms is None else iso_utc(ms)

        return {
            "incident_id": self.incident_id,
            "incident_type": self.incident_type,
            "severity": self.severity,
            "current_severity": self.current_severity,
            "service": self.service,
            "region": self.region,
            "status": self.status,
            "summary": self.summary,
            "detected_at": t(self.detected_at_ms),
            "acknowledged_at": t(self.acknowledged_at_ms),
            "escalated_at": t(self.escalated_at_ms),
            "recovered_at": t(self.recovered_at_ms),
            "resolved_at": t(self.resolved_at_ms),
            "last_activity_at": t(self.last_activity_ms),
            "mttr_ms": self.mttr_ms,
            "receipt_count": self.receipt_count,
            "unwatched_since": t(self.unwatched_since_ms),
        }


def _higher(a: str | None, b: str | None) -> str | None:
    """The more severe of two severities (Sev1 is the highest); unknown names rank lowest."""
    if a is None:
        return b
    if b is None:
        return a
    return a if SEVERITY_RANK.get(a, 99) <= SEVERITY_RANK.get(b, 99) else b


def _ms(payload: Mapping[str, Any], key: str) -> int | None:
    v = payload.get(key)
    if not isinstance(v, str):
        return None
    try:
        return time_ms(v)
    except ValueError:
        return None


def _recovered_at(evidence: Any, fallback: int | None) -> int | None:
    """Start of the recovery window that held: ``recovered_at_ms`` (int) or ``recovered_at``
    (RFC 3339) in the evidence, else the resolution receipt's own time."""
    if isinstance(evidence, Mapping):
        ms = evidence.get("recovered_at_ms")
        if isinstance(ms, int) and not isinstance(ms, bool):
            return ms
        text = evidence.get("recovered_at")
        if isinstance(text, str):
            try:
                return time_ms(text)
            except ValueError:
                pass
    return fallback


def summarize_incidents(payloads: Iterable[Mapping[str, Any]]) -> list[IncidentSummary]:
    """Fold receipt payloads (in ledger order) into incident summaries, in order of detection."""
    incidents: dict[str, IncidentSummary] = {}
    for p in payloads:
        iid = p.get("incident_id")
        if not isinstance(iid, str):
            continue
        s = incidents.get(iid)
        if s is None:
            s = incidents[iid] = IncidentSummary(incident_id=iid)
        kind = p.get("kind")
        observed = _ms(p, "observed_at")
        s.receipt_count += 1
        rid = p.get("receipt_id")
        if isinstance(rid, str):
            s.receipt_ids.append(rid)
        for attr in ("incident_type", "service", "region"):
            v = p.get(attr)
            if isinstance(v, str) and v and getattr(s, attr) is None:
                setattr(s, attr, v)
        sev = p.get("severity")
        if isinstance(sev, str) and sev:
            s.severity = _higher(s.severity, sev)
            s.current_severity = sev
        if observed is not None:
            s.last_activity_ms = observed if s.last_activity_ms is None else max(s.last_activity_ms, observed)
        evidence = p.get("evidence")
        if kind == NOTE and isinstance(evidence, Mapping) and evidence.get("unwatched") is True:
            s.unwatched_since_ms = observed
        else:
            s.unwatched_since_ms = None  # anything later means something watches it again
        if kind == DETECTED:
            s.detected_at_ms = observed
            if isinstance(p.get("summary"), str):
                s.summary = p["summary"]
        elif kind == ACKNOWLEDGED and s.acknowledged_at_ms is None:
            s.acknowledged_at_ms = observed
        elif kind == ESCALATED:
            if s.escalated_at_ms is None:
                s.escalated_at_ms = observed
            if s.status != "resolved":
                s.status = "escalated"
        elif kind == RECOVERY_VERIFIED:
            s.status = "resolved"
            s.unwatched_since_ms = None
            s.resolved_at_ms = observed
            s.recovered_at_ms = _recovered_at(p.get("evidence"), observed)
    return list(incidents.values())


def incidents_from_ledger(ledger: Any, since_ms: int | None = None) -> list[IncidentSummary]:
    """Summaries of the incidents active at or after ``since_ms`` (and every unresolved one)."""
    out: list[IncidentSummary] = []
    for iid in ledger.incident_ids(since_ms):
        payloads = []
        for rec in ledger.incident_receipts(iid):
            try:
                payloads.append(rec.payload())
            except Exception:  # a damaged receipt still counts; verify reports what is wrong with it
                payloads.append({"incident_id": iid, "kind": rec.kind, "observed_at": iso_utc(rec.observed_at_ms)})
        out.extend(summarize_incidents(payloads))
    return out
