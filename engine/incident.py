"""An incident: what was detected, how severe it is, what the runbook did, and its ordered event log."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.events import IncidentEvent

# Lifecycle states, in the order an incident normally moves through them.
DETECTED = "detected"
MITIGATING = "mitigating"
RECOVERING = "recovering"
RESOLVED = "resolved"
ESCALATED = "escalated"

SEV_RANK = {"Sev1": 1, "Sev2": 2, "Sev3": 3, "Sev4": 4}


def raise_severity(sev: str, by: int = 1) -> str:
    return f"Sev{max(1, SEV_RANK[sev] - by)}"


def lower_severity(sev: str, by: int = 1) -> str:
    return f"Sev{min(4, SEV_RANK[sev] + by)}"


def more_severe(a: str, b: str) -> str:
    return a if SEV_RANK[a] <= SEV_RANK[b] else b


@dataclass
class StepState:
    """Progress of one runbook step: pending, running, done, failed, skipped."""

    step_id: str
    title: str
    status: str = "pending"
    runs: int = 0
    last_run_ms: int | None = None
    detail: str = ""
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)


@dataclass
class Incident:
    """One incident, keyed by (type, entity). ``events`` is its append-only log."""

    id: str
    type: str
    entity_kind: str  # queue | circuit | service | region
    entity: str  # tenant, circuit name, service or region
    service: str
    region: str
    runbook_id: str
    runbook_version: int
    severity: str  # current
    max_severity: str  # highest reached (what the record keeps)
    detection_severity: str
    detected_at_ms: int
    first_anomaly_ms: int
    rule: str
    state: str = DETECTED
    acknowledged_at_ms: int | None = None
    acknowledged_by: str | None = None
    escalated_at_ms: int | None = None
    escalation_reason: str | None = None
    first_action_at_ms: int | None = None
    recovery_window_start_ms: int | None = None
    recovered_at_ms: int | None = None
    resolved_at_ms: int | None = None
    recovery_started_emitted: bool = False
    failover_complete: bool = False
    affected: set[str] = field(default_factory=set)
    related: set[str] = field(default_factory=set)
    steps: list[StepState] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)
    pending_assessments: list[tuple[int, int, str, dict[str, int]]] = field(default_factory=list)
    exhausted: bool = False
    notes: dict[str, Any] = field(default_factory=dict)
    critical: bool = False
    high_value: bool = False
    title: str = ""

    @property
    def open(self) -> bool:
        return self.state != RESOLVED

    @property
    def escalated(self) -> bool:
        return self.escalated_at_ms is not None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at_ms is not None

    @property
    def mttr_ms(self) -> int | None:
        return None if self.recovered_at_ms is None else self.recovered_at_ms - self.detected_at_ms

    @property
    def time_to_detect_ms(self) -> int:
        return self.detected_at_ms - self.first_anomaly_ms

    @property
    def time_to_mitigation_ms(self) -> int | None:
        return None if self.first_action_at_ms is None else self.first_action_at_ms - self.detected_at_ms

    @property
    def auto_resolved(self) -> bool:
        return self.state == RESOLVED and not self.escalated

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "max_severity": self.max_severity,
            "state": self.state,
            "service": self.service,
            "region": self.region,
            "entity": self.entity,
            "title": self.title,
            "detected_at_ms": self.detected_at_ms,
            "first_anomaly_ms": self.first_anomaly_ms,
            "first_action_at_ms": self.first_action_at_ms,
            "recovered_at_ms": self.recovered_at_ms,
            "resolved_at_ms": self.resolved_at_ms,
            "escalated_at_ms": self.escalated_at_ms,
            "escalation_reason": self.escalation_reason,
            "acknowledged_at_ms": self.acknowledged_at_ms,
            "acknowledged_by": self.acknowledged_by,
            "time_to_detect_ms": self.time_to_detect_ms,
            "time_to_mitigation_ms": self.time_to_mitigation_ms,
            "mttr_ms": self.mttr_ms,
            "affected": sorted(self.affected),
            "related": sorted(self.related),
            "runbook": f"{self.runbook_id}@{self.runbook_version}",
            "steps": [{"id": s.step_id, "title": s.title, "status": s.status, "runs": s.runs, "detail": s.detail} for s in self.steps],
        }
