"""The incident event log: the single source of truth that receipts sign.

Every fact the engine establishes about an incident (detected, classified, each action with its
before/after metrics, recovering, recovered, escalated, acknowledged) is an :class:`IncidentEvent`.
Events carry integers, strings, booleans, lists and dicts only (no floats): rates are stored as
parts per million (``_ppm``), percentages as basis points (``_bp``), durations as ``_ms``/``_s``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Canonical event kinds. Receipts use the same names.
DETECTED = "incident.detected"
CLASSIFIED = "incident.classified"  # severity raised or lowered after detection
MITIGATION_APPLIED = "mitigation.applied"  # an action ran (automatic or manual; actor says who)
MITIGATION_PLANNED = "mitigation.planned"  # dry-run: the action was planned and recorded, not applied
MITIGATION_REFUSED = "mitigation.refused"  # the safety governor said no
MITIGATION_FAILED = "mitigation.failed"  # the actuator reported an error
MITIGATION_ASSESSED = "mitigation.assessed"  # the "after" sample of an action (~30 s later): effectiveness
RECOVERY_STARTED = "recovery.started"  # half-open probing, latency recovering, recovery in progress
RECOVERY_VERIFIED = "recovery.verified"  # recovery criteria held for the hold window: resolved
ESCALATED = "incident.escalated"
ACKNOWLEDGED = "incident.acknowledged"
NOTIFIED = "notification.sent"  # a notification written to the outbox (not a receipt by itself)
NOTE = "incident.note"  # free text from a person (warroom scribe log, comments)

RECEIPT_KINDS = frozenset(
    {
        DETECTED,
        CLASSIFIED,
        MITIGATION_APPLIED,
        MITIGATION_PLANNED,
        MITIGATION_REFUSED,
        MITIGATION_FAILED,
        MITIGATION_ASSESSED,
        RECOVERY_STARTED,
        RECOVERY_VERIFIED,
        ESCALATED,
        ACKNOWLEDGED,
        NOTE,
    }
)

# Order rank used by verification: detected <= mitigation <= recovery within one incident.
KIND_PHASE = {
    DETECTED: 0,
    CLASSIFIED: 1,
    ACKNOWLEDGED: 1,
    ESCALATED: 1,
    NOTE: 1,
    NOTIFIED: 1,
    MITIGATION_PLANNED: 1,
    MITIGATION_REFUSED: 1,
    MITIGATION_FAILED: 1,
    MITIGATION_APPLIED: 1,
    MITIGATION_ASSESSED: 1,
    RECOVERY_STARTED: 1,
    RECOVERY_VERIFIED: 2,
}

# Documented synonyms from the seed documents, accepted on input and mapped to canonical kinds.
KIND_SYNONYMS = {
    "circuit_closed": RECOVERY_VERIFIED,
    "circuit_recovered": RECOVERY_VERIFIED,
    "circuit_breaker_recovered": RECOVERY_VERIFIED,
    "backlog_resolved": RECOVERY_VERIFIED,
    "latency_resolved": RECOVERY_VERIFIED,
    "failover_complete": RECOVERY_VERIFIED,
    "region_failover_complete": RECOVERY_VERIFIED,
    "circuit_opened": DETECTED,
    "latency_spike_detected": DETECTED,
    "error_rate_spike_detected": DETECTED,
    "failover_started": DETECTED,
    "region_failover_initiated": DETECTED,
    "scaling_applied": MITIGATION_APPLIED,
    "latency_recovering": RECOVERY_STARTED,
    "recovery_in_progress": RECOVERY_STARTED,
    "half_open_probing": RECOVERY_STARTED,
    "region_failover_in_progress": RECOVERY_STARTED,
    "escalation_required": ESCALATED,
    "quota_exceeded": ESCALATED,
}


def canonical_kind(name: str) -> str:
    """Map a documented synonym to its canonical event kind (canonical names map to themselves)."""
    if name in KIND_PHASE:
        return name
    try:
        return KIND_SYNONYMS[name]
    except KeyError:
        raise ValueError(f"unknown event kind: {name!r}") from None


@dataclass(frozen=True)
class IncidentEvent:
    """One entry of an incident's ordered event log.

    ``observed_at_ms`` is when the fact happened in the fleet (the signal's time); ``recorded_at_ms``
    is when the engine wrote it down. ``source_signal`` names the signal that justified it
    (``queue.depth``, ``health_check``, ``breaker.state``, ``operator``). ``data`` is the evidence:
    metric values and thresholds (integers with units in their names), action parameters, and the
    seed documents' per-runbook receipt fields under their documented names.
    """

    incident_id: str
    seq: int
    kind: str
    observed_at_ms: int
    recorded_at_ms: int
    incident_type: str
    severity: str
    service: str
    region: str
    actor: str
    source_signal: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "seq": self.seq,
            "kind": self.kind,
            "observed_at_ms": self.observed_at_ms,
            "recorded_at_ms": self.recorded_at_ms,
            "incident_type": self.incident_type,
            "severity": self.severity,
            "service": self.service,
            "region": self.region,
            "actor": self.actor,
            "source_signal": self.source_signal,
            "summary": self.summary,
            "data": self.data,
        }


EventListener = Callable[[IncidentEvent], None]
