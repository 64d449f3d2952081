"""Key metrics of the seed's table, computed from incidents: time to detect, time to mitigation
start, MTTR and auto-resolution rate, overall and per incident type and severity."""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean, median
from typing import Any, Iterable

from engine.incident import Incident

# The seed's targets (Key Metrics table); MTTR targets per type come from the runbooks.
TARGETS_MS = {"time_to_detect": 60_000, "time_to_mitigation": 5_000, "mttr": 300_000}
AUTO_RESOLUTION_TARGET = 0.95


@dataclass
class MetricGroup:
    """Figures for one group of incidents (all, one type, or one severity)."""

    count: int = 0
    resolved: int = 0
    auto_resolved: int = 0
    escalated: int = 0
    ttd_ms: list[int] = field(default_factory=list)
    ttm_ms: list[int] = field(default_factory=list)
    mttr_ms: list[int] = field(default_factory=list)

    def add(self, inc: Incident) -> None:
        self.count += 1
        self.ttd_ms.append(inc.time_to_detect_ms)
        if inc.time_to_mitigation_ms is not None:
            self.ttm_ms.append(inc.time_to_mitigation_ms)
        if inc.mttr_ms is not None:
            self.mttr_ms.append(inc.mttr_ms)
        if inc.state == "resolved":
            self.resolved += 1
        if inc.auto_resolved:
            self.auto_resolved += 1
        if inc.escalated:
            self.escalated += 1

    @property
    def auto_resolution_rate(self) -> float | None:
        """Auto-resolved share of the incidents that are over (resolved or escalated)."""
        finished = self.auto_resolved + self.escalated
        return None if finished == 0 else self.auto_resolved / finished

    def to_dict(self) -> dict[str, Any]:
        def stat(xs: list[int]) -> dict[str, int | None]:
            return {"mean_ms": int(mean(xs)) if xs else None, "median_ms": int(median(xs)) if xs else None, "max_ms": max(xs) if xs else None}

        rate = self.auto_resolution_rate
        return {
            "count": self.count,
            "resolved": self.resolved,
            "auto_resolved": self.auto_resolved,
            "escalated": self.escalated,
            "auto_resolution_rate_pct": None if rate is None else round(100 * rate, 1),
            "time_to_detect": stat(self.ttd_ms),
            "time_to_mitigation": stat(self.ttm_ms),
            "mttr": stat(self.mttr_ms),
        }


@dataclass
class KeyMetrics:
    overall: MetricGroup
    by_type: dict[str, MetricGroup]
    by_severity: dict[str, MetricGroup]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_type": {k: v.to_dict() for k, v in sorted(self.by_type.items())},
            "by_severity": {k: v.to_dict() for k, v in sorted(self.by_severity.items())},
            "targets": {**{f"{k}_ms": v for k, v in TARGETS_MS.items()}, "auto_resolution_pct": AUTO_RESOLUTION_TARGET * 100},
        }


def key_metrics(incidents: Iterable[Incident]) -> KeyMetrics:
    """Group incidents by type and by recorded (highest) severity and compute each group's figures."""
    overall = MetricGroup()
    by_type: dict[str, MetricGroup] = {}
    by_sev: dict[str, MetricGroup] = {}
    for inc in incidents:
        overall.add(inc)
        by_type.setdefault(inc.type, MetricGroup()).add(inc)
        by_sev.setdefault(inc.max_severity, MetricGroup()).add(inc)
    return KeyMetrics(overall, by_type, by_sev)
