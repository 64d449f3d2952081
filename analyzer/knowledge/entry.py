"""Knowledge-base entries: one Markdown case file per past incident, with YAML front matter.

An entry is read once, validated completely, and then treated as immutable. Every problem is a
:class:`EntryError` naming the file and the field (``severity``) or section (``section Timeline``),
so a typo in a case file is reported the same way as a typo in any other runbook data.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date  # noqa: F401 - pydantic resolves the "date" annotations at runtime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from engine.policy.loader import PolicyError, StrictModel, validate

IncidentType = Literal[
    "queue_backlog_overflow",
    "circuit_breaker_opened",
    "latency_spike",
    "error_rate_spike",
    "region_failover",
]
INCIDENT_TYPES: tuple[str, ...] = IncidentType.__args__  # type: ignore[attr-defined]

Severity = Literal["Sev1", "Sev2", "Sev3", "Sev4"]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]

# The root causes the five runbooks name. An entry lists one or more (compound incidents list several).
Cause = Literal[
    "traffic_surge",
    "slow_consumer",
    "quota_exhaustion",
    "dependency_outage",
    "dependency_timeouts",
    "connection_pool_exhaustion",
    "crash_loop",
    "slow_queries",
    "cpu_saturation",
    "memory_pressure",
    "large_responses",
    "bad_deploy",
    "bad_config",
    "schema_change",
    "feature_flag",
    "region_outage",
    "flapping_health_checks",
    "replication_lag",
    "dns_propagation",
]
CAUSES: tuple[str, ...] = Cause.__args__  # type: ignore[attr-defined]

# What responders did, in the vocabulary of 11-automated-mitigation plus the manual moves of the runbooks.
Pattern = Literal[
    "auto_scale",
    "scale_replicas",
    "circuit_breaker",
    "throttle",
    "rate_limit",
    "failover",
    "failback",
    "restart",
    "pool_reset",
    "feature_flag",
    "rollback",
    "config_revert",
    "add_index",
    "query_tuning",
    "compression",
    "cache_fallback",
    "quota_increase",
    "conflict_resolve",
    "dns_update",
    "health_check_tuning",
    "manual_fix",
]
PATTERNS: tuple[str, ...] = Pattern.__args__  # type: ignore[attr-defined]

# Markdown sections every entry has, in the order TEMPLATE.md shows them.
REQUIRED_SECTIONS: tuple[str, ...] = (
    "Symptoms",
    "Root Cause",
    "Contributing Factors",
    "Timeline",
    "Resolution",
    "Prevention",
    "Lessons Learned",
)
PREVENTION_HORIZONS: tuple[str, ...] = ("Short-term", "Medium-term", "Long-term")

FILE_NAME = re.compile(r"^incident-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)-(?P<date>\d{4}-\d{2}-\d{2})\.md$")
_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CUSTOMERS = re.compile(r"^(?P<n>\d[\d,]*) / (?P<total>\d[\d,]*)(?: \((?P<pct>\d+(?:\.\d+)?)%\))?$")
# libyaml's C parser when present (10-50x faster than the pure-Python one; same results).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_ENTRY_REF = re.compile(r"^incident-[a-z0-9-]+-\d{4}-\d{2}-\d{2}$")


class EntryError(PolicyError):
    """A knowledge-base entry that cannot be read or does not match the template."""


class Mitigation(StrictModel):
    """One thing responders tried, and whether it helped."""

    pattern: Pattern
    outcome: Literal["worked", "partial", "failed"]
    note: str = ""


class Links(StrictModel):
    """Where the rest of the story lives."""

    pir: str | None = None
    runbook: str | None = None
    ticket: str | None = None
    dashboard: str | None = None


class EntryMeta(StrictModel):
    """The front matter of an entry: the header of the template plus the search facets."""

    title: str = Field(min_length=5, max_length=160)
    incident_id: str
    date: date
    severity: Severity
    duration_min: int = Field(ge=0, le=100_000)
    mttr_min: int = Field(ge=0, le=100_000)
    # The exact MTTR when it is known to the second (entries from PIRs); mttr_min is it rounded.
    mttr_s: int | None = Field(default=None, ge=0, le=6_000_000)
    customers_affected: str
    root_cause: str = Field(min_length=10, max_length=400)
    solution: str = Field(min_length=10, max_length=400)
    incident_types: list[IncidentType] = Field(min_length=1)
    causes: list[Cause] = Field(min_length=1)
    services: list[str] = Field(min_length=1)
    regions: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    outcome: Literal["resolved", "escalated"]
    kb_assisted: bool = False
    mitigations: list[Mitigation] = Field(default_factory=list)
    related_incidents: list[str] = Field(default_factory=list)
    links: Links = Field(default_factory=Links)

    @field_validator("title")
    @classmethod
    def _title_shape(cls, v: str) -> str:
        if " - " not in v:
            raise ValueError("title must read '<Type> - <Root Cause>'")
        return v

    @field_validator("incident_id")
    @classmethod
    def _urn(cls, v: str) -> str:
        if not _URN.match(v):
            raise ValueError("must be 'urn:uuid:' followed by a lowercase UUID")
        return v

    @field_validator("customers_affected")
    @classmethod
    def _customers(cls, v: str) -> str:
        m = _CUSTOMERS.match(v.strip())
        if not m:
            raise ValueError("must read 'N / Total (P%)', e.g. '37 / 1,240 (3.0%)'")
        if int(m["n"].replace(",", "")) > int(m["total"].replace(",", "")):
            raise ValueError("more customers affected than in total")
        return v.strip()

    @field_validator("tags", mode="before")
    @classmethod
    def _numeric_tags(cls, v: Any) -> Any:
        # `tags: [503, 429]` is what people write; YAML reads those as numbers.
        if isinstance(v, list):
            return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in v]
        return v

    @field_validator("incident_types", "causes", "services", "regions", "accounts", "tags")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists a value twice")
        for item in v:
            if not item.strip():
                raise ValueError("has an empty value")
        return v

    @field_validator("related_incidents")
    @classmethod
    def _refs(cls, v: list[str]) -> list[str]:
        for ref in v:
            if not _ENTRY_REF.match(ref):
                raise ValueError(f"{ref!r} is not an entry id (incident-<slug>-YYYY-MM-DD)")
        return v

    @model_validator(mode="after")
    def _mttr_within_duration(self) -> "EntryMeta":
        if self.mttr_min > self.duration_min:
            raise ValueError("mttr_min is longer than duration_min (MTTR counts from detection, inside the incident)")
        if self.mttr_s is not None and abs(self.mttr_s - 60 * self.mttr_min) >= 60:
            raise ValueError(f"mttr_s {self.mttr_s} does not round to mttr_min {self.mttr_min}")
        return self

    @property
    def mttr_minutes(self) -> float:
        """MTTR in minutes, to the second when the entry knows it."""
        return self.mttr_s / 60 if self.mttr_s is not None else float(self.mttr_min)

    @property
    def customers_affected_count(self) -> int:
        m = _CUSTOMERS.match(self.customers_affected)
        assert m is not None
        return int(m["n"].replace(",", ""))


def minutes_from_seconds(seconds: int) -> int:
    """Whole minutes for ``mttr_min``: rounded half up, and at least 1 for any non-zero time."""
    return 0 if seconds <= 0 else max(1, (seconds + 30) // 60)


def format_mttr(mttr_min: int, mttr_s: int | None = None) -> str:
    """'40 s', '4 min 30 s' or '12 min': to the second when known, never '0 min' for a real MTTR."""
    if mttr_s is None:
        return f"{mttr_min} min"
    if mttr_s < 60:
        return f"{mttr_s} s"
    m, s = divmod(mttr_s, 60)
    return f"{m} min {s} s" if s else f"{m} min"


@dataclass(frozen=True)
class Entry:
    """A validated case file."""

    entry_id: str
    path: Path
    meta: EntryMeta
    sections: dict[str, str]
    sha256: str

    def section(self, name: str) -> str:
        return self.sections.get(name, "")

    def prevention_items(self) -> dict[str, list[tuple[bool, str]]]:
        """Checklist items of the Prevention section by horizon: (done, text)."""
        return parse_prevention(self.section("Prevention"))

    def timeline_rows(self) -> list[tuple[str, str, str]]:
        """Rows of the Timeline table: (time, event, action)."""
        return parse_table(self.section("Timeline"))


def parse_prevention(text: str) -> dict[str, list[tuple[bool, str]]]:
    """Split a Prevention section into its ``### <horizon>`` checklists."""
    out: dict[str, list[tuple[bool, str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        head = re.match(r"^###\s+(.+?)\s*$", line)
        if head:
            current = next((h for h in PREVENTION_HORIZONS if head[1].lower().startswith(h.lower())), head[1])
            out.setdefault(current, [])
            continue
        item = re.match(r"^\s*[-*]\s+\[( |x|X)\]\s+(.+?)\s*$", line)
        if item and current is not None:
            out[current].append((item[1].lower() == "x", item[2]))
    return out


def parse_table(text: str) -> list[tuple[str, str, str]]:
    """Data rows of the first Markdown table in ``text`` (header and separator skipped)."""
    rows: list[tuple[str, str, str]] = []
    seen_header = False
    for line in text.splitlines():
        s = line.strip()
        if not (s.startswith("|") and s.endswith("|")):
            if seen_header and rows:
                break
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if not seen_header:
            seen_header = True
            continue
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
            continue
        cells = (cells + ["", "", ""])[:3]
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, body, line number where the body starts)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise EntryError(path, None, "no YAML front matter (the file must start with a line '---')")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise EntryError(path, None, "front matter is not closed (no second '---' line)")
    raw = "\n".join(lines[1:end])
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EntryError(path, None, f"invalid YAML front matter{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EntryError(path, None, "front matter must be a mapping of fields")
    return data, "\n".join(lines[end + 1 :]), end + 2


def split_sections(body: str, level: int = 2) -> tuple[str, list[tuple[str, str, int]]]:
    """Split Markdown at headings of ``level`` (outside code fences): (preamble, [(title, text, line)])."""
    marker = "#" * level + " "
    preamble: list[str] = []
    sections: list[tuple[str, list[str], int]] = []
    fenced = False
    for n, line in enumerate(body.split("\n"), start=1):
        if line.lstrip().startswith("```") or line.lstrip().startswith("~~~"):
            fenced = not fenced
        if not fenced and line.startswith(marker):
            sections.append((line[len(marker) :].strip(), [], n))
            continue
        if sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble), [(t, "\n".join(ls).strip(), n) for t, ls, n in sections]


def parse_entry(path: Path, text: str, *, check_name: bool = True) -> Entry:
    """Validate the text of an entry file. Raises EntryError naming the file and the field."""
    if check_name:
        m = FILE_NAME.match(path.name)
        if not m:
            raise EntryError(path, None, "file name must be incident-<slug>-YYYY-MM-DD.md (lowercase slug)")
    data, body, _ = split_front_matter(path, text)
    try:
        meta = validate(path, data, EntryMeta)
    except PolicyError as exc:
        raise EntryError(exc.path, exc.field, exc.message) from None
    if check_name:
        assert m is not None
        if m["date"] != meta.date.isoformat():
            raise EntryError(path, "date", f"is {meta.date.isoformat()} but the file name says {m['date']}")
    _, found = split_sections(body)
    sections: dict[str, str] = {}
    canonical = {s.lower(): s for s in REQUIRED_SECTIONS}
    for title, content, _line in found:
        name = canonical.get(title.lower())
        if name is None:
            raise EntryError(
                path, f"section {title}", "unknown section (expected: " + ", ".join(REQUIRED_SECTIONS) + ")"
            )
        if name in sections:
            raise EntryError(path, f"section {name}", "appears twice")
        sections[name] = content
    for name in REQUIRED_SECTIONS:
        if name not in sections:
            raise EntryError(path, f"section {name}", f"missing (add a '## {name}' heading)")
        if not sections[name].strip():
            raise EntryError(path, f"section {name}", "is empty")
    prevention = parse_prevention(sections["Prevention"])
    for horizon in PREVENTION_HORIZONS:
        if not prevention.get(horizon):
            raise EntryError(
                path, "section Prevention", f"needs a '### {horizon}' checklist with at least one '- [ ]' item"
            )
    if not parse_table(sections["Timeline"]):
        raise EntryError(path, "section Timeline", "needs a table '| Time | Event | Action |' with at least one row")
    entry_id = path.name[:-3] if path.name.endswith(".md") else path.stem
    return Entry(
        entry_id=entry_id,
        path=path,
        meta=meta,
        sections=sections,
        sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
    )


def read_entry(path: Path) -> Entry:
    """Read and validate one entry file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise EntryError(path, None, "file not found") from None
    except OSError as exc:
        raise EntryError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    return parse_entry(path, text)


def render_entry(meta: dict[str, Any], sections: dict[str, str], heading: str | None = None) -> str:
    """Write an entry as Markdown with YAML front matter (the inverse of :func:`parse_entry`)."""
    fm = yaml.dump(meta, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None)
    parts = ["---", fm.rstrip("\n"), "---", ""]
    parts.append(f"# {heading or meta.get('title', '')}")
    parts.append("")
    for name in REQUIRED_SECTIONS:
        parts.append(f"## {name}")
        parts.append("")
        parts.append(sections.get(name, "").strip())
        parts.append("")
    return "\n".join(parts)


_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)
_MD_CHECKBOX = re.compile(r"\[( |x|X)\]\s+")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^#{1,6}\s+", re.M)
_MD_BULLET = re.compile(r"^\s*[-*]\s+", re.M)
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def plain_text(markdown: str) -> str:
    """Markdown reduced to the words a reader sees: no emphasis marks, table pipes or checkboxes."""
    t = _MD_TABLE_RULE.sub(" ", markdown)
    t = _MD_CHECKBOX.sub("", t)
    t = _MD_LINK.sub(r"\1", t)
    t = t.replace("**", "").replace("`", "")
    t = _MD_HEADING.sub("", t)
    t = _MD_BULLET.sub("", t)
    t = t.replace("|", " ")
    t = _SPACES.sub(" ", t)
    t = _BLANK_LINES.sub("\n", t)
    return t.strip()
