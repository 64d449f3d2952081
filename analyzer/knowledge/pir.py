"""Turn a finished post-incident review (PIR) into a knowledge-base entry.

A PIR is Markdown with YAML front matter (``incident_id``, ``title``, ``severity``,
``incident_type``, ``status``, ``detected_at``, ``resolved_at``, ``service``) and ten numbered
sections (``## 1. Incident Summary`` ... ``## 10. Sign-Off``). The entry keeps what the next
on-call needs: symptoms and metrics, the root-cause statement and contributing factors, the
timeline with T+N offsets, what worked and what failed first, action items as the prevention
checklist, and lessons. A DRAFT is refused unless the caller allows it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.policy.loader import PolicyError, validate

from analyzer.pir.template import PIR_SECTIONS

from .entry import (
    CAUSES,
    PREVENTION_HORIZONS,
    EntryError,
    IncidentType,
    Severity,
    format_mttr,
    minutes_from_seconds,
    parse_entry,
    render_entry,
    split_front_matter,
    split_sections,
)
from .settings import SearchSettings, load_settings

if TYPE_CHECKING:
    from .index import KnowledgeBase


TYPE_TITLES = {
    "queue_backlog_overflow": "Queue backlog",
    "circuit_breaker_opened": "Circuit breaker opened",
    "latency_spike": "Latency spike",
    "error_rate_spike": "Error-rate spike",
    "region_failover": "Region failover",
}


class PirError(PolicyError):
    """A PIR that cannot be turned into an entry; names the file and the section or field."""


class PirRefused(PirError):
    """The PIR is still a DRAFT (or otherwise not ready) and the caller did not allow it."""


class PirMeta(BaseModel):
    """PIR front matter. Unknown keys are ignored: PIR drafts may carry more than we need."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    incident_id: str
    title: str = Field(min_length=3)
    severity: Severity
    incident_type: IncidentType
    status: Literal["DRAFT", "FINAL", "APPROVED"]
    detected_at: datetime
    resolved_at: datetime
    service: str = Field(min_length=1)

    @field_validator("detected_at", "resolved_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)

    @field_validator("incident_id")
    @classmethod
    def _urn(cls, v: str) -> str:
        v = v.strip().lower()
        if not re.fullmatch(r"(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", v):
            raise ValueError("must be a UUID, optionally prefixed with urn:uuid:")
        return v if v.startswith("urn:uuid:") else "urn:uuid:" + v


@dataclass(frozen=True)
class PirDocument:
    """A parsed PIR: front matter and the text of each numbered section."""

    path: Path
    meta: PirMeta
    sections: dict[str, str]

    def section(self, name: str) -> str:
        return self.sections.get(name, "")

    @property
    def duration_min(self) -> int:
        return max(0, round((self.meta.resolved_at - self.meta.detected_at).total_seconds() / 60))


def read_pir(path: Path) -> PirDocument:
    """Read and check a PIR file: front matter fields and all ten section headings."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PirError(path, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise PirError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise PirError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        data, body, _ = split_front_matter(path, text)
    except EntryError as exc:
        raise PirError(path, exc.field, exc.message) from None
    try:
        meta = validate(path, data, PirMeta)
    except PolicyError as exc:
        raise PirError(path, exc.field, exc.message) from None
    if meta.resolved_at < meta.detected_at:
        raise PirError(path, "resolved_at", "is before detected_at")
    _, found = split_sections(body)
    sections: dict[str, str] = {}
    for title, content, _line in found:
        key = _canonical_heading(title)
        if key is not None:
            sections[key] = content
    for name in PIR_SECTIONS:
        if name not in sections:
            raise PirError(path, f"section {name}", f"missing (expected a heading '## {name}')")
    return PirDocument(path=path, meta=meta, sections=sections)


def _canonical_heading(title: str) -> str | None:
    t = re.sub(r"\s+", " ", title.strip()).lower()
    for name in PIR_SECTIONS:
        if t == name.lower():
            return name
    return None


# --- extracting facts from the sections ----------------------------------------------------------

_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+(?:\[(?: |x|X)\]\s+)?(?P<text>.+?)\s*$")
_TIME_LINE = re.compile(
    r"^\s*(?:[-*]\s+)?(?:\|\s*)?\**(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s*(?:UTC|Z)?\**\s*(?:\||[-–—:])?\s*(?P<event>.+?)\s*\|?\s*$"
)
_COUNT = re.compile(r"(?P<n>\d[\d,]*)\s*(?:/|of|out of)\s*(?P<total>\d[\d,]*)")
_FIX_WORDS = re.compile(
    r"\b(roll(ed)? ?back|rollback|revert|restor|disabl|reset|hotfix|fixed|fail(ed)? ?over|index|quota|rate.?limit|scal|restart|drain)",
    re.I,
)
_ACTION_WORDS = re.compile(
    r"\b(scal|restart|roll(ed)? ?back|rollback|revert|disabl|fail(ed)? ?over|breaker|throttl|rate.?limit|index|flag|pool|drain|reset|promot|dns|raise|increas|patch|deploy)",
    re.I,
)


def list_items(text: str) -> list[str]:
    """Bulleted, numbered or checkbox items; table rows contribute their first non-empty cell."""
    out = []
    for line in text.splitlines():
        m = _LIST_ITEM.match(line)
        if m:
            out.append(m["text"].strip())
            continue
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if cells and cells[0] and not re.fullmatch(r":?-{3,}:?", cells[0]) and cells[0].lower() not in ("item", "action", "metric", "role"):
                out.append(" — ".join(c for c in cells if c))
    return out


def timeline_events(text: str) -> list[tuple[str, str]]:
    """``HH:MM`` lines (list items or table rows) of the timeline section."""
    out = []
    for line in text.splitlines():
        m = _TIME_LINE.match(line)
        if m:
            event = re.sub(r"\s*\|\s*", " — ", m["event"].strip().strip("|").strip())
            out.append((m["time"], event))
    return out


def root_cause_statement(text: str) -> str | None:
    """The single root-cause statement of section 3 (its last one if several chains end in one)."""
    statement = None
    fallback = None
    for line in text.splitlines():
        s = line.strip().lstrip("-*> ").strip()
        m = re.match(r"^\**root[- ]cause statement\**\s*:?\**\s*(.+)$", s, re.I)
        if m:
            statement = m[1].strip().strip("*").strip()
            continue
        m = re.match(r"^\**root[- ]cause\**\s*:\**\s*(.+)$", s, re.I)
        if m:
            fallback = m[1].strip().strip("*").strip()
    return statement or fallback


def contributing_factors(text: str) -> list[str]:
    """List items following a 'Contributing factors' heading or label in section 3."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if re.search(r"contributing factors", line, re.I):
            inside = True
            continue
        if inside:
            if re.match(r"^\s*#{2,}\s", line) or re.match(r"^\s*\**root[- ]cause", line.strip(), re.I):
                break
            m = _LIST_ITEM.match(line)
            if m:
                out.append(m["text"])
            elif line.strip() and out:
                break
    return out


def customers_affected(doc: PirDocument) -> str | None:
    """'N / Total (P%)' from the Metrics & Impact table or the summary's impact line."""
    for name in ("7. Metrics & Impact", "1. Incident Summary"):
        for line in doc.section(name).splitlines():
            if re.search(r"(accounts|customers|tenants)\s*affected|impact", line, re.I):
                m = _COUNT.search(line)
                if m:
                    n = int(m["n"].replace(",", ""))
                    total = int(m["total"].replace(",", ""))
                    if total > 0 and n <= total:
                        return f"{n:,} / {total:,} ({100.0 * n / total:.1f}%)"
    return None


_DURATION = re.compile(
    r"(?:(?P<h>\d+)\s*h(?:ours?|rs?)?\b\s*)?(?:(?P<m>\d+)\s*min(?:utes?|s)?\b\s*)?(?:(?P<s>\d+)\s*s(?:ec(?:onds?|s)?)?\b)?",
    re.I,
)


def parse_duration_s(text: str) -> int | None:
    """Seconds of the first duration at the start of ``text``: '40 s', '2 min 00 s', '29 min', '1 h 5 min'."""
    m = _DURATION.match(text.strip())
    if m is None or not any(m.group(k) for k in ("h", "m", "s")):
        return None
    return int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60 + int(m["s"] or 0)


def pir_mttr_s(doc: PirDocument) -> int | None:
    """The PIR's own MTTR figure in seconds (the receipts' ``recovery.verified`` MTTR that the
    drafter writes into the Metrics & Impact table, the summary and the timeline), or None when
    the PIR states none. Detection-to-resolution is the incident's duration, not its MTTR: an
    automatically resolved incident holds its recovery criteria for minutes after it recovered."""
    for name in ("7. Metrics & Impact", "1. Incident Summary", "2. Timeline of Events"):
        for line in doc.section(name).splitlines():
            for hit in re.finditer(r"\bMTTR\b", line):
                rest = line[hit.end() :]
                rest = re.sub(r"^\s*(?:vs\.?\s+target)?\s*(?:\|\s*|—\s*|:\s*|of\s+|was\s+|=\s*)?", "", rest, flags=re.I)
                secs = parse_duration_s(rest)
                if secs is not None:
                    return secs
    return None


def _clock_offset_min(hhmm: str, start: datetime) -> int | None:
    try:
        parts = [int(x) for x in hhmm.split(":")]
    except ValueError:
        return None
    t = start.replace(hour=parts[0] % 24, minute=parts[1], second=parts[2] if len(parts) > 2 else 0, microsecond=0)
    delta = (t - start).total_seconds() / 60
    if delta < -12 * 60:
        delta += 24 * 60
    return round(delta)


def infer_causes(text: str, settings: SearchSettings) -> list[str]:
    """Root causes whose keywords occur in ``text``, most mentioned first (at most three)."""
    low = text.lower()
    scored = []
    for cause, words in settings.cause_keywords.items():
        n = sum(low.count(w.lower()) for w in words)
        if n:
            scored.append((-n, CAUSES.index(cause), cause))
    scored.sort()
    return [c for _, _, c in scored[:3]]


# ggen's actuator actions (the timeline's "MITIGATION: <action> on <target>" lines) -> entry patterns.
ACTION_PATTERNS: dict[str, str] = {
    "scale_concurrency": "auto_scale",
    "scale_replicas": "scale_replicas",
    "open_breaker": "circuit_breaker",
    "close_breaker": "circuit_breaker",
    "override_breaker": "circuit_breaker",
    "throttle": "throttle",
    "prioritize_requests": "throttle",
    "rate_limit": "rate_limit",
    "failover_region": "failover",
    "failback_region": "failback",
    "restart_service": "restart",
    "disable_feature_flag": "feature_flag",
    "rollback_deploy": "rollback",
    "revert_config": "config_revert",
    "create_index": "add_index",
    "optimize_query": "query_tuning",
    "set_compression": "compression",
    "resolve_replication_conflicts": "conflict_resolve",
}
# The same moves in a person's words (hand-written PIRs), checked in this order.
_PATTERN_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (p, re.compile(rx, re.I))
    for p, rx in (
        ("config_revert", r"\b(config(uration)?\s+(roll ?back|revert)|(roll(ed)?\s*back|revert(ed)?)\s+(of\s+)?(the\s+)?config)"),
        ("rollback", r"\b(roll(ed|ing)?[ -]?back|rollback)\b"),
        ("auto_scale", r"\bauto[- ]?scal|\braised?\s+concurrency|\bconcurrency\s+\d+\s*->"),
        ("scale_replicas", r"\bscal\w*\s+(up\s+)?(to\s+\d+\s+)?replicas|\breplicas\s+\d+\s*->"),
        ("circuit_breaker", r"\bbreaker\b"),
        ("throttle", r"\bthrottl|\bload[- ]?shed"),
        ("rate_limit", r"\brate[- ]?limit"),
        ("failback", r"\bfail(ed|ing)?[ -]?back"),
        ("failover", r"\bfail(ed|ing)?[ -]?over\b"),
        ("restart", r"\brestart"),
        ("pool_reset", r"\bpool\s+reset|\breset\s+(the\s+)?(connection\s+)?pool"),
        ("feature_flag", r"\b(disabl\w*|turn\w*\s+off|switch\w*\s+off)\s+(the\s+)?(feature\s+)?flag|\bflag\s+(off|disabled)"),
        ("add_index", r"\b(add|creat)\w*\s+(an?\s+|the\s+)?(missing\s+)?index"),
        ("query_tuning", r"\bquery\s+tun|\brewr\w*\s+the\s+query"),
        ("compression", r"\bcompress"),
        ("quota_increase", r"\bquota\s+(increase|raise)|\brais\w*\s+(the\s+)?quota"),
        ("dns_update", r"\bdns\s+(update|change)|\blower\w*\s+(the\s+)?ttl"),
        ("health_check_tuning", r"\bhealth[- ]?check\s+(tun|threshold)"),
    )
)
_APPLIED = re.compile(r"^\s*(?:MITIGATION(?:\s+FAILED)?)\s*:\s*(?P<action>[a-z_]+)\b")


def _patterns_in(text: str) -> list[str]:
    """Patterns named in ``text``: the action name of a ggen receipt line, else the words."""
    found = [ACTION_PATTERNS[a] for a in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text) if a in ACTION_PATTERNS]
    if found:
        return list(dict.fromkeys(found))
    out = []
    for p, rx in _PATTERN_WORDS:
        if rx.search(text) and not (p == "rollback" and "config_revert" in out):
            out.append(p)
    return out


def pir_mitigations(events: Sequence[tuple[str, str]], went_well: Sequence[str], went_wrong: Sequence[str]) -> list[dict[str, str]]:
    """What the responders tried (the timeline's mitigation lines) and how each fared, from
    What Went Well (worked) and What Went Wrong (failed; partial when both say something)."""
    tried: list[str] = []
    for _, event in events:
        m = _APPLIED.match(event)
        if m and m["action"] in ACTION_PATTERNS:
            tried.append(ACTION_PATTERNS[m["action"]])
        elif m is None and _ACTION_WORDS.search(event):
            tried += _patterns_in(event)
    out: list[dict[str, str]] = []
    for p in dict.fromkeys(tried):
        good = [w for w in went_well if p in _patterns_in(w)]
        bad = [w for w in went_wrong if p in _patterns_in(w)]
        if good and bad:
            outcome, note = "partial", bad[0]
        elif bad:
            outcome, note = "failed", bad[0]
        elif good:
            outcome, note = "worked", ""
        else:
            outcome, note = "partial", "applied; the PIR does not say whether it helped"
        out.append({"pattern": p, "outcome": outcome, "note": _one_line(_uncited(note))[:200]})
    return out


_CITATION = re.compile(r"\s*\[(?:receipt|knowledge|runbooks/|source|log|trace|metric)[^\]]*\]")
_PLACEHOLDER = re.compile(r"\bTODO\b|\(fill in\)", re.I)
# Rows of Metrics & Impact that describe other incidents or the review itself, not this incident's symptoms.
_NOT_SYMPTOM_ROW = re.compile(r"^(previous incident|pir due|revenue impact|customer complaints|data loss)\b", re.I)
_DETECTION_EVENT = re.compile(r"\b(alert|alerted|detected|triggered|anomaly|paged|fired|page)\b", re.I)


def _uncited(text: str) -> str:
    return _CITATION.sub("", text).strip()


def _slugify(text: str, max_words: int = 6) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words[:max_words]) or "incident"


def pir_to_entry(
    doc: PirDocument,
    *,
    allow_draft: bool = False,
    causes: Sequence[str] = (),
    related: Sequence[str] = (),
    settings: SearchSettings | None = None,
) -> tuple[str, str]:
    """(file name, Markdown text) of the entry for ``doc``. Raises PirRefused for a DRAFT
    unless ``allow_draft``, PirError for anything the entry cannot be built without."""
    st = settings or load_settings()
    m = doc.meta
    if m.status == "DRAFT" and not allow_draft:
        raise PirRefused(
            doc.path,
            "status",
            "the PIR is still a DRAFT; finish its sign-off (status FINAL or APPROVED) or pass --allow-draft",
        )
    rca = doc.section("3. Root Cause Analysis (5 Whys)")
    statement = root_cause_statement(rca)
    if not statement:
        raise PirError(doc.path, "section 3. Root Cause Analysis (5 Whys)", "has no 'ROOT CAUSE:' or 'Root cause statement:' line")
    customers = customers_affected(doc)
    if customers is None:
        raise PirError(
            doc.path, "section 7. Metrics & Impact", "has no 'Accounts Affected: N / Total' line (nor does the summary's impact line)"
        )
    cause_list = [c.strip().lower().replace("-", "_") for c in causes]
    for c in cause_list:
        if c not in CAUSES:
            raise PirError(doc.path, "cause", f"unknown root cause {c!r} (one of: {', '.join(CAUSES)})")
    if not cause_list:
        root_lines = "\n".join(line for line in rca.splitlines() if re.search(r"root[- ]cause", line, re.I))
        cause_list = infer_causes(statement + "\n" + root_lines, st) or infer_causes(rca, st)
    if not cause_list:
        raise PirError(doc.path, "section 3. Root Cause Analysis (5 Whys)", "names no known root cause; pass --cause")

    detected = m.detected_at
    events = timeline_events(doc.section("2. Timeline of Events"))
    if not events:
        raise PirError(doc.path, "section 2. Timeline of Events", "has no 'HH:MM UTC  event' lines")
    # Placeholders the review never filled in ("TODO (fill in)") are not facts for the next on-call.
    went_well = [w for w in list_items(doc.section("4. What Went Well")) if not _PLACEHOLDER.search(w)]
    went_wrong = [w for w in list_items(doc.section("5. What Went Wrong")) if not _PLACEHOLDER.search(w)]
    lessons = list_items(doc.section("9. Lessons Learned")) or [p.strip() for p in doc.section("9. Lessons Learned").split("\n\n") if p.strip()]
    lessons = [x for x in lessons if not _PLACEHOLDER.search(x)]
    factors = [f for f in contributing_factors(rca) if not _PLACEHOLDER.search(f)]

    # Prevention: action items by priority (High -> same week, Medium -> month, Low -> quarter).
    actions_text = doc.section("6. Action Items")
    _, prio = split_sections(actions_text, level=3)
    buckets: dict[str, list[str]] = {h: [] for h in PREVENTION_HORIZONS}
    # An action item whose status says Complete is ticked in the entry's checklist.
    for title, content, _ in prio:
        t = title.lower()
        horizon = "Short-term" if t.startswith("high") else "Long-term" if t.startswith("low") else "Medium-term"
        buckets[horizon] += list_items(content)
    if not any(buckets.values()):
        buckets["Medium-term"] = list_items(actions_text)
    buckets["Medium-term"] += [i for i in list_items(doc.section("8. Follow-Up Items")) if i not in buckets["Medium-term"]]
    for h in PREVENTION_HORIZONS:
        if not buckets[h]:
            buckets[h] = ["Nothing planned at this horizon in the PIR; review at the weekly KB review"]

    # Symptoms: the summary and impact as the PIR states them, what monitoring saw (the alert,
    # not the mitigations after it), and this incident's own figures (not the previous incident
    # or the PIR's due date, which the Metrics & Impact table also lists; no placeholders).
    summary = doc.section("1. Incident Summary")
    summary_text = "\n".join(
        line
        for line in summary.splitlines()
        if not re.match(r"^\s*[-*]\s+\**(incident id|severity|duration)\b", line, re.I) and not _PLACEHOLDER.search(line)
    ).strip()
    metrics = [
        _uncited(x).rstrip(" —")
        for x in list_items(doc.section("7. Metrics & Impact"))
        if not _PLACEHOLDER.search(x) and not _NOT_SYMPTOM_ROW.match(x.strip("* ")) and "[knowledge " not in x
    ]
    detection = [(t, e) for t, e in events if _DETECTION_EVENT.search(e) and not _APPLIED.match(e)][:3] or events[:1]
    symptoms = (summary_text + "\n\n" if summary_text else "") + "**What monitoring detected:**\n\n" + "\n".join(
        f"- {t} UTC: {_uncited(e)}" for t, e in detection
    )
    if metrics:
        symptoms += "\n\n**Key metrics:**\n\n" + "\n".join(f"- {x}" for x in metrics)

    steps = []
    for hhmm, event in events:
        if _ACTION_WORDS.search(event):
            off = _clock_offset_min(hhmm, detected)
            steps.append(f"- T+{off} min ({hhmm} UTC): {event}" if off is not None and off >= 0 else f"- {hhmm} UTC: {event}")
    mttr_s = pir_mttr_s(doc)
    duration_min = doc.duration_min
    if mttr_s is None:
        mttr_min = duration_min
    else:
        mttr_min = minutes_from_seconds(mttr_s)
        duration_min = max(duration_min, mttr_min)
    resolution = []
    if mttr_s is None or mttr_min == doc.duration_min:
        resolution.append(f"Resolved {doc.duration_min} min after detection ({m.resolved_at.strftime('%H:%M')} UTC).")
    else:
        resolution.append(
            f"Recovered {format_mttr(mttr_min, mttr_s)} after detection (MTTR); resolved (all clear) "
            f"{doc.duration_min} min after detection ({m.resolved_at.strftime('%H:%M')} UTC)."
        )
    if steps:
        resolution.append("\n**Steps:**\n\n" + "\n".join(steps))
    if went_well:
        resolution.append("\n**What worked:**\n\n" + "\n".join(f"- {w}" for w in went_well))
    if went_wrong:
        resolution.append("\n**What failed at first:**\n\n" + "\n".join(f"- {w}" for w in went_wrong))
    solution = (
        next((w for w in went_well if _FIX_WORDS.search(w)), None)
        or next((e for _, e in events if _FIX_WORDS.search(e)), None)
        or next((w for w in went_well if _ACTION_WORDS.search(w)), None)
        or (went_well[0] if went_well else "See the linked PIR for the resolution steps.")
    )

    text_all = "\n".join(doc.sections.values())
    regions = sorted(set(re.findall(r"\bus-(?:central|west|east)\d\b", text_all)))
    accounts = sorted(set(re.findall(r"\bacct-\d+\b", text_all)))
    escalated = re.search(r"\bescalat|\bpaged\b|tech lead", "\n".join(e for _, e in events), re.I) is not None

    type_title = TYPE_TITLES[m.incident_type]
    if " - " in m.title:
        title = m.title
    else:
        title = f"{type_title} - {_short_cause(statement)}"
    day = detected.date()
    slug = _slugify(f"{type_title} {cause_list[0].replace('_', ' ')}")
    meta: dict[str, Any] = {
        "title": title[:160],
        "incident_id": m.incident_id,
        "date": day,
        "severity": m.severity,
        "duration_min": duration_min,
        "mttr_min": mttr_min,
        **({"mttr_s": mttr_s} if mttr_s is not None else {}),
        "customers_affected": customers,
        "root_cause": statement[:400] if len(statement) >= 10 else statement + " (see PIR)",
        "solution": solution[:400] if len(solution) >= 10 else solution + " (see PIR)",
        "incident_types": [m.incident_type],
        "causes": cause_list,
        "services": [m.service],
        "regions": regions,
        "accounts": accounts,
        "tags": ["from-pir", m.service],
        "outcome": "escalated" if escalated else "resolved",
        "kb_assisted": False,
        "mitigations": pir_mitigations(events, went_well, went_wrong),
        "related_incidents": list(related),
        "links": {"pir": str(doc.path), "runbook": f"runbooks/incidents/{m.incident_type}.toml"},
    }
    sections = {
        "Symptoms": symptoms,
        "Root Cause": f"**Primary cause:** {statement}\n\n{_strip_statement_lines(rca)}",
        "Contributing Factors": "\n".join(f"- {f}" for f in factors) or "- None recorded in the PIR.",
        "Timeline": "| Time | Event | Action |\n|---|---|---|\n"
        + "\n".join(f"| {t} | {_cell(e)} | {'yes' if _ACTION_WORDS.search(e) else ''} |" for t, e in events),
        "Resolution": "\n".join(resolution),
        "Prevention": "\n\n".join(
            f"### {h}\n\n" + "\n".join(f"- [{_tick(i)}] {_one_line(i)}" for i in buckets[h]) for h in PREVENTION_HORIZONS
        ),
        "Lessons Learned": "\n".join(f"- {_one_line(x)}" for x in lessons) or "- None recorded in the PIR.",
    }
    name = f"incident-{slug}-{day.isoformat()}.md"
    return name, render_entry(meta, sections)


def _tick(item: str) -> str:
    return "x" if re.search(r"status:?\s*complete\b|—\s*complete\s*$", item, re.I) else " "


def _short_cause(statement: str) -> str:
    """The first clause of a root-cause statement, for the entry title."""
    short = re.split(r",\s*(?:so|which|and so|causing)\b|;|\s+because\s+", statement.strip().rstrip("."), maxsplit=1)[0].strip()
    if len(short) > 110:
        short = short[:107].rsplit(" ", 1)[0] + "..."
    return short[0].upper() + short[1:] if short else statement


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _strip_statement_lines(rca: str) -> str:
    """The 5-whys chains without what the entry shows elsewhere (contributing factors, the
    statement); headings inside become bold lines so they cannot clash with the entry's sections."""
    pre, subs = split_sections(rca, level=3)
    kept = [pre] + [f"### {t}\n\n{c}" for t, c, _ in subs if "contributing factor" not in t.lower()]
    text = "\n\n".join(k for k in kept if k.strip())
    text = re.sub(r"^\s*\**root[- ]cause statement\**\s*:?.*$", "", text, flags=re.I | re.M)
    return re.sub(r"^#{2,6}\s+(.+)$", r"**\1**", text, flags=re.M).strip()


def suggest_related(doc: PirDocument, kb: "KnowledgeBase", causes: Sequence[str] = (), limit: int = 3) -> list[str]:
    """Entries of the same incident type most like this PIR (its service, causes and root-cause
    statement), for the new entry's related_incidents."""
    from .similar import similar_incidents

    st = kb.settings
    statement = root_cause_statement(doc.section("3. Root Cause Analysis (5 Whys)")) or ""
    cause_list = list(causes) or infer_causes(statement, st)
    signals: dict[str, Any] = {"service": doc.meta.service, "statement": statement}
    if cause_list:
        signals["root_cause_hint"] = cause_list[0]
    hits = similar_incidents(doc.meta.incident_type, signals, limit=limit * 3, kb=kb, exclude=[doc.meta.incident_id])
    return [h.entry_id for h in hits if doc.meta.incident_type in h.incident_types][:limit]


def add_from_pir(
    pir_path: Path,
    dest_dir: Path,
    *,
    allow_draft: bool = False,
    causes: Sequence[str] = (),
    related: Sequence[str] = (),
    force: bool = False,
    settings: SearchSettings | None = None,
) -> Path:
    """Convert ``pir_path`` and write the entry into ``dest_dir``; returns the new file's path.

    The entry is validated before it is written (written to a temporary name, then renamed), so
    a failed conversion leaves nothing behind. An existing entry is never overwritten without
    ``force``; a different incident with the same name gets a numbered slug instead.
    """
    doc = read_pir(pir_path)
    name, text = pir_to_entry(doc, allow_draft=allow_draft, causes=causes, related=related, settings=settings)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name
    n = 2
    while target.exists() and not force:
        try:
            existing = parse_entry(target, target.read_text(encoding="utf-8"))
            same = existing.meta.incident_id == doc.meta.incident_id
        except (EntryError, OSError, UnicodeDecodeError):
            same = False
        if same:
            raise PirRefused(target, None, f"an entry for {doc.meta.incident_id} already exists; pass --force to replace it")
        stem, day = name[: -len("-YYYY-MM-DD.md")], name[-len("YYYY-MM-DD.md") :]
        target = dest_dir / f"{stem}-{n}-{day}"
        n += 1
    try:
        parse_entry(target, text)
    except EntryError as exc:
        raise PirError(pir_path, exc.field, f"the entry built from this PIR is invalid: {exc.message}") from None
    tmp = target.with_name("." + target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
