"""The policy in force: every data file the engine reads, loaded and validated once, with hashes.

Receipts record the SHA-256 of the runbook, severity rules and escalation policy that justified
them, so a reviewer can tell exactly which thresholds were in force.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.policy.common import INCIDENT_TYPES, PolicyError, file_sha256

if TYPE_CHECKING:
    from engine.policy.models import EscalationPolicy, FleetSpec, MitigationPolicy, Runbook, SeverityPolicy


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


def policy_files(root: Path, fleet_file: Path | None = None) -> dict[str, Path]:
    """The files of one policy, by the names receipts use for their hashes."""
    files = {
        "fleet.toml": fleet_file or root / "fleet.toml",
        "mitigation.toml": root / "mitigation.toml",
        "severity.toml": root / "severity.toml",
        "escalation.toml": root / "escalation.toml",
    }
    for t in INCIDENT_TYPES:
        files[f"incidents/{t}.toml"] = root / "incidents" / f"{t}.toml"
    return files


def load_policy(root: Path | None = None, *, fleet_file: Path | None = None, snapshot: Path | None = None) -> Policy:
    """Load and validate every policy file under ``root`` (default: the packaged runbooks/).

    With ``snapshot`` (a file in the data directory), a policy validated before from exactly the
    same files and code is restored from it instead (see :mod:`engine.policy.snapshot`)."""
    root = Path(root) if root else _runbooks_dir()
    files = policy_files(root, fleet_file)
    if snapshot is None:
        return _policy(root, _validate(files), {k: file_sha256(p) for k, p in files.items()})
    try:
        hashes = {k: file_sha256(p) for k, p in files.items()}
    except OSError:
        return _policy(root, _validate(files), {k: file_sha256(p) for k, p in files.items()})  # names the missing file
    from engine.policy.snapshot import restore_or_validate

    parts, _ = restore_or_validate(snapshot, root, hashes, lambda: _validate(files))
    return _policy(root, parts, hashes)


def _policy(root: Path, parts: dict[str, Any], hashes: dict[str, str]) -> Policy:
    return Policy(root, parts["fleet"], parts["mitigation"], parts["severity"], parts["escalation"], parts["runbooks"], hashes)


def _validate(files: dict[str, Path]) -> dict[str, Any]:
    """Every file against its schema, then the references between files."""
    from engine.policy.loader import load_model
    from engine.policy.models import EscalationPolicy, FleetSpec, MitigationPolicy, Runbook, SeverityPolicy

    fleet = load_model(files["fleet.toml"], FleetSpec)
    mitigation = load_model(files["mitigation.toml"], MitigationPolicy)
    severity = load_model(files["severity.toml"], SeverityPolicy)
    escalation = load_model(files["escalation.toml"], EscalationPolicy)
    runbooks: dict[str, Runbook] = {}
    for t in INCIDENT_TYPES:
        path = files[f"incidents/{t}.toml"]
        rb = load_model(path, Runbook)
        if rb.incident_type != t:
            raise PolicyError(path, "runbook.incident_type", f"must be {t!r} to match the file name")
        runbooks[t] = rb
    for name, circuit in ((s.name, d.circuit) for s in fleet.services for d in s.depends_on):
        if circuit not in mitigation.circuits:
            raise PolicyError(
                files["fleet.toml"], f"services.{name}.depends_on", f"unknown circuit {circuit!r} (not in mitigation.toml)"
            )
    return {"fleet": fleet, "mitigation": mitigation, "severity": severity, "escalation": escalation, "runbooks": runbooks}
