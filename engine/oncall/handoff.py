"""Shift handoff records (08-on-call-management): what the outgoing shift tells the incoming one.

A record carries the fields of the handoff form: Outgoing, Incoming, Shift (UTC range), ONGOING
INCIDENTS (unresolved incidents from the signed ledger), RECENT CHANGES (item, time, status; the
ledger's applied mitigations of the last 24 h plus what people add), WATCH FOR and QUESTIONS (Q/A).
Records are JSON files in ``DATA_DIR/handoffs/``; the incoming shift reads the latest one addressed
to it and may acknowledge it.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.clock import iso_utc
from engine.oncall.roster import OnCallRoster

RECENT_WINDOW_MS = 24 * 3_600_000


@dataclass
class Change:
    """One RECENT CHANGES line: what changed, when, and its status or reason."""

    item: str
    time: str
    status: str = ""


@dataclass
class Question:
    q: str
    a: str = ""


@dataclass
class Handoff:
    """One handoff record."""

    id: str
    created_at_ms: int
    created_by: str
    shift: dict[str, Any]  # name, start, end (UTC ISO), start_ms, end_ms
    outgoing: dict[str, Any]  # shift name, primary, secondary
    incoming: dict[str, Any]
    ongoing_incidents: list[dict[str, Any]] = field(default_factory=list)
    recent_changes: list[Change] = field(default_factory=list)
    watch_for: list[str] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    acknowledged_by: str | None = None
    acknowledged_at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Handoff":
        d = dict(d)
        d["recent_changes"] = [Change(**c) for c in d.get("recent_changes", [])]
        d["questions"] = [Question(**q) for q in d.get("questions", [])]
        return cls(**d)


def handoff_dir(root: Path) -> Path:
    return Path(root) / "handoffs"


def _people(roster: OnCallRoster, shift_name: str, primary: str, secondary: str) -> dict[str, Any]:
    return {
        "shift": shift_name,
        "primary": roster.people[primary].name if primary in roster.people else primary,
        "secondary": roster.people[secondary].name if secondary in roster.people else secondary,
        "primary_id": primary,
        "secondary_id": secondary,
    }


def parse_change(text: str) -> Change:
    """``item | time | status`` (time and status optional), as typed on the command line."""
    parts = [p.strip() for p in text.split("|")]
    if not parts[0]:
        raise ValueError(f"a change needs an item: {text!r} (use 'item | time | status')")
    return Change(parts[0], parts[1] if len(parts) > 1 else "", " | ".join(parts[2:]) if len(parts) > 2 else "")


def parse_question(text: str) -> Question:
    """``question? answer`` split at the first ``?`` (or ``Q = A``); an unanswered question is fine."""
    if "=" in text and "?" not in text:
        q, a = text.split("=", 1)
        return Question(q.strip(), a.strip())
    if "?" in text:
        q, a = text.split("?", 1)
        return Question(q.strip() + "?", a.strip())
    return Question(text.strip())


def ongoing_incidents(ledger: Any, at_ms: int) -> list[dict[str, Any]]:
    """Unresolved incidents from the ledger, most severe first."""
    from engine.receipts import incidents_from_ledger

    out = []
    for s in incidents_from_ledger(ledger):
        if s.status == "resolved":
            continue
        out.append({
            "incident_id": s.incident_id,
            "severity": s.severity,
            "current_severity": s.current_severity,
            "type": s.incident_type,
            "service": s.service,
            "region": s.region,
            "status": s.status,
            "summary": s.summary,
            "detected_at": iso_utc(s.detected_at_ms) if s.detected_at_ms is not None else None,
            "acknowledged": s.acknowledged_at_ms is not None,
            "open_for_s": (at_ms - s.detected_at_ms) // 1000 if s.detected_at_ms is not None else None,
        })
    out.sort(key=lambda x: (x["severity"] or "Sev9", x["detected_at"] or ""))
    return out


def recent_changes(ledger: Any, at_ms: int, window_ms: int = RECENT_WINDOW_MS) -> list[Change]:
    """Changes the engine or people applied in the window before ``at_ms`` (mitigation receipts)."""
    found = []
    for iid in ledger.incident_ids(at_ms - window_ms):
        for rec in ledger.incident_receipts(iid):
            if rec.kind != "mitigation.applied" or not (at_ms - window_ms <= rec.observed_at_ms <= at_ms):
                continue
            try:
                p = rec.payload()
            except Exception:  # a damaged receipt is verify's business; the handoff names what it can
                p = {}
            actor = str(p.get("actor") or "")
            found.append((rec.observed_at_ms, Change(str(p.get("summary") or rec.kind), iso_utc(rec.observed_at_ms), f"applied by {actor}" if actor else "applied")))
    found.sort(key=lambda x: x[0])
    return [c for _, c in found]


def build_handoff(
    roster: OnCallRoster,
    at_ms: int,
    *,
    created_by: str = "",
    ledger: Any = None,
    changes: list[Change] | None = None,
    watch_for: list[str] | None = None,
    questions: list[Question] | None = None,
) -> Handoff:
    """The record for the next shift boundary after ``at_ms``: the current pair hands to the next."""
    cur = roster.segment_at(at_ms)
    boundary = cur.shift_end_ms
    nxt = roster.segment_at(boundary)
    auto = recent_changes(ledger, at_ms) if ledger is not None else []
    return Handoff(
        id=f"{iso_utc(boundary)[:16].replace(':', '').replace('-', '')}Z-{re.sub(r'[^a-z0-9]+', '-', nxt.shift.name.lower()).strip('-')}",
        created_at_ms=at_ms,
        created_by=created_by or _people(roster, cur.shift.name, cur.primary, cur.secondary)["primary"],
        shift={"name": nxt.shift.name, "start": iso_utc(nxt.shift_start_ms), "end": iso_utc(nxt.shift_end_ms), "start_ms": nxt.shift_start_ms, "end_ms": nxt.shift_end_ms},
        outgoing=_people(roster, cur.shift.name, cur.primary, cur.secondary),
        incoming=_people(roster, nxt.shift.name, nxt.primary, nxt.secondary),
        ongoing_incidents=ongoing_incidents(ledger, at_ms) if ledger is not None else [],
        recent_changes=auto + list(changes or []),
        watch_for=list(watch_for or []),
        questions=list(questions or []),
    )


def save_handoff(root: Path, h: Handoff) -> Path:
    """Write the record (atomically); a second record for the same boundary replaces the first."""
    d = handoff_dir(root)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / f"{h.id}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(h.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)
    return path


def load_handoffs(root: Path) -> list[Handoff]:
    """Every stored record, oldest boundary first. Unreadable files are skipped by name in ``errors``."""
    out: list[Handoff] = []
    d = handoff_dir(root)
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            out.append(Handoff.from_dict(orjson.loads(p.read_bytes())))
        except Exception:
            continue
    out.sort(key=lambda h: (h.shift.get("start_ms", 0), h.created_at_ms))
    return out


def handoff_for(root: Path, at_ms: int) -> Handoff | None:
    """The record addressed to the shift in force at ``at_ms`` (else the latest one before it)."""
    records = load_handoffs(root)
    current = [h for h in records if h.shift.get("start_ms", 0) <= at_ms < h.shift.get("end_ms", 0)]
    if current:
        return current[-1]
    past = [h for h in records if h.shift.get("start_ms", 0) <= at_ms]
    upcoming = [h for h in records if h.shift.get("start_ms", 0) > at_ms]
    return upcoming[0] if upcoming else (past[-1] if past else None)


def acknowledge_handoff(root: Path, h: Handoff, who: str, at_ms: int) -> Path:
    h.acknowledged_by = who
    h.acknowledged_at_ms = at_ms
    return save_handoff(root, h)


def render_handoff(h: Handoff) -> str:
    """The record as the form people read (plain text; callers escape it for a terminal)."""
    o, i = h.outgoing, h.incoming
    lines = [
        f"Outgoing: {o['primary']} (primary), {o['secondary']} (secondary), {o['shift']}",
        f"Incoming: {i['primary']} (primary), {i['secondary']} (secondary), {i['shift']}",
        f"Shift: {h.shift['name']} {h.shift['start'][:16].replace('T', ' ')} to {h.shift['end'][:16].replace('T', ' ')} UTC",
        "",
        "ONGOING INCIDENTS",
    ]
    if not h.ongoing_incidents:
        lines.append("  none")
    for inc in h.ongoing_incidents:
        ack = "acknowledged" if inc.get("acknowledged") else "NOT acknowledged"
        mins = (inc.get("open_for_s") or 0) // 60
        lines.append(f"  {inc.get('severity')} {inc.get('incident_id')} {inc.get('type')} on {inc.get('service')} ({inc.get('status')}, {ack}, open {mins} min)")
        if inc.get("summary"):
            lines.append(f"    {inc['summary']}")
    lines += ["", "RECENT CHANGES"]
    if not h.recent_changes:
        lines.append("  none")
    for c in h.recent_changes:
        lines.append(f"  - {c.item}" + (f" | {c.time}" if c.time else "") + (f" | {c.status}" if c.status else ""))
    lines += ["", "WATCH FOR"]
    lines += [f"  - {w}" for w in h.watch_for] or ["  nothing noted"]
    lines += ["", "QUESTIONS"]
    if not h.questions:
        lines.append("  none")
    for q in h.questions:
        lines.append(f"  Q: {q.q}")
        lines.append(f"  A: {q.a or '(open)'}")
    if h.acknowledged_by:
        lines += ["", f"Read by {h.acknowledged_by} at {iso_utc(h.acknowledged_at_ms or 0)}"]
    return "\n".join(lines)
