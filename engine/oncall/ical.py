"""The on-call schedule as an iCalendar file (RFC 5545), so people see their shifts in a calendar.

Written by hand on purpose: an export needs a dozen properties, and the rules that matter (CRLF line
ends, folding at 75 octets without splitting a UTF-8 character, TEXT escaping, UTC times with a
``Z``, stable UIDs so a re-import updates events instead of duplicating them) fit in this module.
The tests parse the output back with the ``icalendar`` package, an independent implementation.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from engine.oncall.roster import OnCallRoster, Segment

PRODID = "-//ggen//on-call roster//EN"


def ical_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11); control characters other than tab are dropped."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == ";":
            out.append("\\;")
        elif ch == ",":
            out.append("\\,")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            continue
        elif ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127):
            out.append(ch)
    return "".join(out)


def ical_time(t_ms: int) -> str:
    """A UTC DATE-TIME (form 2, with ``Z``)."""
    return datetime.fromtimestamp(t_ms // 1000, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts: list[str] = []
    limit = 75
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # do not cut inside a character
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74  # continuation lines start with one space
    return "\r\n ".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def export_ical(roster: OnCallRoster, start_ms: int, end_ms: int, *, now_ms: int, person: str | None = None) -> str:
    """The schedule between two moments as an iCalendar document (CRLF line ends).

    One event per stretch with a fixed pair; with ``person`` (an id), only that person's duty,
    titled with their role.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ical_text(roster.name + (' - ' + roster.people[person].name if person else ''))}",
        "X-WR-TIMEZONE:UTC",
    ]
    stamp = ical_time(now_ms)
    cal = _slug(roster.name)
    for seg in roster.segments(start_ms, end_ms):
        if person is not None and person not in (seg.primary, seg.secondary):
            continue
        lines.extend(_event(roster, seg, cal, stamp, person))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _name(roster: OnCallRoster, pid: str) -> str:
    p = roster.people.get(pid)
    return p.name if p else pid


def _event(roster: OnCallRoster, seg: Segment, cal: str, stamp: str, person: str | None) -> list[str]:
    primary, secondary = _name(roster, seg.primary), _name(roster, seg.secondary)
    if person is not None:
        role = "primary" if seg.primary == person else "secondary"
        summary = f"On call ({role}): {seg.shift.name}"
    else:
        summary = f"On call {seg.shift.name}: {primary} / {secondary}"
    desc = [f"Shift: {seg.shift.label}", f"Primary: {primary}", f"Secondary: {secondary}", f"Rotation week {seg.week}"]
    desc += seg.notes
    uid = f"{_slug(seg.shift.name)}-{ical_time(seg.start_ms)}" + (f"-{person}" if person else "") + f"@{cal}.ggen"
    return [
        "BEGIN:VEVENT",
        f"UID:{ical_text(uid)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{ical_time(seg.start_ms)}",
        f"DTEND:{ical_time(seg.end_ms)}",
        f"SUMMARY:{ical_text(summary)}",
        f"DESCRIPTION:{ical_text(chr(10).join(desc))}",
        f"CATEGORIES:{ical_text('on-call')}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]
