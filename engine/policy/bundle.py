"""The policy in force: every data file the engine reads, loaded and validated once, with hashes.

Receipts record the SHA-256 of the runbook, severity rules and escalation policy that justified
them, so a reviewer can tell exactly which thresholds were in force.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.policy.loader import PolicyError, file_sha256, load_model
from engine.policy.models import (
    INCIDENT_TYPES,
    EscalationPolicy,
    FleetSpec,
    MitigationPolicy,
    Runbook,
    SeverityPolicy,
)


def _runbooks_dir() -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR


@dataclass
class Policy:
    """Everything under one runbooks directory, validated."""

    root: Path
    fleet: FleetSpec
    mitigation: MitigationPolicy
    severity: SeverityPolicy
    escalation: EscalationPolicy
    runbooks: dict[str, Runbook]
    hashes: dict[str, str] = field(default_factory=dict)

    def runbook_for(self, incident_type: str) -> Runbook:
        return self.runbooks[incident_type]

    def policy_hashes(self, incident_type: str | None) -> dict[str, str]:
        """SHA-256 of the files in force for an incident of this type (what receipts record)."""
        out = {
            "severity_rules": self.hashes["severity.toml"],
            "escalation_policy": self.hashes["escalation.toml"],
            "mitigation": self.hashes["mitigation.toml"],
        }
        if incident_type in self.runbooks:
            out["runbook"] = self.hashes[f"incidents/{incident_type}.toml"]
        return out


def load_policy(root: Path | None = None, *, fleet_file: Path | None = None) -> Policy:
    """Load and validate every policy file under ``root`` (default: the packaged runbooks/)."""
    root = Path(root) if root else _runbooks_dir()
    files = {
        "fleet.toml": fleet_file or root / "fleet.toml",
        "mitigation.toml": root / "mitigation.toml",
        "severity.toml": root / "severity.toml",
        "escalation.toml": root / "escalation.toml",
    }
    fleet = load_model(files["fleet.toml"], FleetSpec)
    mitigation = load_model(files["mitigation.toml"], MitigationPolicy)
    severity = load_model(files["severity.toml"], SeverityPolicy)
    escalation = load_model(files["escalation.toml"], EscalationPolicy)
    runbooks: dict[str, Runbook] = {}
    for t in INCIDENT_TYPES:
        path = root / "incidents" / f"{t}.toml"
        rb = load_model(path, Runbook)
        if rb.incident_type != t:
            raise PolicyError(path, "runbook.incident_type", f"must be {t!r} to match the file name")
        files[f"incidents/{t}.toml"] = path
        runbooks[t] = rb
    for name, circuit in ((s.name, d.circuit) for s in fleet.services for d in s.depends_on):
        if circuit not in mitigation.circuits:
            raise PolicyError(
                files["fleet.toml"], f"services.{name}.depends_on", f"unknown circuit {circuit!r} (not in mitigation.toml)"
            )
    hashes = {k: file_sha256(p) for k, p in files.items()}
    return Policy(root, fleet, mitigation, severity, escalation, runbooks, hashes)
