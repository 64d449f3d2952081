"""The incident of a window that no receipt states, inferred from the data alone: its type,
severity and service from the engine's alert log line when there is one, and its entity (queue,
circuit, region or service) from the metric series that crossed the runbook's detection
threshold; without an alert line, the earliest such crossing names the type as well."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from analyzer.timeline.model import IncidentFacts, Origin
from analyzer.timeline.receipts import ENTITY_KIND
from analyzer.timeline.series import Series, first_crossing
from analyzer.timeline.settings import TimelineSettings
from engine.clock import iso_utc

_ALERT = re.compile(r"^ALERT (?P<type>\S+)(?:\s+(?P<sev>Sev\d)\b)?")


@dataclass(frozen=True)
class AlertLine:
    """The parts of an alert log line the inference reads."""

    at_ms: int
    incident_type: str
    severity: str | None
    service: str | None
    incident_id: str | None
    text: str
    origin: Origin


@dataclass(frozen=True)
class Crossing:
    """A series that met a runbook detection rule for the rule's sustain time."""

    incident_type: str
    entity_kind: str
    series: Series
    signal: str
    op: str
    threshold: float
    sustain_s: int
    severity: str
    crossed_ms: int
    held_ms: int
    value: float


def parse_alert(at_ms: int, text: str, attrs: str | None, origin: Origin, known_types: set[str]) -> AlertLine | None:
    """An ``ALERT <type> [SevN] ...`` line of a known incident type (its attributes may name the
    service as ``target_service`` or ``service`` and the incident as ``incident_id``)."""
    m = _ALERT.match(text or "")
    if m is None or m.group("type") not in known_types:
        return None
    a: dict[str, Any] = {}
    if attrs:
        try:
            got = orjson.loads(attrs)
            a = got if isinstance(got, dict) else {}
        except orjson.JSONDecodeError:
            a = {}
    service = next((str(a[k]) for k in ("target_service", "entity_service") if isinstance(a.get(k), str) and a[k]), None)
    iid = a.get("incident_id") if isinstance(a.get("incident_id"), str) else None
    return AlertLine(at_ms, m.group("type"), m.group("sev"), service, iid, text, origin)


def _candidates(series: list[Series], st: TimelineSettings, kind: str, signal: str, service: str | None) -> list[tuple[Series, float]]:
    spec = st.signal(kind, signal)
    if spec is None or spec.region == "standby":
        return []
    out = []
    for s in series:
        if s.metric != spec.metric:
            continue
        if spec.label and spec.label not in s.labels:
            continue
        if service is not None and kind == "service" and spec.entity_service and not (st.alias(s.service) == st.alias(service) or s.service == service):
            continue
        out.append((s, spec.scale))
    return out


def detection_crossings(
    series: list[Series], st: TimelineSettings, policy: Any, after_ms: int, only_type: str | None = None, service: str | None = None, callers: frozenset[str] = frozenset()
) -> list[Crossing]:
    """Every (runbook, detection rule, series) whose condition held for the rule's sustain time,
    earliest first; at the same time a service that is not a caller (the root of traces) before
    one that is (a failing callee shows in its callers too), then the largest overshoot."""
    out: list[Crossing] = []
    for itype, rb in sorted(policy.runbooks.items()):
        if itype not in st.types or (only_type is not None and itype != only_type):
            continue
        kind = ENTITY_KIND.get(itype) or rb.runbook.entity
        for rule in rb.detection:
            for s, scale in _candidates(series, st, kind, rule.signal, service):
                scaled = Series(s.metric, s.service, s.labels, s.owner, s.t, [v * scale for v in s.v], s.files, s.lines, s.display)
                found = first_crossing(scaled, rule.op, rule.threshold, rule.sustain_s * 1000, after_ms=after_ms)
                if found is None:
                    continue
                i0, i1 = found
                if rule.baseline_below is not None:
                    before = [v for t, v in zip(scaled.t, scaled.v) if t < scaled.t[i0]]
                    if before and sorted(before)[len(before) // 2] >= rule.baseline_below:
                        continue
                held = max(scaled.t[i1], scaled.t[i0] + rule.sustain_s * 1000)
                out.append(Crossing(itype, kind, s, rule.signal, rule.op, rule.threshold, rule.sustain_s, rule.severity, scaled.t[i0], held, scaled.v[i0]))
    out.sort(key=lambda c: (c.held_ms, st.alias(c.series.owner or c.series.service) in callers, c.crossed_ms, -abs(c.value - c.threshold) / (abs(c.threshold) or 1.0), c.incident_type, c.series.name))
    return out


def _entity(kind: str, s: Series, st: TimelineSettings, signal: str) -> str | None:
    spec = st.signal(kind, signal)
    if spec is not None and spec.label:
        return s.labels.get(spec.label)
    return st.alias(s.service) if kind == "service" else None


def infer_incident(
    series: list[Series],
    alert: AlertLine | None,
    st: TimelineSettings,
    policy: Any,
    data_start_ms: int,
    service_hint: str | None = None,
    root: str | None = None,
    callers: frozenset[str] = frozenset(),
) -> IncidentFacts | None:
    """The incident the data shows, or None when there is no alert line and no series crossed a
    detection threshold. ``service_hint`` (``--service``) prefers that service's series; ``root``
    shortens the file names cited; ``callers`` are the services at the root of traces."""
    if alert is not None:
        service = alert.service or service_hint
        found = detection_crossings(series, st, policy, data_start_ms, only_type=alert.incident_type, service=service)
        if not found and service is not None:
            found = detection_crossings(series, st, policy, data_start_ms, only_type=alert.incident_type)
        near = sorted(found, key=lambda c: (abs(c.held_ms - alert.at_ms), c.held_ms))
        c = near[0] if near else None
        kind = ENTITY_KIND.get(alert.incident_type) or (c.entity_kind if c else "service")
        entity = _entity(kind, c.series, st, c.signal) if c else None
        if kind == "service" and service is not None:
            entity = service
        if service is None and c is not None:
            service = c.series.owner or c.series.service
        why = f"the alert log line {alert.origin.ref(root)}"
        if c is not None:
            why += f" and {c.signal} {c.op} {c.threshold:g} held {c.sustain_s} s in {c.series.name} from {iso_utc(c.crossed_ms)[11:19]}"
        return IncidentFacts(
            incident_id=alert.incident_id or "",
            incident_type=alert.incident_type,
            severity=alert.severity or (c.severity if c else None),
            service=service,
            entity=entity or service,
            entity_kind=kind,
            region=entity if kind == "region" else None,
            summary=alert.text,
            detected_ms=alert.at_ms,
            inferred_from=why,
        )
    found = detection_crossings(series, st, policy, data_start_ms, service=service_hint, callers=callers)
    if not found and service_hint is not None:
        found = detection_crossings(series, st, policy, data_start_ms, callers=callers)
    if not found:
        return None
    c = found[0]
    entity = _entity(c.entity_kind, c.series, st, c.signal)
    service = c.series.owner or c.series.service if c.entity_kind != "service" else entity
    return IncidentFacts(
        incident_id="",
        incident_type=c.incident_type,
        severity=c.severity,
        service=service,
        entity=entity or service,
        entity_kind=c.entity_kind,
        region=entity if c.entity_kind == "region" else None,
        summary=f"{c.signal} {c.op} {c.threshold:g} for {c.sustain_s} s on {entity or service} (no alert line; from the metrics)",
        detected_ms=c.held_ms,
        inferred_from=f"{c.signal} {c.op} {c.threshold:g} held {c.sustain_s} s in {c.series.name} from {iso_utc(c.crossed_ms)[11:19]} (the runbook's detection rule; no alert line in the logs)",
    )
