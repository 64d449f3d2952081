"""The warroom of an incident of a running engine: read it, open it, change it.

The console's warroom screen (in the engine's process, or attached over the control socket)
goes through these functions, so every change is written by the engine: a scribe-log line, a
role assigned or handed over, a checklist item or the closing becomes an ``incident.note`` event
of the engine (:class:`~engine.warroom.EngineRecorder`), hence a signed receipt and a line of the
incident's timeline. The room file is read again before each change (``ggen incidents warroom``
may have written it from another shell) and saved right after, one change at a time.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from engine.warroom.room import EngineRecorder, Warroom, WarroomError, load_warroom, load_warroom_policy, open_warroom, save_warroom

CHANGES = ("write", "assign", "handover", "check", "close")
_lock = threading.Lock()  # one read-change-save at a time in this process


def _incident(engine: Any, incident_id: str) -> Any:
    with engine.lock:
        try:
            return engine.get_incident(incident_id)
        except (KeyError, ValueError) as exc:
            raise WarroomError(str(exc.args[0]) if exc.args else str(exc)) from None


def _status_cadence(engine: Any, root: Path, room: Warroom) -> tuple[int, int | None]:
    """The severity's status-update cadence (s) and the last status-page publication for it."""
    try:
        every = int(engine.policy.severity.levels[room.severity].status_update_every_s)
    except (KeyError, AttributeError):
        every = 0
    try:
        from engine.statuspage import StatusStore

        last = StatusStore(root).last_published_ms(room.incident_id)
    except Exception:  # a damaged status file is `ggen status-page check`'s to report
        last = None
    return every, last


def room_view(root: Path, engine: Any, room: Warroom, policy: Any = None) -> dict[str, Any]:
    """Everything the warroom screen shows, JSON-able: the room, its roles with their holders,
    the checklist with who ticked what, and what the room owes right now (reminders)."""
    pol = policy or load_warroom_policy()
    now = engine.now_ms
    every, last = _status_cadence(engine, root, room)
    start = room.incident_start_ms or room.opened_at_ms
    return {
        "incident_id": room.incident_id,
        "severity": room.severity,
        "title": room.title,
        "start_ms": start,
        "open": room.open,
        "opened_at_ms": room.opened_at_ms,
        "opened_by": room.opened_by,
        "closed_at_ms": room.closed_at_ms,
        "closed_by": room.closed_by,
        "incident_commander": room.holder("incident-commander"),
        "scribe": room.holder("scribe"),
        "roles": [
            {"id": r.id, "title": r.title, "required": r.required, "max": r.max, "holders": list(room.roles.get(r.id) or [])}
            for r in pol.roles
        ],
        "people": len(room.people),
        "max_people": pol.room.max_people,
        "checklist": [{"id": c.id, "text": c.text, "done": room.checklist.get(c.id)} for c in pol.checklist],
        "reminders": room.reminders(pol, now, status_every_s=every, last_status_ms=last),
        "log": [{"at_ms": e.at_ms, "author": e.author, "kind": e.kind, "text": e.text, "receipt_id": e.receipt_id} for e in room.log],
        "status_every_s": every,
        "last_status_ms": last,
        "now_ms": now,
    }


def room_state(root: Path, engine: Any, incident_id: str) -> dict[str, Any] | None:
    """The warroom of an incident (an id prefix is enough), or None when it has none."""
    inc = _incident(engine, incident_id)
    room = load_warroom(root, inc.id)
    return None if room is None else room_view(root, engine, room)


def open_room(root: Path, engine: Any, incident_id: str, *, by: str, ic: str | None = None, scribe: str | None = None) -> dict[str, Any]:
    """Open the incident's warroom (and staff its Incident Commander and Scribe when named)."""
    pol = load_warroom_policy()
    inc = _incident(engine, incident_id)
    rec = EngineRecorder(engine)
    with _lock:
        with engine.lock:
            now = engine.now_ms
            room = open_warroom(Path(root), incident_id=inc.id, severity=inc.severity, title=inc.title, incident_start_ms=inc.first_anomaly_ms or inc.detected_at_ms, by=by, now_ms=now, rec=rec)
            try:
                if ic and ic.strip():
                    room.assign(pol, "incident-commander", ic, by=by, now_ms=now, rec=rec)
                if scribe and scribe.strip():
                    room.assign(pol, "scribe", scribe, by=by, now_ms=now, rec=rec)
            finally:
                save_warroom(Path(root), room)
    return room_view(Path(root), engine, room, pol)


def change_room(root: Path, engine: Any, incident_id: str, change: str, *, by: str, text: str = "", kind: str = "note", role: str = "", person: str = "", item: str = "", detail: str = "") -> dict[str, Any]:
    """One change to an open room: ``write`` a scribe-log line (``kind``), ``assign`` a
    ``person`` to a ``role``, ``handover`` a ``role`` to ``person``, ``check`` a checklist
    ``item`` (with ``detail``), or ``close`` it. Raises :class:`WarroomError` saying why not."""
    if change not in CHANGES:
        raise WarroomError(f"unknown warroom change {change!r} (changes: {', '.join(CHANGES)})")
    pol = load_warroom_policy()
    inc = _incident(engine, incident_id)
    rec = EngineRecorder(engine)
    with _lock:
        room = load_warroom(Path(root), inc.id)
        if room is None:
            raise WarroomError(f"no warroom for {inc.id} yet: open it first")
        with engine.lock:
            now = engine.now_ms
            if change == "write":
                room.write(text, author=by, kind=kind, now_ms=now, rec=rec)
            elif change == "assign":
                room.assign(pol, role, person, by=by, now_ms=now, rec=rec)
            elif change == "handover":
                room.handover(pol, role, person, by=by, now_ms=now, rec=rec)
            elif change == "check":
                room.check(pol, item, by=by, now_ms=now, detail=detail, rec=rec)
            else:
                room.close(pol, by=by, now_ms=now, rec=rec)
        save_warroom(Path(root), room)
    return room_view(Path(root), engine, room, pol)
