"""The PIRs in a directory with their status and due dates (part 1 section 7: Sev1 within 4 h,
Sev2 within 24 h, Sev3 within 48 h of resolution; Sev4 optional)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

import yaml

from analyzer.pir.draft import due_ms
from engine.clock import iso_utc, parse_iso_ms

STATUSES = ("DRAFT", "FINAL", "APPROVED")


@dataclass
class PirStatus:
    """One PIR file as the list shows it. ``error`` is set (and the rest mostly empty) for a file
    that cannot be read as a PIR."""

    path: str
    incident_id: str | None = None
    title: str | None = None
    severity: str | None = None
    status: str | None = None
    resolved_ms: int | None = None
    due_ms: int | None = None
    overdue: bool = False
    error: str | None = None

    @property
    def due_state(self) -> str:
        if self.error:
            return "unreadable"
        if self.status in ("FINAL", "APPROVED"):
            return "done"
        if self.resolved_ms is None:
            return "incident open"
        if self.due_ms is None:
            return "optional"
        return "OVERDUE" if self.overdue else "due"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "incident_id": self.incident_id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "resolved_at": iso_utc(self.resolved_ms) if self.resolved_ms is not None else None,
            "due_at": iso_utc(self.due_ms) if self.due_ms is not None else None,
            "overdue": self.overdue,
            "due_state": self.due_state,
            "error": self.error,
        }


def _time(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if hasattr(v, "timestamp"):
        ts = v if getattr(v, "tzinfo", None) is not None else v.replace(tzinfo=timezone.utc)
        return int(ts.timestamp() * 1000)
    return parse_iso_ms(str(v))


def read_status(path: Path, policy: Any, now_ms: int) -> PirStatus:
    """The status of one PIR file (never raises for a bad file: ``error`` says what is wrong)."""
    out = PirStatus(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        out.error = f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        return out
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        out.error = "no front matter (the file must start with '---')"
        return out
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        out.error = "front matter is not closed"
        return out
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        out.error = f"invalid YAML front matter: {str(exc).splitlines()[0]}"
        return out
    if not isinstance(meta, dict):
        out.error = "front matter is not a mapping"
        return out
    out.incident_id = str(meta.get("incident_id")) if meta.get("incident_id") else None
    out.title = str(meta.get("title")) if meta.get("title") else None
    out.severity = str(meta.get("severity")) if meta.get("severity") else None
    status = meta.get("status")
    out.status = str(status) if status else None
    if out.status not in STATUSES:
        out.error = f"status {status!r} is not one of {', '.join(STATUSES)}"
        return out
    try:
        out.resolved_ms = _time(meta.get("resolved_at"))
    except ValueError as exc:
        out.error = f"resolved_at: {exc}"
        return out
    out.due_ms = due_ms(out.severity, out.resolved_ms, policy)
    out.overdue = out.status == "DRAFT" and out.due_ms is not None and now_ms > out.due_ms
    return out


def list_pirs(directory: Path, policy: Any, now_ms: int) -> list[PirStatus]:
    """Every ``*.md`` PIR in ``directory`` (none when it does not exist), overdue first, then by due date."""
    if not directory.is_dir():
        return []
    rows = [read_status(p, policy, now_ms) for p in sorted(directory.glob("*.md"))]
    return sorted(rows, key=lambda r: (not r.overdue, r.error is not None, r.due_ms if r.due_ms is not None else 1 << 62, r.path))
