"""Schemas of the policy files under ``runbooks/``. Unknown keys are errors."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from engine.policy.common import INCIDENT_TYPES as INCIDENT_TYPES  # re-exported: the names live without pydantic
from engine.policy.common import SEVERITIES as SEVERITIES
from engine.policy.loader import StrictModel

Severity = Literal["Sev1", "Sev2", "Sev3", "Sev4"]
IncidentType = Literal[
    "queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"
]
Op = Literal[">", ">=", "<", "<=", "==", "!="]


# ----------------------------------------------------------------------------- fleet
class FleetSettings(StrictModel):
    name: str
    tick_ms: int = Field(gt=0)
    health_check_interval_s: int = Field(gt=0)
    health_check_timeout_s: int = Field(gt=0)
    noise_pct: float = Field(ge=0, le=50)
    # Failed requests become lines of the fleet log (`ggen logs tail`): one line per this many
    # failures, at most this many lines per service and tick.
    error_log_every: int = Field(default=20, ge=1)
    error_log_max_per_tick: int = Field(default=3, ge=0)


class RegionSpec(StrictModel):
    name: str
    role: Literal["primary", "standby"]
    replication_lag_ms: int = Field(ge=0)


class DependencySpec(StrictModel):
    service: str
    circuit: str
    calls_per_request: float = Field(default=1.0, gt=0)


class ServiceSpec(StrictModel):
    name: str
    kind: Literal["http", "worker", "database", "external"]
    ingress_rps: float = Field(default=0.0, ge=0)
    replicas: int = Field(ge=1)
    capacity_rps_per_replica: float = Field(gt=0)
    base_p50_ms: float = Field(gt=0)
    base_error_pct: float = Field(ge=0, le=100)
    base_4xx_pct: float = Field(default=0.3, ge=0, le=100)
    memory_pct: float = Field(ge=0, le=100)
    critical: bool = False
    restartable: bool = True
    feature_flags: dict[str, bool] = Field(default_factory=dict)
    depends_on: list[DependencySpec] = Field(default_factory=list)
    connection_pool: int = Field(default=0, ge=0)
    indexes: list[str] = Field(default_factory=list)
    pre_approved_indexes: list[str] = Field(default_factory=list)


class QueueSpec(StrictModel):
    account_id: str
    consumer: str
    ingest_per_s: float = Field(ge=0)
    concurrency: int = Field(ge=1)
    max_concurrency: int = Field(ge=1)
    quota: int = Field(ge=1)
    per_worker_msgs_per_s: float = Field(gt=0)
    high_value: bool = False


class FleetSpec(StrictModel):
    fleet: FleetSettings
    regions: list[RegionSpec]
    services: list[ServiceSpec]
    queues: list[QueueSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_refs(self) -> "FleetSpec":
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError("service names must be unique")
        known = set(names)
        for s in self.services:
            for d in s.depends_on:
                if d.service not in known:
                    raise ValueError(f"service {s.name!r} depends on unknown service {d.service!r}")
        for q in self.queues:
            if q.consumer not in known:
                raise ValueError(f"queue {q.account_id!r} has unknown consumer {q.consumer!r}")
        roles = sorted(r.role for r in self.regions)
        if roles != ["primary", "standby"]:
            raise ValueError("the fleet needs exactly one primary and one standby region")
        return self


# ----------------------------------------------------------------------------- mitigation
class ScalerPolicy(StrictModel):
    pre_incident_depth: int
    pre_incident_sustain_s: int
    depth_divisor: int = Field(gt=0)
    round_to: int = Field(gt=0)
    max_step_factor: int = Field(ge=1)
    min_concurrency: int = Field(ge=1)
    max_concurrency: int = Field(ge=1)
    cooldown_s: int = Field(ge=0)
    evaluate_every_s: int = Field(gt=0)


class ReplicaPolicy(StrictModel):
    cpu_pct_trigger: float
    memory_pct_trigger: float
    sustain_s: int
    max_replicas: int = Field(ge=1)
    step: int = Field(ge=1)
    startup_s: int = Field(ge=0)


class ThrottlePolicy(StrictModel):
    rate_limit_requests_per_sec: int = Field(gt=0)
    queue_size_max: int = Field(ge=0)
    backpressure_duration_s: int = Field(gt=0)
    error_incident_shed_pct: float = Field(ge=0, le=100)


class RetryPolicy(StrictModel):
    base_delay_ms: int = Field(gt=0)
    multiplier: float = Field(ge=1)
    max_delay_ms: int = Field(gt=0)
    jitter_pct: float = Field(ge=0, le=100)


class RolloutPolicy(StrictModel):
    deploy_s: int = Field(ge=0)
    config_s: int = Field(ge=0)
    flag_s: int = Field(ge=0)
    index_build_s: int = Field(ge=0)


class RestartPolicy(StrictModel):
    grace_s: int = Field(ge=0)
    startup_s: int = Field(ge=0)


class FailoverPolicy(StrictModel):
    health_check_interval_s: int = Field(gt=0)
    failure_threshold: int = Field(ge=1)
    health_check_timeout_s: int = Field(gt=0)
    dns_update_timeout_s: int = Field(ge=0)
    dns_ttl_s: int = Field(gt=0)
    propagation: list[tuple[int, int]]
    failback_passing_checks: int = Field(ge=1)
    replication_lag_ok_ms: int = Field(gt=0)

    @model_validator(mode="after")
    def _check_propagation(self) -> "FailoverPolicy":
        pts = self.propagation
        if not pts or pts[-1][1] != 100:
            raise ValueError("propagation must end at 100 percent")
        if any(b[0] < a[0] or b[1] < a[1] for a, b in zip(pts, pts[1:])):
            raise ValueError("propagation must be non-decreasing in time and percent")
        return self


class GovernorPolicy(StrictModel):
    budget_actions: int = Field(ge=1)
    budget_window_s: int = Field(gt=0)
    max_regions_per_action: int = Field(ge=1)
    kill_switch: bool
    dry_run: bool


class CircuitPolicy(StrictModel):
    count: int = Field(ge=0)
    rate_pct: float = Field(ge=0, le=100)
    rate_window_s: int = Field(gt=0)
    min_errors: int = Field(ge=0)
    timeout_ms: int = Field(gt=0)
    latency_p99_ms: int = Field(ge=0)
    latency_sustain_s: int = Field(ge=0)
    probe_mode: Literal["single", "fraction"]
    probe_interval_s: int = Field(gt=0)
    close_after_successes: int = Field(default=10, ge=1)
    probe_traffic_pct: float = Field(default=10, gt=0, le=100)
    close_success_pct: float = Field(default=99, gt=0, le=100)
    close_window_s: int = Field(default=60, gt=0)
    fallback: Literal["cached", "default", "error"]


class CompressionPolicy(StrictModel):
    """Response compression (`ggen compression enable`): size after compression, its CPU cost,
    and what each kilobyte costs to send."""

    ratio_pct: dict[str, float] = Field(min_length=1)  # algorithm -> compressed size, percent of the original
    cpu_cost_pct: float = Field(ge=0, le=100)  # extra CPU utilisation while compressing
    transfer_ms_per_kb: float = Field(ge=0)  # added response time per kilobyte above the service's usual size

    @model_validator(mode="after")
    def _check_ratios(self) -> "CompressionPolicy":
        bad = [k for k, v in self.ratio_pct.items() if not 0 < v <= 100]
        if bad:
            raise ValueError(f"ratio_pct of {', '.join(bad)} must be in (0, 100]")
        return self


class QueryOptimizerPolicy(StrictModel):
    """`ggen db queries optimize`: a rewritten query keeps this share of its extra time (an index removes it)."""

    remaining_pct: float = Field(ge=0, le=100)


class ReplicationPolicy(StrictModel):
    """Records written per second, writes still in flight when a region dies, and replay speed."""

    writes_per_s: float = Field(ge=0)
    inflight_window_ms: int = Field(ge=0)
    catchup_records_per_s: float = Field(gt=0)


class MitigationPolicy(StrictModel):
    scaler: ScalerPolicy
    replicas: ReplicaPolicy
    throttle: ThrottlePolicy
    retry: RetryPolicy
    rollout: RolloutPolicy
    restart: RestartPolicy
    failover: FailoverPolicy
    governor: GovernorPolicy
    circuits: dict[str, CircuitPolicy]
    compression: CompressionPolicy
    query_optimizer: QueryOptimizerPolicy
    replication: ReplicationPolicy


# ----------------------------------------------------------------------------- severity
class SeverityLevel(StrictModel):
    rank: int
    meaning: str
    alert: str
    ack_within_s: int = Field(gt=0)
    pir_due_s: int = Field(ge=0)
    status_update_every_s: int = Field(ge=0)
    customer_facing: bool
    auto_mitigation: bool


class MatrixRule(StrictModel):
    name: str
    signal: str
    op: Op
    threshold: float
    sustain_s: int = Field(ge=0)
    severity: Severity


class AdjustRule(StrictModel):
    name: str
    when: Literal["high_value_account", "multiple_tenants_or_services", "failover_complete", "non_critical_service"]
    change: Literal[-1, 1]
    reason: str
    max_severity: Severity | None = None
    min_severity: Severity | None = None
    # failover_complete: "most customers fine" means the edge error rate is below this.
    edge_error_below_pct: float | None = Field(default=None, ge=0, le=100)


class DetectionSettings(StrictModel):
    hysteresis_s: int = Field(ge=0)
    assess_after_s: int = Field(gt=0)


class SeverityPolicy(StrictModel):
    detection: DetectionSettings
    levels: dict[Severity, SeverityLevel]
    matrix: list[MatrixRule] = Field(default_factory=list)
    adjust: list[AdjustRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _all_levels(self) -> "SeverityPolicy":
        missing = [s for s in SEVERITIES if s not in self.levels]
        if missing:
            raise ValueError(f"missing severity levels: {', '.join(missing)}")
        return self


# ----------------------------------------------------------------------------- escalation
class LadderStep(StrictModel):
    offset_s: int = Field(ge=0)
    role: str
    channel: Literal["pager", "sms", "chat", "email"]
    until: Literal["ack", "resolved"]
    informational: bool = False


class Ladder(StrictModel):
    steps: list[LadderStep]
    chat_channel: str


class AutoEscalation(StrictModel):
    no_recovery_after_first_action_s: int = Field(gt=0)
    on_actions_exhausted: bool
    page_without_automation: list[Severity] = Field(default_factory=list)


class EscalationPolicy(StrictModel):
    auto: AutoEscalation
    ladders: dict[Severity, Ladder]


# ----------------------------------------------------------------------------- runbooks
class DetectionRule(StrictModel):
    signal: str
    op: Op
    threshold: float
    sustain_s: int = Field(ge=0)
    severity: Severity
    severity_if_critical: Severity | None = None
    baseline_below: float | None = None


class Criterion(StrictModel):
    signal: str
    op: Op
    value: float


class RecoveryCriteria(StrictModel):
    hold_s: int = Field(gt=0)
    all: list[Criterion] = Field(min_length=1)


ActionName = Literal[
    "none",
    "scale_concurrency",
    "open_breaker",
    "close_breaker",
    "restart_service",
    "prioritize_requests",
    "create_index",
    "scale_replicas",
    "throttle",
    "rollback_deploy",
    "revert_config",
    "disable_feature_flag",
    "failover_region",
]

StepCondition = Literal[
    "always",
    "queue_behind",
    "downstream_unhealthy",
    "dependency_restartable",
    "dependency_not_restartable",
    "slow_queries",
    "cpu_high",
    "memory_high",
    "no_local_cause",
    "deploy_within",
    "config_changed_within",
    "flag_changed_within",
    "failing_dependency",
    "no_recent_change",
    "standby_healthy",
    "standby_unhealthy",
]


class RunbookStep(StrictModel):
    id: str
    action: ActionName
    title: str
    when: StepCondition
    target: Literal["self", "dependency"] = "self"
    window_s: int | None = Field(default=None, gt=0)
    repeat_every_s: int | None = Field(default=None, gt=0)
    # `while` is a keyword in Python; the file says `while`.
    while_: StepCondition | None = Field(default=None, alias="while")
    escalate_after: bool = False


class RunbookHeader(StrictModel):
    id: str
    version: int = Field(ge=1)
    title: str
    summary: str
    incident_type: IncidentType
    entity: Literal["queue", "circuit", "service", "region"]
    default_severity: Severity
    mttr_target_s: int = Field(gt=0)
    auto_resolution_target_pct: float = Field(ge=0, le=100)
    customer_impact: str


class Baseline(StrictModel):
    p50_ms: float
    p99_ms: float
    p99_9_ms: float


class ManualProcedure(StrictModel):
    diagnose: list[str] = Field(default_factory=list)
    mitigate: list[str] = Field(default_factory=list)
    rollback: list[str] = Field(default_factory=list)


class Runbook(StrictModel):
    runbook: RunbookHeader
    baseline: Baseline | None = None
    detection: list[DetectionRule] = Field(min_length=1)
    recovery: RecoveryCriteria
    steps: list[RunbookStep] = Field(min_length=1)
    manual: ManualProcedure = Field(default_factory=ManualProcedure)

    @model_validator(mode="after")
    def _check(self) -> "Runbook":
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        return self

    @property
    def id(self) -> str:
        return self.runbook.id

    @property
    def incident_type(self) -> str:
        return self.runbook.incident_type
