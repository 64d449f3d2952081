"""Mapping files (runbooks/sources/*.toml): how a real system's data becomes the engine's signals.

- :class:`PrometheusMapping`: one PromQL query per signal, the label that names the entity of each
  kind (service, tenant queue, circuit, region), and renames from label values to fleet names.
- :class:`AlertmanagerMapping`: alert labels to incident type, entity and severity.
- :class:`FileMapping`: renames for the entity names of a JSON Lines sample stream.

The signals a mapping may provide are the engine's own signal names (:data:`SIGNALS`), plus a few
a real system knows and the simulator keeps elsewhere (``up``, ``revision``, ``config_version``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from engine.policy.loader import StrictModel, load_model

EntityKind = Literal["service", "queue", "circuit", "region"]
KINDS: tuple[str, ...] = ("service", "queue", "circuit", "region")

# Signals a source may deliver, per entity kind. Those the engine reads (engine.signals()) plus:
# service.up (0 = down), service.revision and service.config_version (a change is recorded as a
# deploy / config change, so the error-rate runbook's rollback and revert steps can see it), and
# region.up / region.traffic_pct (DNS weight).
SIGNALS: dict[str, frozenset[str]] = {
    "service": frozenset(
        {
            "rps", "p50_ms", "p99_ms", "p99_9_ms", "error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min",
            "cpu_pct", "memory_pct", "replicas", "healthy", "up", "throttled_rps", "revision", "config_version",
        }
    ),
    "queue": frozenset({"depth", "lag_p99_s", "lag_p50_s", "ingest_per_s", "processing_per_s", "concurrency", "concurrency_used_pct"}),
    "circuit": frozenset({"state", "error_pct", "p99_ms", "healthy"}),
    "region": frozenset(
        {"consecutive_failed_checks", "consecutive_passed_checks", "healthy", "up", "traffic_pct", "replication_lag_ms", "edge_error_pct"}
    ),
}

SEVERITIES = ("Sev1", "Sev2", "Sev3", "Sev4")
INCIDENT_TYPES = ("queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover")
Severity = Literal["Sev1", "Sev2", "Sev3", "Sev4"]
IncidentType = Literal["queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"]
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EntityLabels(StrictModel):
    """Which label names the entity of each kind. A circuit without a ``circuit`` label is named
    ``<caller>-><dependency>`` from the ``caller`` and ``dependency`` labels."""

    service: str = "service"
    queue: str = "tenant"
    circuit: str = "circuit"
    region: str = "region"
    caller: str = "caller"
    dependency: str = "dependency"

    @field_validator("*")
    @classmethod
    def _label(cls, v: str) -> str:
        if not _LABEL.match(v):
            raise ValueError(f"{v!r} is not a label name")
        return v

    def entity(self, kind: str, labels: dict[str, str]) -> str | None:
        """The entity a label set names, or None when it names none."""
        name = labels.get(getattr(self, kind))
        if name is None and kind == "circuit":
            caller, dep = labels.get(self.caller), labels.get(self.dependency)
            if caller and dep:
                return f"{caller}->{dep}"
        return name or None


class Renames(StrictModel):
    """Label value -> fleet name, per kind (values not listed keep their name)."""

    service: dict[str, str] = Field(default_factory=dict)
    queue: dict[str, str] = Field(default_factory=dict)
    circuit: dict[str, str] = Field(default_factory=dict)
    region: dict[str, str] = Field(default_factory=dict)

    def apply(self, kind: str, name: str) -> str:
        return getattr(self, kind).get(name, name)


# ============================================================================ Prometheus
class MappingHeader(StrictModel):
    description: str = ""
    window: str = "1m"  # what {window} stands for in the queries unless config.toml says otherwise

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(ms|s|m|h|d)", v):
            raise ValueError(f"{v!r} is not a PromQL duration such as 30s, 1m, 5m")
        return v


class SignalQuery(StrictModel):
    """One signal from one instant query. ``scope = "all"``: the query's single value applies to
    every entity of the kind (e.g. an edge-wide error rate)."""

    kind: EntityKind
    signal: str
    query: str = Field(min_length=1)
    scale: float = 1.0  # multiply the value (e.g. 1000 for seconds -> milliseconds)
    scope: Literal["entity", "all"] = "entity"

    @model_validator(mode="after")
    def _known(self) -> "SignalQuery":
        if self.signal not in SIGNALS[self.kind]:
            raise ValueError(f"{self.kind} has no signal {self.signal!r} (known: {', '.join(sorted(SIGNALS[self.kind]))})")
        return self


class PrometheusMapping(StrictModel):
    """runbooks/sources/prometheus.toml: PromQL per signal, entity labels, renames."""

    mapping: MappingHeader = MappingHeader()
    labels: EntityLabels = EntityLabels()
    rename: Renames = Renames()
    signals: list[SignalQuery] = Field(min_length=1)

    @field_validator("signals")
    @classmethod
    def _unique(cls, v: list[SignalQuery]) -> list[SignalQuery]:
        seen: set[tuple[str, str]] = set()
        for i, q in enumerate(v):
            key = (q.kind, q.signal)
            if key in seen:
                raise ValueError(f"signals.{i}: {q.kind}.{q.signal} is mapped twice")
            seen.add(key)
        return v

    def provided(self) -> set[tuple[str, str]]:
        return {(q.kind, q.signal) for q in self.signals}


# ============================================================================ Alertmanager
class AlertRule(StrictModel):
    """Alerts whose labels match become incidents of one type (first matching rule wins)."""

    name: str = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict)  # label = exact value
    match_re: dict[str, str] = Field(default_factory=dict)  # label = regular expression (whole value)
    incident_type: IncidentType | None = None
    incident_type_label: str | None = None  # take the type from this label instead
    entity: str | None = None  # a fixed entity instead of one from a label
    entity_label: str | None = None  # default: [labels] for the type's entity kind
    severity: Severity | None = None  # a fixed severity instead of the severity label's
    severity_label: str | None = None  # default: [alertmanager] severity_label

    @field_validator("match_re")
    @classmethod
    def _regex(cls, v: dict[str, str]) -> dict[str, str]:
        for label, rx in v.items():
            try:
                re.compile(rx)
            except re.error as exc:
                raise ValueError(f"{label}: {rx!r} is not a regular expression ({exc})") from None
        return v

    @model_validator(mode="after")
    def _type(self) -> "AlertRule":
        if (self.incident_type is None) == (self.incident_type_label is None):
            raise ValueError("give exactly one of incident_type and incident_type_label")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        for k, v in self.match.items():
            if labels.get(k) != v:
                return False
        for k, rx in self.match_re.items():
            if re.fullmatch(rx, labels.get(k, "")) is None:
                return False
        return True


class AlertmanagerHeader(StrictModel):
    description: str = ""
    severity_label: str = "severity"
    default_severity: Severity = "Sev3"  # when the label is missing or not in [severity]


class AlertmanagerMapping(StrictModel):
    """runbooks/sources/alertmanager.toml: alert labels to incident type, entity and severity."""

    alertmanager: AlertmanagerHeader = AlertmanagerHeader()
    severity: dict[str, Severity] = Field(default_factory=dict)  # label value (lower case) -> Sev
    labels: EntityLabels = EntityLabels()
    rename: Renames = Renames()
    rules: list[AlertRule] = Field(min_length=1)

    @field_validator("severity")
    @classmethod
    def _lower(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.lower(): s for k, s in v.items()}


# ============================================================================ file
class FileMapping(StrictModel):
    """Optional mapping for the JSON Lines source: entity renames only."""

    mapping: MappingHeader = MappingHeader()
    rename: Renames = Renames()


def _packaged(name: str) -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "sources" / name


def load_prometheus_mapping(path: Path | None = None) -> tuple[Path, PrometheusMapping]:
    path = Path(path) if path else _packaged("prometheus.toml")
    return path, load_model(path, PrometheusMapping)


def load_alertmanager_mapping(path: Path | None = None) -> tuple[Path, AlertmanagerMapping]:
    path = Path(path) if path else _packaged("alertmanager.toml")
    return path, load_model(path, AlertmanagerMapping)


def load_file_mapping(path: Path | None = None) -> FileMapping:
    return load_model(Path(path), FileMapping) if path else FileMapping()
