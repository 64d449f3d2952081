"""``ggen oncall``: who is on call now, the rotation calendar, shift handoffs, iCalendar export.

The roster is ``DATA_DIR/roster.toml`` (start from ``ggen oncall init``). Times are UTC;
``--tz ZONE`` also shows local times (IANA zone names, daylight saving applied per day).
"""
from __future__ import annotations

import sys
from typing import Any

import click

from console.cli.common import at_option, data_dir, echo_json, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, fail, resolve_time, safe_text, TIME_REF, wall_now_ms

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _zone(tz: str | None) -> Any:
    if tz is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--tz: unknown time zone {tz!r} (use an IANA name such as Europe/Berlin or America/New_York)", EXIT_USAGE)


def _local(t_ms: int, zone: Any, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t_ms / 1000, tz=zone).strftime(fmt)


def _utc(t_ms: int) -> str:
    from engine.clock import iso_utc

    s = iso_utc(t_ms)
    return s[:10] + " " + s[11:16] + " UTC"


def _roster(path: str | None, strict: bool = False) -> Any:
    from pathlib import Path

    from engine.oncall.roster import load_roster
    from engine.policy.loader import PolicyError

    p = Path(path) if path else data_dir().roster_path
    if not p.exists():
        if path:
            fail(f"{p}: file not found", EXIT_NOT_FOUND)
        fail(f"no roster at {p}: run `ggen oncall init` to start from the example, then edit it", EXIT_NOT_FOUND)
    try:
        return load_roster(p, strict=strict)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _t(value: object) -> Any:
    from rich.text import Text

    return Text(safe_text("" if value is None else value))


def _breach_lines(roster: Any) -> list[str]:
    from engine.oncall.roster import check_rules

    return [f"{b.severity}: {roster.path}: {b}" for b in check_rules(roster)]


ROSTER_OPT = click.option("--roster", "roster_file", type=click.Path(dir_okay=False), default=None, help="Roster file (default: DATA_DIR/roster.toml).")


@click.group()
def oncall() -> None:
    """On-call roster: who is on call, the schedule, handoffs, calendar export."""


@oncall.command("init")
@click.option("--force", is_flag=True, help="Replace an existing roster.")
def init(force: bool) -> None:
    """Copy the commented example roster into the data directory."""
    import shutil

    from engine.oncall.roster import example_roster_path

    dd = data_dir().ensure()
    if dd.roster_path.exists() and not force:
        fail(f"{dd.roster_path} already exists (use --force to replace it)", EXIT_FAILED)
    shutil.copyfile(example_roster_path(), dd.roster_path)
    click.echo(f"wrote {dd.roster_path}; edit it, then run `ggen oncall check`")


@oncall.command("check")
@ROSTER_OPT
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check(roster_file: str | None, as_json: bool) -> None:
    """Validate the roster: structure, rest rules, fairness, reachability. Exit 1 on an error."""
    from engine.oncall.roster import check_rules

    roster = _roster(roster_file)
    breaches = check_rules(roster)
    errors = [b for b in breaches if b.severity == "error"]
    if as_json:
        echo_json({"path": roster.path, "ok": not errors, "breaches": [{"severity": b.severity, "field": b.field, "message": b.message} for b in breaches]})
    else:
        for b in breaches:
            click.echo(safe_text(f"{b.severity}: {roster.path}: {b}"), err=b.severity == "error")
        if not errors:
            click.echo(f"{roster.path}: ok ({len(roster.people)} people, {len(roster.shifts)} shifts)")
    if errors:
        sys.exit(EXIT_FAILED)


def _now_data(roster: Any, at_ms: int, zone: Any) -> dict[str, Any]:
    from engine.oncall.roster import CONTACT_ROLES

    seg = roster.segment_at(at_ms)
    nxt = roster.segment_at(seg.shift_end_ms)

    def person(pid: str | None, role: str) -> dict[str, Any]:
        if pid is None:
            return {"role": role, "id": None, "name": roster.who(role, at_ms)}
        p = roster.people[pid]
        d = p.to_dict()
        d["role"] = role
        u = roster.unavailable_at(pid, at_ms)
        d["on_break_until"] = None if u is None else _utc(u.end_ms)
        return d

    out: dict[str, Any] = {
        "at": _utc(at_ms),
        "shift": {"name": seg.shift.name, "start": _utc(seg.shift_start_ms), "end": _utc(seg.shift_end_ms), "week": seg.week},
        "primary": person(seg.primary, "primary"),
        "secondary": person(seg.secondary, "secondary"),
        "answers_pages": {"primary": roster.who("primary", at_ms), "secondary": roster.who("secondary", at_ms)},
        "notes": seg.notes,
        "contacts": [person(roster.who_id(r, at_ms), r) for r in CONTACT_ROLES],
        "next": {"shift": nxt.shift.name, "at": _utc(seg.shift_end_ms), "primary": roster.people[nxt.primary].name, "secondary": roster.people[nxt.secondary].name},
    }
    if zone is not None:
        out["local"] = {"zone": str(zone), "at": _local(at_ms, zone), "shift_start": _local(seg.shift_start_ms, zone), "shift_end": _local(seg.shift_end_ms, zone)}
    return out


@oncall.command("now")
@ROSTER_OPT
@click.option("--at", type=TIME_REF, default=None, help="Another moment (ISO time, or 2h-ago); default: now.")
@click.option("--tz", default=None, metavar="ZONE", help="Also show local times in this IANA zone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def now(roster_file: str | None, at: str | None, tz: str | None, as_json: bool) -> None:
    """Who is on call now: the shift, primary, secondary, escalation contacts, the next handoff."""
    zone = _zone(tz)
    roster = _roster(roster_file)
    at_ms = at_option(at)
    d = _now_data(roster, at_ms, zone)
    if as_json:
        echo_json(d)
        return
    con = _console()
    s = d["shift"]
    head = f"On call at {d['at']}: {s['name']} ({s['start'][11:]} to {s['end'][11:]}), rotation week {s['week']}"
    con.print(_t(head))
    if zone is not None:
        con.print(_t(f"  local ({d['local']['zone']}): now {d['local']['at']}; shift {d['local']['shift_start']} to {d['local']['shift_end']}"))
    for role in ("primary", "secondary"):
        p = d[role]
        extra = f" {p['handle']}" if p.get("handle") else ""
        brk = f"  on a break until {p['on_break_until']}; pages go to {d['answers_pages'][role]}" if p.get("on_break_until") else ""
        lt = ""
        if p.get("tz"):
            from zoneinfo import ZoneInfo

            try:
                lt = f"  (their time {_local(at_ms, ZoneInfo(p['tz']), '%H:%M %Z')})"
            except Exception:
                lt = ""
        con.print(_t(f"  {role:<10} {p['name']}{extra}{lt}{brk}"))
    for n in d["notes"]:
        con.print(_t(f"  note: {n}"))
    for c in d["contacts"]:
        con.print(_t(f"  {c['role']:<15} {c['name']}" + (f" {c['handle']}" if c.get("handle") else "")))
    nx = d["next"]
    con.print(_t(f"Next handoff {nx['at']}: {nx['shift']}, {nx['primary']} / {nx['secondary']}"))
    for line in _breach_lines(roster):
        con.print(_t(line), style="yellow")


@oncall.command("schedule")
@ROSTER_OPT
@click.option("--weeks", type=click.IntRange(1, 52), default=2, show_default=True, help="How many rotation weeks to show.")
@click.option("--from", "from_", type=TIME_REF, default=None, help="Start at the rotation week holding this moment; default: this week.")
@click.option("--tz", default=None, metavar="ZONE", help="Also show each shift in this IANA zone (daylight saving applied per day).")
@click.option("--person", default=None, metavar="ID", help="Only mark this person's shifts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one entry per stretch with a fixed pair).")
def schedule(roster_file: str | None, weeks: int, from_: str | None, tz: str | None, person: str | None, as_json: bool) -> None:
    """The rotation as a calendar: one table per week, days by shifts, primary / secondary."""
    from engine.oncall.roster import DAY_MS

    zone = _zone(tz)
    roster = _roster(roster_file)
    if person is not None and person not in roster.people:
        fail(f"--person: unknown person {person!r} (see the roster's [people])", EXIT_USAGE)
    at_ms = at_option(from_)
    w0 = roster.week_of(at_ms)
    start = roster.week_start_ms(w0)
    end = roster.week_start_ms(w0 + weeks)
    segs = roster.segments(start, end)
    if as_json:
        rows = []
        for s in segs:
            if person is not None and person not in (s.primary, s.secondary):
                continue
            row = {"shift": s.shift.name, "week": s.week, "start": _utc(s.start_ms), "end": _utc(s.end_ms), "primary": s.primary, "secondary": s.secondary, "notes": s.notes}
            if zone is not None:
                row["local_start"], row["local_end"] = _local(s.start_ms, zone), _local(s.end_ms, zone)
            rows.append(row)
        echo_json({"roster": roster.name, "from": _utc(start), "to": _utc(end), "zone": str(zone) if zone else "UTC", "segments": rows})
        return
    from rich.table import Table
    from rich.text import Text

    con = _console()
    ordered = sorted(roster.shifts, key=lambda s: s.start_min)
    for w in range(w0, w0 + weeks):
        ws = roster.week_start_ms(w)
        table = Table(title=f"Week {w} from {_utc(ws)[:10]} (Monday)", title_justify="left", show_lines=False)
        table.add_column("day (UTC)")
        for sh in ordered:
            table.add_column(sh.label)
        for d in range(7):
            day = ws + d * DAY_MS
            cells: list[Any] = [Text(f"{WEEKDAYS[d]} {_utc(day)[5:10]}")]
            for sh in ordered:
                s0, s1 = day + sh.start_min * 60_000, day + sh.end_min * 60_000
                parts = [s for s in segs if s.shift is sh and s.start_ms < s1 and s.end_ms > s0]
                cell = Text()
                for k, s in enumerate(parts):
                    if k:
                        cell.append("\n")
                    if len(parts) > 1:
                        cell.append(f"{_utc(s.start_ms)[11:16]} ")
                    mine = person is not None and person in (s.primary, s.secondary)
                    style = "bold" if mine else ("yellow" if s.notes else "")
                    cell.append(safe_text(f"{roster.people[s.primary].name} / {roster.people[s.secondary].name}"), style=style)
                    if s.notes:
                        cell.append(" *", style="yellow")
                if zone is not None:
                    cell.append(f"\n{_local(s0, zone, '%a %H:%M')}-{_local(s1, zone, '%H:%M %Z')}", style="dim")
                cells.append(cell)
            table.add_row(*cells)
        con.print(table)
    notes = sorted({n for s in segs for n in s.notes})
    if notes:
        con.print(Text("* " + "; ".join(safe_text(n) for n in notes), style="yellow"))
    for line in _breach_lines(roster):
        con.print(_t(line), style="yellow")


@oncall.group("handoff", invoke_without_command=True)
@ROSTER_OPT
@click.option("--at", type=TIME_REF, default=None, help="The moment the record is written (the next shift boundary after it is handed over); default: now.")
@click.option("--change", "changes", multiple=True, metavar="'ITEM | TIME | STATUS'", help="A recent change (deploys, config); repeatable. The ledger's applied mitigations of the last 24 h are added.")
@click.option("--watch", "watch", multiple=True, metavar="TEXT", help="Something the next shift should watch for; repeatable.")
@click.option("--question", "questions", multiple=True, metavar="'QUESTION? ANSWER'", help="A question and its answer (if any); repeatable.")
@click.option("--by", "by", default=None, metavar="NAME", help="Who writes the record (default: the outgoing primary).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def handoff(ctx: click.Context, roster_file: str | None, at: str | None, changes: tuple[str, ...], watch: tuple[str, ...], questions: tuple[str, ...], by: str | None, as_json: bool) -> None:
    """Write the handoff record for the next shift (08 form), or `handoff show` to read it."""
    ctx.ensure_object(dict)
    ctx.obj["roster_file"] = roster_file
    if ctx.invoked_subcommand is not None:
        return
    from engine.oncall.handoff import build_handoff, parse_change, parse_question, render_handoff, save_handoff

    roster = _roster(roster_file)
    at_ms = at_option(at)
    try:
        ch = [parse_change(c) for c in changes]
        qs = [parse_question(q) for q in questions]
    except ValueError as exc:
        fail(f"--change: {exc}", EXIT_USAGE)
    dd = data_dir()
    ledger = _ledger_or_none(dd)
    try:
        h = build_handoff(roster, at_ms, created_by=by or "", ledger=ledger, changes=ch, watch_for=list(watch), questions=qs)
    finally:
        if ledger is not None:
            ledger.close()
    path = save_handoff(dd.ensure().root, h)
    if as_json:
        echo_json(dict(h.to_dict(), path=str(path)))
        return
    click.echo(safe_text(render_handoff(h)))
    click.echo(f"\nsaved {path}; the next shift reads it with `ggen oncall handoff show`")


def _ledger_or_none(dd: Any) -> Any:
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerNotFound

    try:
        return Ledger(dd.ledger_path, readonly=True)
    except LedgerNotFound:
        return None
    except LedgerCorrupt as exc:
        fail(str(exc), 28)


@handoff.command("show")
@click.option("--at", type=TIME_REF, default=None, help="Show the record for the shift in force then; default: now.")
@click.option("--ack", "ack", default=None, metavar="NAME", help="Mark the record as read by NAME (the incoming on-call).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def handoff_show(at: str | None, ack: str | None, as_json: bool) -> None:
    """Show the handoff record for the current (or next) shift."""
    from engine.oncall.handoff import acknowledge_handoff, handoff_for, render_handoff

    dd = data_dir()
    at_ms = at_option(at)
    h = handoff_for(dd.root, at_ms)
    if h is None:
        fail(f"no handoff record in {dd.root / 'handoffs'} (the outgoing shift writes one with `ggen oncall handoff`)", EXIT_NOT_FOUND)
    if ack:
        acknowledge_handoff(dd.root, h, ack, wall_now_ms())
    if as_json:
        echo_json(h.to_dict())
        return
    click.echo(safe_text(render_handoff(h)))


@oncall.command("export")
@ROSTER_OPT
@click.option("--ical", "ical_file", type=click.Path(dir_okay=False), required=True, help="Write an iCalendar (.ics) file here ('-' for stdout).")
@click.option("--weeks", type=click.IntRange(1, 104), default=4, show_default=True, help="How many rotation weeks to export.")
@click.option("--from", "from_", type=TIME_REF, default=None, help="Start at the rotation week holding this moment; default: this week.")
@click.option("--person", default=None, metavar="ID", help="Only this person's shifts (for their own calendar).")
def export(roster_file: str | None, ical_file: str, weeks: int, from_: str | None, person: str | None) -> None:
    """Export the schedule as iCalendar (RFC 5545, UTC times) for calendar apps."""
    import os
    from pathlib import Path

    from engine.oncall.ical import export_ical

    roster = _roster(roster_file)
    if person is not None and person not in roster.people:
        fail(f"--person: unknown person {person!r} (see the roster's [people])", EXIT_USAGE)
    w0 = roster.week_of(at_option(from_))
    text = export_ical(roster, roster.week_start_ms(w0), roster.week_start_ms(w0 + weeks), now_ms=wall_now_ms(), person=person)
    data = text.encode("utf-8")
    if ical_file == "-":
        sys.stdout.buffer.write(data)
        return
    p = Path(ical_file)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError as exc:
        fail(f"{p}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
    click.echo(f"wrote {p} ({text.count('BEGIN:VEVENT')} events, {weeks} weeks)")
