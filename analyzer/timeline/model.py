"""What a reconstructed timeline is made of: plain dataclasses, JSON-ready through ``to_dict``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.clock import iso_utc

PHASE_ORDER = ("BASELINE", "FIRST ANOMALY", "ALERT TRIGGERED", "MITIGATION", "ESCALATED", "RECOVERING", "RECOVERED", "ALL CLEAR")


class TimelineError(Exception):
    """A timeline that cannot be built: the message is one line that says what and where."""


class TimelineNotFound(TimelineError):
    """What was asked for is not there: an unknown incident, a missing database, an empty window."""


class TimelineBadInput(TimelineError):
    """What was asked for cannot be right: a window that ends before it starts, a database
    argument that names a file which is not an analyzer database (a usage error, exit 2)."""


@dataclass(frozen=True)
class Origin:
    """Where a fact comes from: a log or metric line, a span, or a receipt."""

    source: str  # log | metric | trace | receipt
    file: str | None = None
    line: int | None = None  # 1-based line for logs and metrics, 0-based span index for traces
    trace_id: str | None = None
    span_id: str | None = None
    receipt_id: str | None = None

    def ref(self, root: str | None = None) -> str:
        """A short citation: ``logs/app.gcp.jsonl:12``, ``span 3f2a.. (traces/t.jsonl#40)``, ``receipt urn:uuid:..``."""
        if self.source == "receipt":
            return f"receipt {self.receipt_id}"
        path = self.file or "?"
        if root and path.startswith(root.rstrip("/") + "/"):
            path = path[len(root.rstrip("/")) + 1 :]
        if self.source == "trace":
            return f"span {self.span_id} of trace {self.trace_id} ({path}#{self.line})"
        return f"{path}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Evidence:
    """One source-tagged line of the timeline."""

    at_ms: int
    source: str  # log | metric | trace | receipt
    text: str
    origin: Origin
    service: str | None = None
    kind: str | None = None  # change kind, receipt kind, "first error", "crossing", ...
    level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso_utc(self.at_ms),
            "at_ms": self.at_ms,
            "source": self.source,
            "service": self.service,
            "kind": self.kind,
            "level": self.level,
            "text": self.text,
            "origin": self.origin.to_dict(),
        }


@dataclass
class Phase:
    """A labelled moment (doc 04: BASELINE STATE ... ALL CLEAR) with the metrics at that time."""

    name: str
    at_ms: int
    what: str
    snapshot: dict[str, float | None] = field(default_factory=dict)
    evidence: list[Origin] = field(default_factory=list)
    from_data: bool = True  # placed by the data (else by a receipt)
    during: list["Evidence"] = field(default_factory=list)  # what happened inside the phase without starting one (acknowledgements), in time order

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "at": iso_utc(self.at_ms),
            "at_ms": self.at_ms,
            "what": self.what,
            "snapshot": self.snapshot,
            "evidence": [o.to_dict() for o in self.evidence],
            "from_data": self.from_data,
            "during": [e.to_dict() for e in self.during],
        }


@dataclass
class Onset:
    """Where one series (a metric, or a service's error and warning lines) left its baseline."""

    service: str | None
    series: str
    at_ms: int
    value: float
    baseline: float
    threshold: float
    origin: Origin

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "series": self.series,
            "at": iso_utc(self.at_ms),
            "at_ms": self.at_ms,
            "value": round(self.value, 3),
            "baseline": round(self.baseline, 3),
            "threshold": round(self.threshold, 3),
            "origin": self.origin.to_dict(),
        }


@dataclass
class CauseCandidate:
    """A service that may have failed first, with the evidence for it."""

    service: str
    rank: int
    score: float
    failing_traces: int = 0  # failing traces whose deepest failing span is this service (above baseline)
    slow_traces: int = 0  # slow traces whose largest own time is in this service (above baseline)
    onset_ms: int | None = None
    reasons: list[str] = field(default_factory=list)
    evidence: list[Origin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "rank": self.rank,
            "score": round(self.score, 3),
            "failing_traces": self.failing_traces,
            "slow_traces": self.slow_traces,
            "onset": iso_utc(self.onset_ms) if self.onset_ms is not None else None,
            "reasons": self.reasons,
            "evidence": [o.to_dict() for o in self.evidence],
        }


@dataclass
class Check:
    """One validation of part 1 section 8: ok, warn (a discrepancy worth reading) or n/a."""

    name: str
    status: str  # ok | warn | n/a
    detail: str
    evidence: list[Origin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "evidence": [o.to_dict() for o in self.evidence]}


@dataclass
class Duration:
    """A duration measured from the data beside the receipts' figure."""

    name: str
    data_ms: int | None
    receipt_ms: int | None
    data_basis: str
    receipt_basis: str

    @property
    def diff_ms(self) -> int | None:
        if self.data_ms is None or self.receipt_ms is None:
            return None
        return self.data_ms - self.receipt_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_ms": self.data_ms,
            "receipt_ms": self.receipt_ms,
            "diff_ms": self.diff_ms,
            "data_basis": self.data_basis,
            "receipt_basis": self.receipt_basis,
        }


@dataclass
class Impact:
    """An impact figure measured from the data (``count`` of ``total`` where that applies)."""

    name: str
    text: str
    count: float | None = None
    total: float | None = None
    origins: list[Origin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "text": self.text, "count": self.count, "total": self.total, "origins": [o.to_dict() for o in self.origins]}


@dataclass
class ReceiptRef:
    """A receipt the timeline uses, with its verification state when it was read."""

    receipt_id: str
    seq: int
    kind: str
    observed_ms: int
    summary: str
    actor: str
    verification: str  # verified | failed: <reason> | not verified: <why>
    incident_id: str | None = None
    incident_type: str | None = None
    severity: str | None = None
    service: str | None = None
    region: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    actions: list[Any] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.verification == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "receipt_id": self.receipt_id,
            "seq": self.seq,
            "kind": self.kind,
            "observed_at": iso_utc(self.observed_ms),
            "summary": self.summary,
            "actor": self.actor,
            "verification": self.verification,
            "incident_id": self.incident_id,
            "incident_type": self.incident_type,
            "severity": self.severity,
        }


@dataclass
class IncidentFacts:
    """An incident as its receipts state it."""

    incident_id: str
    incident_type: str
    severity: str | None
    service: str | None
    entity: str | None
    entity_kind: str | None
    region: str | None
    summary: str
    detected_ms: int
    first_anomaly_ms: int | None = None
    time_to_detect_ms: int | None = None
    first_action_ms: int | None = None
    recovered_ms: int | None = None
    resolved_ms: int | None = None
    mttr_ms: int | None = None
    mttr_target_ms: int | None = None
    met_mttr_target: bool | None = None
    root_cause_hint: str | None = None
    rule: str | None = None
    signal: str | None = None
    threshold: float | None = None
    value: float | None = None
    sustain_s: int | None = None
    escalated: bool = False
    auto_resolved: bool | None = None
    detection_receipt: str | None = None
    resolution_receipt: str | None = None
    inferred_from: str | None = None  # set when no receipt states the incident: what in the data it was inferred from

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("detected_ms", "first_anomaly_ms", "first_action_ms", "recovered_ms", "resolved_ms"):
            v = d.get(k)
            d[k.replace("_ms", "_at")] = iso_utc(v) if v is not None else None
        return d


@dataclass
class Timeline:
    """One reconstructed timeline: phases, evidence, first anomaly, cause chain, validation,
    durations and a chart of the main metric, over one window of the analyzer database."""

    start_ms: int
    end_ms: int
    db_path: str
    service_filter: str | None = None
    incident: IncidentFacts | None = None
    receipts: list[ReceiptRef] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    first_anomaly: Onset | None = None
    onsets: list[Onset] = field(default_factory=list)
    causes: list[CauseCandidate] = field(default_factory=list)
    propagation: list[tuple[str, int]] = field(default_factory=list)  # ("api <- app", traces)
    checks: list[Check] = field(default_factory=list)
    unexplained: list[Evidence] = field(default_factory=list)
    durations: list[Duration] = field(default_factory=list)
    impact: list[Impact] = field(default_factory=list)
    incident_period: tuple[int, int] | None = None  # first anomaly .. recovery, as the data shows it
    chart_title: str = ""
    chart: list[str] = field(default_factory=list)
    peak: Evidence | None = None
    metric_interval_ms: int | None = None
    data_start_ms: int | None = None
    data_end_ms: int | None = None
    baseline_end_ms: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    sources_root: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, for standard error (e.g. a --service no data names)

    def phase(self, name: str) -> Phase | None:
        """The first phase with this name."""
        return next((p for p in self.phases if p.name == name), None)

    def duration(self, name: str) -> Duration | None:
        return next((d for d in self.durations if d.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (times as RFC 3339 and epoch ms)."""
        return {
            "window": {"from": iso_utc(self.start_ms), "to": iso_utc(self.end_ms), "from_ms": self.start_ms, "to_ms": self.end_ms},
            "data": {
                "db": self.db_path,
                "first": iso_utc(self.data_start_ms) if self.data_start_ms is not None else None,
                "last": iso_utc(self.data_end_ms) if self.data_end_ms is not None else None,
                "baseline_until": iso_utc(self.baseline_end_ms) if self.baseline_end_ms is not None else None,
                "metric_interval_ms": self.metric_interval_ms,
                "sources_root": self.sources_root,
                "counts": self.counts,
            },
            "service_filter": self.service_filter,
            "incident": self.incident.to_dict() if self.incident else None,
            "phases": [p.to_dict() for p in self.phases],
            "first_anomaly": self.first_anomaly.to_dict() if self.first_anomaly else None,
            "onsets": [o.to_dict() for o in self.onsets],
            "causes": [c.to_dict() for c in self.causes],
            "propagation": [{"chain": c, "traces": n} for c, n in self.propagation],
            "checks": [c.to_dict() for c in self.checks],
            "unexplained": [e.to_dict() for e in self.unexplained],
            "durations": [d.to_dict() for d in self.durations],
            "impact": [i.to_dict() for i in self.impact],
            "incident_period": {"from": iso_utc(self.incident_period[0]), "to": iso_utc(self.incident_period[1])} if self.incident_period else None,
            "chart": {"title": self.chart_title, "lines": self.chart},
            "peak": self.peak.to_dict() if self.peak else None,
            "evidence": [e.to_dict() for e in self.evidence],
            "receipts": [r.to_dict() for r in self.receipts],
            "notes": self.notes,
            "warnings": self.warnings,
        }

    def render_table(self) -> str:
        """Plain text for a terminal (escape it before printing: log text is not trusted)."""
        from analyzer.timeline.render import render_table

        return render_table(self)

    def render_markdown(self) -> str:
        """Markdown: the same content, with every line citing its origin."""
        from analyzer.timeline.render import render_markdown

        return render_markdown(self)
