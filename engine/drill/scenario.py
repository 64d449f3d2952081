"""Scenario files (runbooks/scenarios/*.toml): a fault timeline and what the engine should do."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

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


class Scenario(StrictModel):
    scenario: ScenarioHeader
    faults: list[FaultStep] = Field(default_factory=list)
    expect: Expectation
    # Training and certification settings (rubric, hints, reference path) live here.
    training: dict[str, Any] | None = None

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
