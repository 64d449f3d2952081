"""What the manual commands know by name: metric names, metric groups, database aliases, API schemas.

All of it is data under ``runbooks/manual/``, validated at load with errors naming file and field.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from engine.policy.loader import PolicyError, StrictModel, load_model

# Every column a metric may show, per entity kind: the engine's signals plus a few derived ones.
COLUMNS: dict[str, tuple[str, ...]] = {
    "service": (
        "rps", "p50_ms", "p99_ms", "p99_9_ms", "error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min",
        "cpu_pct", "memory_pct", "replicas", "healthy", "open_breakers", "throttled_rps",
        "response_p50_bytes", "response_p99_bytes",
    ),
    "queue": (
        "depth", "lag_p99_s", "lag_p50_s", "ingest_per_s", "processing_per_s", "net_drain_per_s", "concurrency",
        "concurrency_used_pct", "processing_per_min", "ingest_per_min",
    ),
    "circuit": ("state", "error_pct", "p99_ms", "healthy"),
    "region": (
        "consecutive_failed_checks", "consecutive_passed_checks", "healthy", "standby_traffic_pct", "traffic_pct",
        "replication_lag_ms", "edge_error_pct", "rps", "records",
    ),
}
QUANTILE_NAMES = ("p50", "p90", "p95", "p99", "p99.9")


class MetricDef(StrictModel):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    entity: Literal["service", "queue", "circuit", "region"]
    description: str
    columns: list[str] = Field(min_length=1)
    quantiles: dict[str, str] = Field(default_factory=dict)
    group_by: list[Literal["error_code"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "MetricDef":
        known = COLUMNS[self.entity]
        for c in self.columns + list(self.quantiles.values()):
            if c not in known:
                raise ValueError(f"metric {self.name!r}: unknown {self.entity} column {c!r} (known: {', '.join(known)})")
        for q in self.quantiles:
            if q not in QUANTILE_NAMES:
                raise ValueError(f"metric {self.name!r}: unknown quantile {q!r} (known: {', '.join(QUANTILE_NAMES)})")
        return self


class MetricCatalogFile(StrictModel):
    metrics: list[MetricDef] = Field(min_length=1)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    databases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "MetricCatalogFile":
        seen: dict[str, str] = {}
        for m in self.metrics:
            for n in [m.name, *m.aliases]:
                key = n.lower()
                if key in seen:
                    raise ValueError(f"metric name {n!r} is used twice ({seen[key]} and {m.name})")
                seen[key] = m.name
        for g, cols in self.groups.items():
            for c in cols:
                if c not in COLUMNS["service"]:
                    raise ValueError(f"group {g!r}: unknown service column {c!r}")
        return self


class EndpointSchema(StrictModel):
    required: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)


class SchemaVersion(StrictModel):
    version: int = Field(ge=1)
    summary: str
    endpoints: dict[str, EndpointSchema] = Field(default_factory=dict)


class ServiceSchemas(StrictModel):
    name: str
    versions: list[SchemaVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "ServiceSchemas":
        nums = [v.version for v in self.versions]
        if nums != sorted(set(nums)):
            raise ValueError(f"service {self.name!r}: versions must be listed once each, in increasing order")
        return self


class ApiSchemaFile(StrictModel):
    services: list[ServiceSchemas] = Field(default_factory=list)


@dataclass(frozen=True)
class Catalog:
    """The loaded data: metrics by every name they answer to, groups, database aliases, schemas."""

    metrics: tuple[MetricDef, ...]
    by_name: dict[str, MetricDef]
    groups: dict[str, list[str]]
    databases: dict[str, str]
    schemas: dict[str, ServiceSchemas]

    def metric(self, name: str) -> MetricDef | None:
        return self.by_name.get(name.lower())

    def schema(self, service: str, version: int) -> SchemaVersion | None:
        s = self.schemas.get(service)
        if s is None:
            return None
        best = None
        for v in s.versions:
            if v.version <= version:
                best = v
        return best


def _manual_dir() -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "manual"


@lru_cache(maxsize=4)
def load_catalog(root: Path | None = None) -> Catalog:
    """Load ``metrics.toml`` and ``api_schema.toml`` from ``root`` (default runbooks/manual)."""
    root = Path(root) if root else _manual_dir()
    mf = load_model(root / "metrics.toml", MetricCatalogFile)
    path = root / "api_schema.toml"
    sf = load_model(path, ApiSchemaFile) if path.exists() else ApiSchemaFile()
    names = [s.name for s in sf.services]
    if len(set(names)) != len(names):
        raise PolicyError(path, "services", "each service may be listed once")
    by_name: dict[str, MetricDef] = {}
    for m in mf.metrics:
        for n in [m.name, *m.aliases]:
            by_name[n.lower()] = m
    return Catalog(tuple(mf.metrics), by_name, dict(mf.groups), dict(mf.databases), {s.name: s for s in sf.services})


# ----------------------------------------------------------------------------- fault targets
# Faults whose effect needs a service of one kind (engine/fleet/model.py): ``slow_queries`` slows
# the calls into a database until its index exists (``ggen db indexes create``), and
# ``external_outage`` is a third-party API nobody here can restart. On a service of another kind
# the first does nothing and the second is a plain crash a restart ends.
FAULT_SERVICE_KIND: dict[str, str] = {"slow_queries": "database", "external_outage": "external"}


def fault_target_kind(fault: str) -> str:
    """What a fault is injected on, as people say it: queue, region, service, database, external service."""
    from engine.fleet.faults import FAULT_KINDS

    kind = FAULT_KINDS[fault][1]
    need = FAULT_SERVICE_KIND.get(fault)
    if kind == "service" and need is not None:
        return need if need == "database" else f"{need} service"
    return kind


def fault_targets(fleet: object, fault: str) -> list[str]:
    """Every entity of ``fleet`` the fault can act on."""
    from engine.fleet.faults import FAULT_KINDS

    kind = FAULT_KINDS[fault][1]
    pool = {"service": getattr(fleet, "services", {}), "queue": getattr(fleet, "queues", {}), "region": getattr(fleet, "regions", {})}[kind]
    need = FAULT_SERVICE_KIND.get(fault) if kind == "service" else None
    return [n for n, e in pool.items() if need is None or getattr(e, "kind", None) == need]
