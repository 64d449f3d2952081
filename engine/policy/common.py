"""What the policy package offers without pydantic: its error, the names of the incident types and
severities, and the hash that receipts record. The console's start-up path restores a validated
snapshot of the policy (:mod:`engine.policy.snapshot`) and so never needs the schemas."""
from __future__ import annotations

import hashlib
from pathlib import Path

SEVERITIES: tuple[str, ...] = ("Sev1", "Sev2", "Sev3", "Sev4")
INCIDENT_TYPES: tuple[str, ...] = (
    "queue_backlog_overflow",
    "circuit_breaker_opened",
    "latency_spike",
    "error_rate_spike",
    "region_failover",
)


class PolicyError(ValueError):
    """A data file is missing, unreadable, or does not match its schema."""

    def __init__(self, path: Path | str, field: str | None, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        where = f"{self.path}: field {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes: what receipts record as the policy in force."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
