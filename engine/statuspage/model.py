"""Status page data: the policy file, updates (drafts and publications) and their store.

Updates carry the required fields of 10-status-page-management: banner, component, update number,
STATUS, customer impact, Started, Duration, Affected / Not affected, root cause, timestamped
actions, metrics vs target, expected resolution and Next update. Published updates are JSON lines
in ``DATA_DIR/statuspage/updates.jsonl``; drafts are JSON files a person edits and approves.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from engine.policy.loader import StrictModel, load_model

Status = Literal["investigating", "identified", "recovering", "resolved"]
STATES = ("operational", "degraded", "partial_outage", "major_outage")
STATE_RANK = {s: i for i, s in enumerate(STATES)}


class Rules(StrictModel):
    first_post_within_s: int = Field(gt=0)
    max_gap_s: int = Field(gt=0)
    public_severities: list[str]
    internal_terms: list[str] = Field(default_factory=list)
    public_replacement: str = "an internal service"


class ComponentSpec(StrictModel):
    name: str
    audience: Literal["public", "internal"]
    services: list[str] = Field(default_factory=list)
    incident_types: list[str] = Field(default_factory=list)


class StatusPolicy(StrictModel):
    rules: Rules
    states: dict[str, Literal["operational", "degraded", "partial_outage", "major_outage"]]
    labels: dict[str, str]
    banners: dict[Status, str]
    components: list[ComponentSpec] = Field(min_length=1)
    targets: dict[str, str] = Field(default_factory=dict)

    def scrub(self, text: str) -> str:
        """Public text: internal terms replaced (whole words, any case)."""
        for term in sorted(self.rules.internal_terms, key=len, reverse=True):
            text = re.sub(rf"(?<!\w)(?<!\w-){re.escape(term)}(?!\w)(?!-\w)", self.rules.public_replacement, text, flags=re.IGNORECASE)
        return text

    def internal_terms_in(self, text: str) -> list[str]:
        return [t for t in self.rules.internal_terms if re.search(rf"(?<!\w)(?<!\w-){re.escape(t)}(?!\w)(?!-\w)", text, flags=re.IGNORECASE)]


def load_status_policy(path: Path | None = None) -> StatusPolicy:
    from runbooks import RUNBOOKS_DIR

    return load_model(path or RUNBOOKS_DIR / "statuspage" / "statuspage.toml", StatusPolicy)


class Action(StrictModel):
    at: str  # HH:MM UTC or an ISO time
    text: str


class StatusUpdate(BaseModel):
    """One status-page message. ``extra="forbid"``: a misspelt field in an edited draft is an error."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    number: int = Field(ge=1)
    audience: Literal["public", "internal"]
    status: Status
    severity: str
    banner: str
    title: str = Field(min_length=1, max_length=300)
    components: list[str] = Field(min_length=1)
    impact: str = Field(min_length=1)
    started: str
    duration: str
    affected: str = Field(min_length=1)
    not_affected: str = ""
    root_cause: str = Field(min_length=1)  # "under investigation" is an answer; empty is not
    actions: list[Action] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    expected_resolution: str = Field(min_length=1)
    next_update: str = ""  # UTC; empty only on the resolved post
    drafted_at_ms: int
    drafted_from: list[str] = Field(default_factory=list)  # receipt ids the draft was written from
    published_at_ms: int | None = None
    published_by: str | None = None
    next_update_at_ms: int | None = None

    def message(self) -> str:
        """The update as posted: banner, fields in the order of section 10."""
        lines = [f"{self.banner} | {', '.join(self.components)} (Update #{self.number})", self.title, "",
                 f"STATUS: {self.status.upper()}", f"Impact: {self.impact}", f"Started: {self.started}", f"Duration: {self.duration}",
                 f"Affected: {self.affected}"]
        if self.not_affected:
            lines.append(f"Not affected: {self.not_affected}")
        lines.append(f"Root cause: {self.root_cause}")
        if self.actions:
            lines.append("Actions:")
            lines += [f"  {a.at} {a.text}" for a in self.actions]
        if self.metrics:
            lines.append("Metrics vs target:")
            lines += [f"  {m}" for m in self.metrics]
        lines.append(f"Expected resolution: {self.expected_resolution}")
        if self.next_update:
            lines.append(f"Next update: {self.next_update}")
        return "\n".join(lines)


class StatusStore:
    """Published updates (JSON lines) and drafts of one data directory."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "statuspage"
        self.updates_path = self.dir / "updates.jsonl"
        self.drafts_dir = self.dir / "drafts"

    def published(self, incident_id: str | None = None) -> list[StatusUpdate]:
        out: list[StatusUpdate] = []
        try:
            raw = self.updates_path.read_bytes()
        except FileNotFoundError:
            return out
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                u = StatusUpdate.model_validate(orjson.loads(line))
            except Exception:
                continue  # a damaged line is skipped here; `status-page check` names it
            if incident_id is None or u.incident_id == incident_id:
                out.append(u)
        return out

    def last_published_ms(self, incident_id: str) -> int | None:
        stamps = [u.published_at_ms for u in self.published(incident_id) if u.published_at_ms is not None]
        return max(stamps) if stamps else None

    def next_number(self, incident_id: str, audience: str) -> int:
        return 1 + sum(1 for u in self.published(incident_id) if u.audience == audience)

    def append(self, u: StatusUpdate) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.updates_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, orjson.dumps(u.model_dump()) + b"\n")
        finally:
            os.close(fd)

    def save_draft(self, u: StatusUpdate, path: Path | None = None) -> Path:
        p = path or self.drafts_dir / f"{u.incident_id.removeprefix('urn:uuid:')[:8]}-{u.audience}-{u.number}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        data = u.model_dump(exclude={"published_at_ms", "published_by", "next_update_at_ms"})
        p.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return p


def read_draft(path: Path) -> dict[str, Any]:
    """A draft file's fields, by content: TOML when it ends in ``.toml``, JSON otherwise (drafts
    are written as JSON whatever their name, e.g. ``draft.md``). Raises PolicyError naming the file."""
    from engine.policy.loader import PolicyError, read_data_file

    p = Path(path)
    try:
        return read_data_file(p, "toml" if p.suffix == ".toml" else "json")
    except PolicyError as exc:
        if exc.message.startswith(("invalid JSON", "top level")):
            raise PolicyError(p, None, f"not a draft: {exc.message}; drafts are JSON, or TOML in a .toml file") from None
        raise
