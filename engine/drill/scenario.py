"""Scenario files (runbooks/scenarios/*.toml): a fault timeline and what the engine should do.

A scenario may also carry a ``[training]`` table (:class:`TrainingSpec`): what a trainee who
handles it by hand must do (the expected classification and runbook, when to escalate), the
scoring rubric (weights, time targets, pass mark), hints, actions marked unsafe, and the reference
path of trainee actions (:class:`TraineeStep`, the same form an answers file uses).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.fleet.faults import FAULT_KINDS
from engine.policy.loader import PolicyError, StrictModel, load_model
from engine.policy.models import IncidentType, Severity


class FaultStep(StrictModel):
    kind: str
    target: str | None = None
    at_s: float = Field(default=0, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "FaultStep":
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        return self


class ExpectedIncident(StrictModel):
    type: IncidentType
    severity: Severity
    entity: str | None = None


class Expectation(StrictModel):
    outcome: Literal["auto_resolved", "escalated", "no_incident"]
    incidents: list[ExpectedIncident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Expectation":
        if self.outcome == "no_incident" and self.incidents:
            raise ValueError("outcome 'no_incident' cannot list incidents")
        if self.outcome != "no_incident" and not self.incidents:
            raise ValueError(f"outcome {self.outcome!r} needs at least one expected incident")
        return self


class ScenarioHeader(StrictModel):
    name: str
    title: str
    description: str
    runbook: IncidentType | None = None
    warmup_s: int = Field(default=120, ge=0)
    run_s: int = Field(default=1200, gt=0)
    drill: bool = True
    tags: list[str] = Field(default_factory=list)


def action_names() -> frozenset[str]:
    """The actions the simulated actuator knows (what a trainee may ask for)."""
    from engine.mitigate.actuator import SimActuator

    return frozenset(n[4:] for n in dir(SimActuator) if n.startswith("_do_"))


TraineeDo = Literal["acknowledge", "classify", "runbook", "action", "escalate", "kill_switch", "dry_run", "hint", "note"]


class TraineeStep(StrictModel):
    """One trainee action at a virtual time (a reference path step, or a line of an answers file).

    ``at_s`` counts from the start of the scenario's fault timeline; ``after_page_s`` from the
    moment the trainee was paged for ``incident`` (its detection). ``incident`` names an incident
    by type, or ``type@entity``; by default the scenario's first expected incident.
    """

    do: TraineeDo
    at_s: float | None = Field(default=None, ge=0)
    after_page_s: float | None = Field(default=None, ge=0)
    incident: str | None = None
    severity: Severity | None = None
    runbook: IncidentType | None = None
    action: str | None = None
    target: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    on: bool = True
    reason: str = ""
    text: str = ""
    required: bool = True  # reference path: the "actions" criterion expects this action

    @model_validator(mode="after")
    def _complete(self) -> "TraineeStep":
        if (self.at_s is None) == (self.after_page_s is None):
            raise ValueError("give exactly one of at_s (from the scenario start) or after_page_s (from the page)")
        if self.incident is not None:
            kind = self.incident.partition("@")[0]
            if kind not in IncidentType.__args__:  # type: ignore[attr-defined]
                raise ValueError(f"incident {self.incident!r}: {kind!r} is not an incident type ({', '.join(IncidentType.__args__)})")  # type: ignore[attr-defined]
        need = {"classify": "severity", "runbook": "runbook", "action": "action"}.get(self.do)
        if need and getattr(self, need) is None:
            raise ValueError(f"do = {self.do!r} needs {need}")
        if self.do == "action":
            known = action_names()
            if self.action not in known:
                raise ValueError(f"unknown action {self.action!r} (known: {', '.join(sorted(known))})")
            if not self.target:
                raise ValueError("do = 'action' needs target (a service, tenant, circuit or region)")
        return self

    @property
    def offset_text(self) -> str:
        return f"+{self.at_s:g} s" if self.at_s is not None else f"page +{self.after_page_s:g} s"


class ExpectedResponse(StrictModel):
    """One incident the trainee must handle, and how."""

    type: IncidentType
    entity: str | None = None
    severity: Severity
    runbook: IncidentType | None = None  # default: the incident type's own runbook
    escalate: bool = False
    escalate_within_s: int | None = Field(default=None, gt=0)  # after the page
    resolve: bool = True  # the trainee can fix it: MTTR is scored against the runbook's target
    ack_within_s: int | None = Field(default=None, gt=0)  # default: the severity's SLA (severity.toml)

    @model_validator(mode="after")
    def _consistent(self) -> "ExpectedResponse":
        if self.escalate and self.escalate_within_s is None:
            raise ValueError("escalate = true needs escalate_within_s (the deadline after the page)")
        return self

    @property
    def expected_runbook(self) -> str:
        return self.runbook or self.type

    @property
    def ref(self) -> str:
        return f"{self.type}@{self.entity}" if self.entity else self.type


class RubricWeights(StrictModel):
    """Points per criterion (scaled to 100 over the criteria that apply)."""

    acknowledge: int = Field(default=15, ge=0)
    severity: int = Field(default=15, ge=0)
    runbook: int = Field(default=15, ge=0)
    actions: int = Field(default=10, ge=0)
    mttr: int = Field(default=20, ge=0)
    escalation: int = Field(default=15, ge=0)
    safety: int = Field(default=10, ge=0)
    automation: int = Field(default=15, ge=0)  # only when the scenario has stop_automation_before


def _one_paragraph(v: str) -> str:
    """Prose from a data file (TOML multi-line strings wrap lines): one line, single spaces."""
    return " ".join(v.split())


class Hint(StrictModel):
    text: str
    cost: int = Field(default=5, ge=0)  # points off the score

    _text = field_validator("text")(_one_paragraph)


class UnsafeAction(StrictModel):
    """An action the scenario marks unsafe (the safety governor's refusals are unsafe too).

    ``when = "dependency_unhealthy"``: unsafe only while it would close a breaker (close, or
    override to CLOSED) in front of a dependency that still fails.
    """

    action: str
    target: str | None = None  # None: on any target
    when: Literal["always", "dependency_unhealthy"] = "always"
    reason: str


class TrainingSpec(StrictModel):
    """The ``[training]`` table of a scenario: what the trainee must do and how it is scored."""

    briefing: str
    debrief: str = ""
    certification: bool = True  # required for the certificate
    automation: bool = False  # True: the engine's runbooks run; the trainee watches (and may stop them)
    stop_automation_before: str | None = None  # an automated action that must never apply
    incidents: list[ExpectedResponse] = Field(min_length=1)
    weights: RubricWeights = Field(default_factory=RubricWeights)
    pass_pct: int = Field(default=75, ge=1, le=100)
    mttr_zero_factor: float = Field(default=2.0, gt=1.0)  # MTTR at this multiple of the target earns nothing
    hints: list[Hint] = Field(default_factory=list)
    unsafe: list[UnsafeAction] = Field(default_factory=list)
    reference: list[TraineeStep] = Field(min_length=1)

    _prose = field_validator("briefing", "debrief")(_one_paragraph)

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingSpec":
        if self.stop_automation_before is not None:
            if not self.automation:
                raise ValueError("stop_automation_before needs automation = true (otherwise no automation runs)")
            if self.stop_automation_before not in action_names():
                raise ValueError(f"stop_automation_before: unknown action {self.stop_automation_before!r}")
        known = action_names()
        for u in self.unsafe:
            if u.action not in known:
                raise ValueError(f"unsafe: unknown action {u.action!r}")
        refs = {r.type for r in self.incidents}
        for i, st in enumerate(self.reference):
            if st.incident is not None and st.incident.partition("@")[0] not in refs:
                raise ValueError(f"reference[{i}]: incident {st.incident!r} is not one of the expected incidents")
        return self


class Scenario(StrictModel):
    scenario: ScenarioHeader
    faults: list[FaultStep] = Field(default_factory=list)
    expect: Expectation
    training: TrainingSpec | None = None

    @property
    def name(self) -> str:
        return self.scenario.name


def scenarios_dir() -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "scenarios"


def load_scenarios(directory: Path | None = None) -> dict[str, Scenario]:
    """Every scenario file in ``directory``, by name. Names must be unique and match the file."""
    d = directory or scenarios_dir()
    out: dict[str, Scenario] = {}
    for path in sorted(d.glob("*.toml")):
        sc = load_model(path, Scenario)
        if sc.name != path.stem:
            raise PolicyError(path, "scenario.name", f"must match the file name ({path.stem!r})")
        out[sc.name] = sc
    return out


def load_scenario(name: str, directory: Path | None = None) -> Scenario:
    """One scenario by name, or by path to a .toml file."""
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return load_model(p, Scenario)
    all_ = load_scenarios(directory)
    if name not in all_:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(sorted(all_))})")
    return all_[name]
