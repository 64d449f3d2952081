"""The warroom (09-warroom-templates): one room per incident, with its roles, a scribe log, cadence
reminders and the closure checklist as a gate.

State lives in ``DATA_DIR/warrooms/<uuid>.json``. Every change people make (a role assigned or
handed over, a scribe-log line, a checklist item, the closing) is also written to the incident's
timeline as an ``incident.note`` receipt through a :class:`NoteRecorder`: the live engine's
``note()`` when the engine runs in this process, or the signed ledger directly otherwise.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import Field

from engine.clock import iso_utc
from engine.policy.loader import StrictModel, load_model

LOG_KINDS = ("note", "action", "diagnostic", "decision", "result", "poll", "status")


# ----------------------------------------------------------------------------- policy (data)
class RoomSettings(StrictModel):
    max_people: int = Field(ge=1)


class Cadence(StrictModel):
    ic_poll_every_s: int = Field(gt=0)
    oncall_report_every_s: int = Field(gt=0)
    silence_alarm_s: int = Field(gt=0)
    decision_point_after_s: int = Field(gt=0)


class RoleSpec(StrictModel):
    id: str
    title: str
    required: bool = False
    max: int = Field(ge=1)
    duties: str = ""


class ChecklistItem(StrictModel):
    id: str
    text: str


class WarroomPolicy(StrictModel):
    room: RoomSettings
    cadence: Cadence
    roles: list[RoleSpec] = Field(min_length=1)
    checklist: list[ChecklistItem] = Field(min_length=1)

    def role(self, role_id: str) -> RoleSpec:
        for r in self.roles:
            if r.id == role_id:
                return r
        raise WarroomError(f"unknown role {role_id!r} (roles: {', '.join(r.id for r in self.roles)})")


def load_warroom_policy(path: Path | None = None) -> WarroomPolicy:
    """runbooks/warroom/warroom.toml, validated (errors name the file and field)."""
    from runbooks import RUNBOOKS_DIR

    return load_model(path or RUNBOOKS_DIR / "warroom" / "warroom.toml", WarroomPolicy)


# ----------------------------------------------------------------------------- recording
class NoteRecorder(Protocol):
    """Writes a warroom event to the incident's timeline; returns the receipt id when known."""

    def record(self, incident_id: str, actor: str, text: str, data: dict[str, Any]) -> str | None: ...


class EngineRecorder:
    """Through a live engine in this process: ``engine.note`` emits ``incident.note`` (signed by
    the engine's ReceiptSink) and the note joins the in-memory timeline the console shows."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def record(self, incident_id: str, actor: str, text: str, data: dict[str, Any]) -> str | None:
        self.engine.note(incident_id, actor, text, **data)
        return None


class LedgerRecorder:
    """Straight into the signed ledger (no engine needed): an ``incident.note`` receipt chained to
    the incident's previous receipt, signed with the data directory's key."""

    def __init__(self, ledger_path: Path, keys_dir: Path, clock: Any = None) -> None:
        self.ledger_path = Path(ledger_path)
        self.keys_dir = Path(keys_dir)
        self.clock = clock

    def record(self, incident_id: str, actor: str, text: str, data: dict[str, Any]) -> str | None:
        from engine.clock import WallClock
        from engine.receipts import KeyStore, Ledger, ReceiptSink

        clock = self.clock or WallClock()
        now = clock.now_ms()
        keys = KeyStore.open_or_init(self.keys_dir, now_ms=now)
        ledger = Ledger.open(self.ledger_path, keys)
        try:
            prior = ledger.incident_receipts(incident_id)
            if not prior:
                raise WarroomError(f"incident {incident_id} has no receipts in {self.ledger_path}")
            first = prior[0].payload()
            last_seen = max(r.observed_at_ms for r in prior)
            evidence = dict(data, text=text)
            if now < last_seen:  # clocks disagree (a replayed incident): keep the timeline monotone, say so
                evidence["written_at_ms"] = now
            at = max(now, last_seen)
            sink = ReceiptSink(ledger, keys, clock=clock)
            rec = sink.append_receipt(
                "incident.note", incident_id, evidence=evidence, actor=f"person:{actor}",
                incident_type=first.get("incident_type"), severity=prior[-1].payload().get("severity") or first.get("severity"),
                service=first.get("service"), region=first.get("region"), source_signal="operator",
                summary=text, observed_at_ms=at, recorded_at_ms=at, policy={},
            )
            return rec.receipt_id
        finally:
            ledger.close()


# ----------------------------------------------------------------------------- state
class WarroomError(ValueError):
    """A warroom request that cannot be carried out (unknown role, room full, checklist open)."""


@dataclass
class LogEntry:
    at_ms: int
    author: str
    kind: str
    text: str
    receipt_id: str | None = None


@dataclass
class Warroom:
    incident_id: str
    severity: str
    title: str
    incident_start_ms: int | None
    opened_at_ms: int
    opened_by: str
    roles: dict[str, list[str]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    checklist: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed_at_ms: int | None = None
    closed_by: str | None = None

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Warroom":
        d = dict(d)
        d["log"] = [LogEntry(**e) for e in d.get("log", [])]
        return cls(**d)

    @property
    def open(self) -> bool:
        return self.closed_at_ms is None

    @property
    def people(self) -> list[str]:
        seen: list[str] = []
        for names in self.roles.values():
            for n in names:
                if n not in seen:
                    seen.append(n)
        return seen

    def holder(self, role: str) -> str | None:
        names = self.roles.get(role) or []
        return names[0] if names else None

    # -- changes (each returns the log entry written) -------------------------------------------
    def _entry(self, rec: NoteRecorder | None, now_ms: int, author: str, kind: str, text: str, data: dict[str, Any]) -> LogEntry:
        rid = None
        if rec is not None:
            rid = rec.record(self.incident_id, author, text, {"warroom": dict(data, entry_kind=kind)})
        e = LogEntry(now_ms, author, kind, text, rid)
        self.log.append(e)
        return e

    def _require_open(self) -> None:
        if not self.open:
            raise WarroomError(f"the warroom of {self.incident_id} was closed at {iso_utc(self.closed_at_ms or 0)}")

    def assign(self, policy: WarroomPolicy, role: str, person: str, *, by: str, now_ms: int, rec: NoteRecorder | None = None) -> LogEntry:
        """Put ``person`` in ``role`` (the room is capped; single-holder roles must be handed over)."""
        self._require_open()
        spec = policy.role(role)
        person = person.strip()
        if not person:
            raise WarroomError("name the person to assign")
        holders = self.roles.setdefault(role, [])
        if person in holders:
            raise WarroomError(f"{person} is already {spec.title}")
        if len(holders) >= spec.max:
            hint = f"; use `handover --role {role} --to NAME`" if spec.max == 1 else ""
            raise WarroomError(f"{spec.title} already has {len(holders)} of {spec.max} ({', '.join(holders)}){hint}")
        if person not in self.people and len(self.people) >= policy.room.max_people:
            raise WarroomError(f"the room is full ({policy.room.max_people} people); ask an observer to leave first")
        holders.append(person)
        return self._entry(rec, now_ms, by, "action", f"{person} is {spec.title} (assigned by {by})", {"event": "assigned", "role": role, "person": person})

    def handover(self, policy: WarroomPolicy, role: str, to: str, *, by: str, now_ms: int, rec: NoteRecorder | None = None) -> LogEntry:
        """Hand a role over: the current holder leaves it, ``to`` takes it."""
        self._require_open()
        spec = policy.role(role)
        holders = self.roles.get(role) or []
        if not holders:
            raise WarroomError(f"nobody holds {spec.title} yet; use assign")
        prev = holders[0]
        if to == prev:
            raise WarroomError(f"{to} already holds {spec.title}")
        if to not in self.people and len(self.people) - (1 if sum(prev in v for v in self.roles.values()) == 1 else 0) >= policy.room.max_people:
            raise WarroomError(f"the room is full ({policy.room.max_people} people)")
        holders[0] = to
        return self._entry(rec, now_ms, by, "action", f"{spec.title} handed over from {prev} to {to}", {"event": "handover", "role": role, "from": prev, "to": to})

    def write(self, text: str, *, author: str, kind: str = "note", now_ms: int, rec: NoteRecorder | None = None) -> LogEntry:
        """A scribe-log line (action, diagnostic ``speaker: statement``, decision, result, poll, status)."""
        self._require_open()
        if kind not in LOG_KINDS:
            raise WarroomError(f"unknown log kind {kind!r} (kinds: {', '.join(LOG_KINDS)})")
        if not text.strip():
            raise WarroomError("a log line needs text")
        return self._entry(rec, now_ms, author, kind, text, {"event": "log"})

    def check(self, policy: WarroomPolicy, item: str, *, by: str, now_ms: int, detail: str = "", rec: NoteRecorder | None = None) -> LogEntry:
        """Tick a closure-checklist item (with what backs it: the root cause, the PIR date ...)."""
        self._require_open()
        known = {c.id: c for c in policy.checklist}
        if item not in known:
            raise WarroomError(f"unknown checklist item {item!r} (items: {', '.join(known)})")
        self.checklist[item] = {"by": by, "at_ms": now_ms, "detail": detail}
        return self._entry(rec, now_ms, by, "result", f"checklist: {known[item].text}" + (f": {detail}" if detail else ""), {"event": "checked", "item": item, "detail": detail})

    def missing(self, policy: WarroomPolicy) -> list[ChecklistItem]:
        return [c for c in policy.checklist if c.id not in self.checklist]

    def close(self, policy: WarroomPolicy, *, by: str, now_ms: int, rec: NoteRecorder | None = None) -> LogEntry:
        """Close the room: refused while a checklist item is open."""
        self._require_open()
        missing = self.missing(policy)
        if missing:
            raise WarroomError("closure checklist incomplete: " + "; ".join(f"{c.id} ({c.text})" for c in missing))
        e = self._entry(rec, now_ms, by, "decision", f"warroom closed by {by}; duration {_dur(now_ms - (self.incident_start_ms or self.opened_at_ms))}", {"event": "closed"})
        self.closed_at_ms = now_ms
        self.closed_by = by
        return e

    # -- reminders ---------------------------------------------------------------------------
    def reminders(self, policy: WarroomPolicy, now_ms: int, *, status_every_s: int = 0, last_status_ms: int | None = None) -> list[str]:
        """What the room owes right now: missing roles, an overdue IC poll or status update, the
        decision point."""
        if not self.open:
            return []
        out: list[str] = []
        for r in policy.roles:
            if r.required and not self.roles.get(r.id):
                out.append(f"assign the {r.title} (`assign --role {r.id} --person NAME`)")
        c = policy.cadence
        last_poll = max([e.at_ms for e in self.log if e.kind == "poll"] + [self.opened_at_ms])
        if now_ms - last_poll >= c.ic_poll_every_s * 1000:
            out.append(f"IC poll overdue: last {_dur(now_ms - last_poll)} ago (every {_dur(c.ic_poll_every_s * 1000)}); log it with --kind poll")
        if status_every_s:
            stamps = [e.at_ms for e in self.log if e.kind == "status"] + ([last_status_ms] if last_status_ms else [])
            last = max(stamps) if stamps else self.opened_at_ms
            if now_ms - last >= status_every_s * 1000:
                out.append(f"{self.severity} status update due: last {_dur(now_ms - last)} ago (every {_dur(status_every_s * 1000)})")
        start = self.incident_start_ms or self.opened_at_ms
        if now_ms - start >= c.decision_point_after_s * 1000 and not any(e.kind == "decision" for e in self.log):
            out.append(f"decision point ({_dur(now_ms - start)} in): state the options with their cost (continue, rollback, failover) and pick one with a deadline")
        return out

    # -- the scribe log as people read it ----------------------------------------------------------
    def render(self, policy: WarroomPolicy, now_ms: int, *, status_every_s: int = 0, last_status_ms: int | None = None) -> str:
        start = self.incident_start_ms or self.opened_at_ms
        lines = [
            f"Incident ID: {self.incident_id}",
            f"Title: {self.title}",
            f"Severity: {self.severity}",
            f"Start Time: {_utc(start)}",
            f"Incident Commander: {self.holder('incident-commander') or '(unassigned)'}",
            f"Scribe: {self.holder('scribe') or '(unassigned)'}",
            f"Status: {'open' if self.open else 'closed ' + _utc(self.closed_at_ms or 0) + ' by ' + str(self.closed_by)}",
            "",
            "ROLES",
        ]
        for r in policy.roles:
            names = self.roles.get(r.id) or []
            if names or r.required:
                lines.append(f"  {r.title}: {', '.join(names) or '(unassigned)'}")
        lines.append(f"  people in the room: {len(self.people)} of {policy.room.max_people}")
        lines += ["", "CLOSURE CHECKLIST"]
        for c in policy.checklist:
            done = self.checklist.get(c.id)
            lines.append(f"  [{'x' if done else ' '}] {c.id}: {c.text}" + (f" ({done['detail']})" if done and done.get("detail") else ""))
        rem = self.reminders(policy, now_ms, status_every_s=status_every_s, last_status_ms=last_status_ms)
        if rem:
            lines += ["", "REMINDERS"] + [f"  ! {r}" for r in rem]
        lines += ["", "TIMELINE"]
        for e in self.log:
            hhmm = datetime.fromtimestamp(e.at_ms / 1000, tz=timezone.utc).strftime("%H:%M")
            tag = "" if e.kind == "note" else f"[{e.kind}] "
            lines.append(f"  {hhmm} - {tag}{e.text} ({e.author})")
        return "\n".join(lines)


def _utc(t_ms: int) -> str:
    s = iso_utc(t_ms)
    return s[:10] + " " + s[11:19] + " UTC"


def _dur(ms: int) -> str:
    s = max(0, ms) // 1000
    if s < 60:
        return f"{s} s"
    m = s // 60
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


# ----------------------------------------------------------------------------- store
def warroom_dir(root: Path) -> Path:
    return Path(root) / "warrooms"


def _file(root: Path, incident_id: str) -> Path:
    return warroom_dir(root) / (incident_id.removeprefix("urn:uuid:") + ".json")


def save_warroom(root: Path, room: Warroom) -> Path:
    p = _file(root, room.incident_id)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(room.to_dict(), option=orjson.OPT_INDENT_2))
    os.replace(tmp, p)
    return p


def load_warroom(root: Path, incident_id: str) -> Warroom | None:
    p = _file(root, incident_id)
    try:
        return Warroom.from_dict(orjson.loads(p.read_bytes()))
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise WarroomError(f"{p}: not a readable warroom file ({exc})") from None


def list_warrooms(root: Path) -> list[Warroom]:
    out = []
    d = warroom_dir(root)
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out.append(Warroom.from_dict(orjson.loads(p.read_bytes())))
        except Exception:
            continue
    return sorted(out, key=lambda r: r.opened_at_ms)


def open_warroom(root: Path, *, incident_id: str, severity: str, title: str, incident_start_ms: int | None, by: str, now_ms: int, rec: NoteRecorder | None = None) -> Warroom:
    """Open the room of an incident (one per incident; a closed room cannot be reopened here)."""
    existing = load_warroom(root, incident_id)
    if existing is not None:
        state = "open" if existing.open else "closed"
        raise WarroomError(f"the warroom of {incident_id} already exists ({state}, opened by {existing.opened_by} at {_utc(existing.opened_at_ms)})")
    room = Warroom(incident_id, severity, title, incident_start_ms, now_ms, by)
    room._entry(rec, now_ms, by, "action", f"warroom opened by {by}: {severity} {title}", {"event": "opened"})
    save_warroom(root, room)
    return room
