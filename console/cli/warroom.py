"""``ggen incidents warroom``: open a warroom for an incident, staff its roles, keep the scribe log,
and close it behind the closure checklist. Log lines and role changes are signed receipts on the
incident's timeline (written straight to the ledger, so this works with or without an engine).
"""
from __future__ import annotations

import getpass
import sys
from typing import Any, NoReturn

import click

from console.cli.common import data_dir, echo_json, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, fail, safe_text, wall_now_ms


def _me(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:
        return "operator"


def _refused(exc: Exception) -> NoReturn:
    fail(str(exc), EXIT_REFUSED)


def _policy() -> Any:
    from engine.policy.loader import PolicyError
    from engine.warroom import load_warroom_policy

    try:
        return load_warroom_policy()
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)


def _recorder() -> Any:
    from engine.warroom import LedgerRecorder

    dd = data_dir()
    return LedgerRecorder(dd.ledger_path, dd.keys_dir)


def _incident(text: str) -> dict[str, Any]:
    """The incident as the ledger knows it (id prefix accepted)."""
    from engine.receipts import summarize_incidents
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerError, LedgerNotFound

    dd = data_dir()
    try:
        ledger = Ledger(dd.ledger_path, readonly=True)
    except LedgerNotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except LedgerCorrupt as exc:
        fail(str(exc), 28)
    try:
        try:
            iid = ledger.find_incident(text)
        except (LedgerError, KeyError, ValueError) as exc:
            fail(f"--incident-id: {exc}", EXIT_NOT_FOUND)
        payloads = []
        for r in ledger.incident_receipts(iid):
            try:
                payloads.append(r.payload())
            except Exception:
                continue
        s = summarize_incidents(payloads)
        if not s:
            fail(f"--incident-id: no readable receipts for {iid}", EXIT_NOT_FOUND)
        return {"id": iid, "severity": s[0].severity or "Sev4", "title": s[0].summary or (s[0].incident_type or "incident"), "start_ms": s[0].detected_at_ms, "status": s[0].status}
    finally:
        ledger.close()


def _room(incident_id: str | None) -> Any:
    from engine.warroom import WarroomError, list_warrooms, load_warroom

    root = data_dir().root
    if incident_id is None:
        rooms = [r for r in list_warrooms(root) if r.open]
        if len(rooms) == 1:
            return rooms[0]
        if not rooms:
            fail("no open warroom (open one with `ggen incidents warroom create --incident-id ID`)", EXIT_NOT_FOUND)
        fail("several warrooms are open; name one with --incident-id (" + ", ".join(r.incident_id for r in rooms) + ")", EXIT_FAILED)
    try:
        inc = _incident(incident_id)
        room = load_warroom(root, inc["id"])
    except WarroomError as exc:
        fail(str(exc), EXIT_FAILED)
    if room is None:
        fail(f"no warroom for {inc['id']} (open it with `ggen incidents warroom create --incident-id {incident_id}`)", EXIT_NOT_FOUND)
    return room


def _status_cadence(room: Any) -> tuple[int, int | None]:
    """The severity's status-update cadence and the last status-page publication, if any."""
    from engine.policy.bundle import load_policy
    from engine.policy.loader import PolicyError
    from engine.statuspage import StatusStore

    try:
        every = load_policy().severity.levels[room.severity].status_update_every_s
    except (PolicyError, KeyError) as exc:
        fail(f"cannot read the status-update cadence: {exc}", EXIT_FAILED)
    return every, StatusStore(data_dir().root).last_published_ms(room.incident_id)


def _save(room: Any) -> None:
    from engine.warroom import save_warroom

    save_warroom(data_dir().root, room)


INCIDENT_OPT = click.option("--incident-id", "incident_id", default=None, metavar="ID", help="The incident (a prefix is enough); default: the only open warroom.")
BY_OPT = click.option("--by", default=None, metavar="NAME", help="Who does this (default: your user name).")


@click.group("warroom")
def warroom() -> None:
    """Warroom for an incident: roles, scribe log (signed receipts), reminders, closure checklist."""


@warroom.command("create")
@click.option("--incident-id", "incident_id", required=True, metavar="ID", help="The incident (a prefix is enough).")
@click.option("--ic", default=None, metavar="NAME", help="Incident Commander.")
@click.option("--scribe", default=None, metavar="NAME", help="Scribe.")
@BY_OPT
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(incident_id: str, ic: str | None, scribe: str | None, by: str | None, as_json: bool) -> None:
    """Open the warroom of an incident."""
    from engine.warroom import WarroomError, open_warroom

    policy = _policy()
    inc = _incident(incident_id)
    me, now, rec = _me(by), wall_now_ms(), _recorder()
    try:
        room = open_warroom(data_dir().ensure().root, incident_id=inc["id"], severity=inc["severity"], title=inc["title"], incident_start_ms=inc["start_ms"], by=me, now_ms=now, rec=rec)
        if ic:
            room.assign(policy, "incident-commander", ic, by=me, now_ms=now, rec=rec)
        if scribe:
            room.assign(policy, "scribe", scribe, by=me, now_ms=now, rec=rec)
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    _print(room, policy, as_json)


@warroom.command("assign")
@INCIDENT_OPT
@click.option("--role", required=True, metavar="ROLE", help="incident-commander, scribe, communications, operations-lead, subject-expert, observer.")
@click.option("--person", required=True, metavar="NAME", help="Who takes the role.")
@BY_OPT
def assign(incident_id: str | None, role: str, person: str, by: str | None) -> None:
    """Give a role to someone (the room holds at most 10 people)."""
    from engine.warroom import WarroomError

    policy, room = _policy(), _room(incident_id)
    try:
        e = room.assign(policy, role, person, by=_me(by), now_ms=wall_now_ms(), rec=_recorder())
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    click.echo(safe_text(e.text) + (f" (receipt {e.receipt_id})" if e.receipt_id else ""))


@warroom.command("handover")
@INCIDENT_OPT
@click.option("--role", required=True, metavar="ROLE", help="The role handed over.")
@click.option("--to", "to", required=True, metavar="NAME", help="Who takes it.")
@BY_OPT
def handover(incident_id: str | None, role: str, to: str, by: str | None) -> None:
    """Hand a role over to someone else."""
    from engine.warroom import WarroomError

    policy, room = _policy(), _room(incident_id)
    try:
        e = room.handover(policy, role, to, by=_me(by), now_ms=wall_now_ms(), rec=_recorder())
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    click.echo(safe_text(e.text) + (f" (receipt {e.receipt_id})" if e.receipt_id else ""))


@warroom.command("log")
@click.argument("text")
@INCIDENT_OPT
@click.option("--kind", type=click.Choice(("note", "action", "diagnostic", "decision", "result", "poll", "status")), default="note", show_default=True, help="What the line records.")
@BY_OPT
def log(text: str, incident_id: str | None, kind: str, by: str | None) -> None:
    """Add a scribe-log line; it becomes a signed receipt on the incident's timeline."""
    from engine.warroom import WarroomError

    room = _room(incident_id)
    try:
        e = room.write(text, author=_me(by), kind=kind, now_ms=wall_now_ms(), rec=_recorder())
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    click.echo(f"logged {kind} at {_hhmm(e.at_ms)}" + (f" (receipt {e.receipt_id})" if e.receipt_id else ""))


@warroom.command("check")
@click.argument("item")
@INCIDENT_OPT
@click.option("--detail", default="", metavar="TEXT", help="What backs it (the root cause, the PIR date, ...).")
@BY_OPT
def check(item: str, incident_id: str | None, detail: str, by: str | None) -> None:
    """Tick a closure-checklist item: root-cause, metrics-green, action-items, customers-informed, pir-scheduled."""
    from engine.warroom import WarroomError

    policy, room = _policy(), _room(incident_id)
    try:
        e = room.check(policy, item, by=_me(by), now_ms=wall_now_ms(), detail=detail, rec=_recorder())
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    click.echo(safe_text(e.text))
    left = room.missing(policy)
    click.echo("checklist complete: the room can close" if not left else "still open: " + ", ".join(c.id for c in left))


@warroom.command("show")
@INCIDENT_OPT
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(incident_id: str | None, as_json: bool) -> None:
    """The scribe log: header, roles, checklist, reminders, timeline."""
    _print(_room(incident_id), _policy(), as_json)


@warroom.command("close")
@INCIDENT_OPT
@BY_OPT
def close(incident_id: str | None, by: str | None) -> None:
    """Close the warroom; refused (exit 5) until every checklist item is ticked."""
    from engine.warroom import WarroomError

    policy, room = _policy(), _room(incident_id)
    try:
        room.close(policy, by=_me(by), now_ms=wall_now_ms(), rec=_recorder())
    except WarroomError as exc:
        _refused(exc)
    _save(room)
    click.echo(f"warroom of {room.incident_id} closed")


@warroom.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_rooms(as_json: bool) -> None:
    """Every warroom in the data directory."""
    from engine.warroom import list_warrooms

    rooms = list_warrooms(data_dir().root)
    if as_json:
        echo_json([{"incident_id": r.incident_id, "severity": r.severity, "title": r.title, "open": r.open, "incident_commander": r.holder("incident-commander"), "people": len(r.people)} for r in rooms])
        return
    if not rooms:
        click.echo("no warrooms")
    for r in rooms:
        click.echo(safe_text(f"{'open  ' if r.open else 'closed'} {r.severity} {r.incident_id} IC {r.holder('incident-commander') or '-'}  {r.title}"))


def _hhmm(ms: int) -> str:
    from engine.clock import iso_utc

    return iso_utc(ms)[11:16]


def _print(room: Any, policy: Any, as_json: bool) -> None:
    now = wall_now_ms()
    every, last = _status_cadence(room)
    if as_json:
        d = room.to_dict()
        d["reminders"] = room.reminders(policy, now, status_every_s=every, last_status_ms=last)
        d["missing_checklist"] = [c.id for c in room.missing(policy)]
        echo_json(d)
        return
    sys.stdout.write(safe_text(room.render(policy, now, status_every_s=every, last_status_ms=last)) + "\n")
