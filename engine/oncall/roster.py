"""The on-call roster: who holds which role at any moment, from a validated TOML file.

The day is cut into UTC shifts (by default 00-08 US/Americas, 08-16 EU/EMEA, 16-24 APAC), each
staffed by a primary and a secondary. Every shift cycles through its list of pairs, one pair per
rotation week (weeks start on the roster's ``rotation_start``, a Monday, 00:00 UTC). On top of the
rotation come swaps (two people exchange everything they hold for one rotation week), overrides
(one person holds a role for a time range) and declared unavailability (a break, during which the
cover answers pages). Tech Lead, VP Engineering and Engineering Manager come from ``[contacts]``;
a role with several names pages the first one who is reachable.

:class:`OnCallRoster` implements the engine's ``Roster`` protocol (``who(role, at_ms)``), so the
escalation ladder pages the people the roster names at that moment. :func:`check_rules` enforces
the rest rules of 08-on-call-management (2 consecutive days off after a stint, 1 week in 3, never
unreachable for more than 1 h) and reports each breach with the file and field that causes it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import Field, field_validator

from engine.clock import iso_utc
from engine.policy.loader import PolicyError, StrictModel, read_data_file, validate

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
HOUR_MS = 3_600_000
ROTATION_ROLES = ("primary", "secondary")
# Roles of the escalation policy that the roster's [contacts] table answers.
CONTACT_ROLES = ("tech-lead", "vp-engineering", "eng-manager")
# How a role is shown when the roster has nobody for it (the engine's default handles).
FALLBACK_HANDLES = {
    "primary": "@oncall-primary",
    "secondary": "@oncall-secondary",
    "tech-lead": "@tech-lead",
    "vp-engineering": "@vp-engineering",
    "eng-manager": "@manager-oncall",
}

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_PERSON_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


# ----------------------------------------------------------------------------- file schema
class RosterHeader(StrictModel):
    name: str = "on-call"
    rotation_start: date  # a Monday: week 0 of every shift's rotation begins then, 00:00 UTC

    @field_validator("rotation_start")
    @classmethod
    def _monday(cls, v: date) -> date:
        if v.weekday() != 0:
            raise ValueError(f"{v.isoformat()} is a {v.strftime('%A')}; the rotation changes on Mondays")
        return v


class RosterRules(StrictModel):
    stint_s: int = Field(default=7 * 86_400, gt=0)
    rest_after_stint_s: int = Field(default=2 * 86_400, ge=0)
    fairness_weeks_on: int = Field(default=1, ge=1)
    fairness_window_weeks: int = Field(default=3, ge=1)
    max_unreachable_s: int = Field(default=3_600, ge=0)
    tell_secondary_after_s: int = Field(default=1_800, ge=0)
    handoff_call_s: int = Field(default=900, ge=0)


class PairSpec(StrictModel):
    primary: str
    secondary: str


class ShiftSpec(StrictModel):
    name: str = Field(min_length=1, max_length=40)
    start_utc: str
    end_utc: str
    rotation: list[PairSpec] = Field(min_length=1)

    @field_validator("start_utc", "end_utc")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        m = _HHMM.match(v)
        if not m or (m.group(1) == "24" and m.group(2) != "00"):
            raise ValueError(f"{v!r} is not a UTC time of day HH:MM (00:00 to 24:00)")
        return v


class PersonSpec(StrictModel):
    name: str = Field(min_length=1, max_length=80)
    handle: str | None = None
    email: str | None = None
    phone: str | None = None
    tz: str | None = None  # IANA zone the person lives in (shown by `ggen oncall now --tz`)


class OverrideSpec(StrictModel):
    start: datetime
    end: datetime
    role: str
    person: str
    shift: str | None = None  # only inside this shift's hours
    reason: str = ""


class SwapSpec(StrictModel):
    week: date  # the Monday of the rotation week
    a: str
    b: str
    reason: str = ""

    @field_validator("week")
    @classmethod
    def _monday(cls, v: date) -> date:
        if v.weekday() != 0:
            raise ValueError(f"{v.isoformat()} is a {v.strftime('%A')}; a swap names the Monday its rotation week starts")
        return v


class UnavailableSpec(StrictModel):
    person: str
    start: datetime
    end: datetime
    covered_by: str | None = None
    reason: str = ""


class RosterFile(StrictModel):
    roster: RosterHeader
    rules: RosterRules = RosterRules()
    shifts: list[ShiftSpec] = Field(min_length=1)
    people: dict[str, PersonSpec]
    contacts: dict[str, list[str]] = Field(default_factory=dict)
    overrides: list[OverrideSpec] = Field(default_factory=list)
    swaps: list[SwapSpec] = Field(default_factory=list)
    unavailable: list[UnavailableSpec] = Field(default_factory=list)


# ----------------------------------------------------------------------------- resolved values
@dataclass(frozen=True)
class Person:
    """Someone on the roster."""

    id: str
    name: str
    handle: str | None = None
    email: str | None = None
    phone: str | None = None
    tz: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "handle": self.handle, "email": self.email, "phone": self.phone, "tz": self.tz}


@dataclass(frozen=True)
class Shift:
    """One daily UTC shift and its rotation of pairs."""

    index: int
    name: str
    start_min: int  # minutes after 00:00 UTC
    end_min: int
    pairs: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return f"{self.name} {_hhmm(self.start_min)}-{_hhmm(self.end_min)} UTC"

    def contains_minute(self, minute: int) -> bool:
        return self.start_min <= minute < self.end_min


@dataclass(frozen=True)
class Override:
    index: int
    start_ms: int
    end_ms: int
    role: str
    person: str
    shift: str | None
    reason: str


@dataclass(frozen=True)
class Unavailable:
    index: int
    person: str
    start_ms: int
    end_ms: int
    covered_by: str | None
    reason: str


@dataclass
class Segment:
    """A stretch of one shift with a fixed primary and secondary."""

    shift: Shift
    week: int
    start_ms: int
    end_ms: int
    primary: str
    secondary: str
    shift_start_ms: int
    shift_end_ms: int
    notes: list[str] = field(default_factory=list)

    def holder(self, role: str) -> str:
        return self.primary if role == "primary" else self.secondary


@dataclass
class RuleBreach:
    """One broken roster rule: where it comes from (a field of the file) and what is wrong."""

    field: str | None
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return (f"field {self.field}: " if self.field else "") + self.message


class RosterRuleError(PolicyError):
    """The roster is well-formed but breaks a rest or coverage rule."""

    def __init__(self, path: Path | str, breaches: list[RuleBreach]) -> None:
        self.breaches = breaches
        first = breaches[0]
        more = f" (and {len(breaches) - 1} more)" if len(breaches) > 1 else ""
        super().__init__(path, first.field, first.message + more)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def _ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)


# ----------------------------------------------------------------------------- the roster
class OnCallRoster:
    """A validated roster. ``who(role, at_ms)`` answers the engine's escalation ladder."""

    def __init__(self, spec: RosterFile, path: Path | str = "<roster>") -> None:
        self.spec = spec
        self.path = str(path)
        self.name = spec.roster.name
        self.rules = spec.rules
        self.rotation_start_ms = _day_ms(spec.roster.rotation_start)
        self.people: dict[str, Person] = {
            pid: Person(pid, p.name, p.handle, p.email, p.phone, p.tz) for pid, p in spec.people.items()
        }
        self.shifts: list[Shift] = [
            Shift(i, s.name, _minutes(s.start_utc), _minutes(s.end_utc), tuple((p.primary, p.secondary) for p in s.rotation))
            for i, s in enumerate(spec.shifts)
        ]
        self.contacts: dict[str, list[str]] = {k: list(v) for k, v in spec.contacts.items()}
        self.overrides = [
            Override(i, _ms(o.start), _ms(o.end), o.role, o.person, o.shift, o.reason) for i, o in enumerate(spec.overrides)
        ]
        self.swaps: dict[int, list[tuple[str, str]]] = {}
        for s in spec.swaps:
            self.swaps.setdefault(self.week_of(_day_ms(s.week)), []).append((s.a, s.b))
        self.unavailable = [
            Unavailable(i, u.person, _ms(u.start), _ms(u.end), u.covered_by, u.reason) for i, u in enumerate(spec.unavailable)
        ]
        self._check_references()

    # -- structure checks (file and field named) ------------------------------------------------
    def _fail(self, fld: str, msg: str) -> None:
        raise PolicyError(self.path, fld, msg)

    def _known(self, fld: str, pid: str) -> None:
        if pid not in self.people:
            known = ", ".join(sorted(self.people)) or "none"
            self._fail(fld, f"unknown person {pid!r} (people in [people]: {known})")

    def _check_references(self) -> None:
        for pid in self.people:
            if not _PERSON_ID.match(pid):
                self._fail(f"people.{pid}", "person ids are lower-case letters, digits, '.', '_' or '-'")
        names = [s.name for s in self.shifts]
        for i, s in enumerate(self.shifts):
            if names.count(s.name) > 1:
                self._fail(f"shifts.{i}.name", f"shift name {s.name!r} is used twice")
            if s.end_min <= s.start_min:
                self._fail(f"shifts.{i}.end_utc", f"a shift ends after it starts ({_hhmm(s.start_min)} to {_hhmm(s.end_min)}); split a shift that crosses midnight in two")
            for j, (p, q) in enumerate(s.pairs):
                self._known(f"shifts.{i}.rotation.{j}.primary", p)
                self._known(f"shifts.{i}.rotation.{j}.secondary", q)
                if p == q:
                    self._fail(f"shifts.{i}.rotation.{j}", f"{p!r} cannot be both primary and secondary")
        # the shifts must tile the day: no gap (nobody on call) and no overlap (two primaries)
        covered = sorted(self.shifts, key=lambda s: s.start_min)
        at = 0
        for s in covered:
            if s.start_min > at:
                self._fail(f"shifts.{s.index}.start_utc", f"nobody is on call from {_hhmm(at)} to {_hhmm(s.start_min)} UTC (shifts must cover the whole day)")
            if s.start_min < at:
                self._fail(f"shifts.{s.index}.start_utc", f"shift {s.name!r} overlaps the one before it (starts {_hhmm(s.start_min)}, previous ends {_hhmm(at)})")
            at = s.end_min
        if at != 24 * 60:
            last = covered[-1]
            self._fail(f"shifts.{last.index}.end_utc", f"nobody is on call from {_hhmm(at)} to 24:00 UTC (shifts must cover the whole day)")
        for role, ids in self.contacts.items():
            if not ids:
                self._fail(f"contacts.{role}", "name at least one person")
            for j, pid in enumerate(ids):
                self._known(f"contacts.{role}.{j}", pid)
        shift_names = set(names)
        for o in self.overrides:
            f = f"overrides.{o.index}"
            if o.end_ms <= o.start_ms:
                self._fail(f"{f}.end", "an override must end after it starts")
            if o.role not in ROTATION_ROLES:
                self._fail(f"{f}.role", f"role must be primary or secondary, not {o.role!r} (contact roles are set in [contacts])")
            self._known(f"{f}.person", o.person)
            if o.shift is not None and o.shift not in shift_names:
                self._fail(f"{f}.shift", f"unknown shift {o.shift!r} (shifts: {', '.join(names)})")
        for i, s in enumerate(self.spec.swaps):
            self._known(f"swaps.{i}.a", s.a)
            self._known(f"swaps.{i}.b", s.b)
            if s.a == s.b:
                self._fail(f"swaps.{i}.b", "a swap needs two different people")
        for u in self.unavailable:
            f = f"unavailable.{u.index}"
            self._known(f"{f}.person", u.person)
            if u.end_ms <= u.start_ms:
                self._fail(f"{f}.end", "unavailability must end after it starts")
            if u.covered_by is not None:
                self._known(f"{f}.covered_by", u.covered_by)

    # -- time arithmetic --------------------------------------------------------------------
    def week_of(self, at_ms: int) -> int:
        """The rotation week index of a moment (week 0 starts on ``rotation_start``)."""
        return (at_ms - self.rotation_start_ms) // WEEK_MS

    def week_start_ms(self, week: int) -> int:
        return self.rotation_start_ms + week * WEEK_MS

    def shift_at(self, at_ms: int) -> tuple[Shift, int, int]:
        """The shift in force at a moment, with that instance's start and end (ms)."""
        day = at_ms - at_ms % DAY_MS
        minute = (at_ms - day) // 60_000
        for s in self.shifts:
            if s.contains_minute(minute):
                return s, day + s.start_min * 60_000, day + s.end_min * 60_000
        raise AssertionError("shifts tile the day")  # checked at load

    def base_pair(self, shift: Shift, week: int) -> tuple[str, str]:
        """The pair the rotation (with that week's swaps) puts on a shift in a rotation week."""
        p, s = shift.pairs[week % len(shift.pairs)]
        for a, b in self.swaps.get(week, ()):
            p = b if p == a else a if p == b else p
            s = b if s == a else a if s == b else s
        return p, s

    def _override_for(self, role: str, shift: Shift, at_ms: int) -> Override | None:
        found = None
        for o in self.overrides:  # a later override wins
            if o.role == role and o.start_ms <= at_ms < o.end_ms and (o.shift is None or o.shift == shift.name):
                found = o
        return found

    def segments(self, start_ms: int, end_ms: int) -> list[Segment]:
        """Every stretch of constant (primary, secondary) between two moments, in order."""
        out: list[Segment] = []
        day = start_ms - start_ms % DAY_MS
        ordered = sorted(self.shifts, key=lambda s: s.start_min)
        while day < end_ms:
            for shift in ordered:
                s0, s1 = day + shift.start_min * 60_000, day + shift.end_min * 60_000
                lo, hi = max(s0, start_ms), min(s1, end_ms)
                if lo >= hi:
                    continue
                week = self.week_of(s0)
                cuts = {lo, hi}
                for o in self.overrides:
                    for t in (o.start_ms, o.end_ms):
                        if lo < t < hi:
                            cuts.add(t)
                points = sorted(cuts)
                for a, b in zip(points, points[1:]):
                    seg = self._segment(shift, week, a, b, s0, s1)
                    if out and out[-1].shift is shift and out[-1].end_ms == a and (out[-1].primary, out[-1].secondary, out[-1].notes) == (seg.primary, seg.secondary, seg.notes):
                        out[-1].end_ms = b
                    else:
                        out.append(seg)
            day += DAY_MS
        return out

    def _segment(self, shift: Shift, week: int, a: int, b: int, s0: int, s1: int) -> Segment:
        primary, secondary = self.base_pair(shift, week)
        notes: list[str] = []
        if week in self.swaps and shift.pairs[week % len(shift.pairs)] != (primary, secondary):
            notes.append("swap")
        o = self._override_for("primary", shift, a)
        if o is not None:
            primary = o.person
            notes.append(f"override: primary {o.person}" + (f" ({o.reason})" if o.reason else ""))
        o = self._override_for("secondary", shift, a)
        if o is not None:
            secondary = o.person
            notes.append(f"override: secondary {o.person}" + (f" ({o.reason})" if o.reason else ""))
        return Segment(shift, week, a, b, primary, secondary, s0, s1, notes)

    def segment_at(self, at_ms: int) -> Segment:
        """The on-call pair at one moment (rotation, swaps and overrides applied)."""
        shift, s0, s1 = self.shift_at(at_ms)
        return self._segment(shift, self.week_of(s0), at_ms, at_ms + 1, s0, s1)

    def unavailable_at(self, person: str, at_ms: int) -> Unavailable | None:
        for u in self.unavailable:
            if u.person == person and u.start_ms <= at_ms < u.end_ms:
                return u
        return None

    # -- the engine's Roster protocol ----------------------------------------------------------
    def who(self, role: str, at_ms: int) -> str:
        """The display name of whoever answers ``role`` at ``at_ms`` (the ladder pages them)."""
        pid = self.who_id(role, at_ms)
        if pid is None:
            return FALLBACK_HANDLES.get(role, f"@{role}")
        return self.people[pid].name

    def who_id(self, role: str, at_ms: int) -> str | None:
        """The person id answering ``role`` at ``at_ms``; None when the roster has nobody for it.

        A primary on a declared break is covered by the break's ``covered_by`` or the secondary;
        a secondary on a break by ``covered_by`` or the first reachable Tech Lead. A contact role
        with several people pages the first one who is not on a declared break.
        """
        if role in ROTATION_ROLES:
            seg = self.segment_at(at_ms)
            pid = seg.holder(role)
            u = self.unavailable_at(pid, at_ms)
            if u is None:
                return pid
            if u.covered_by is not None:
                return u.covered_by
            if role == "primary":
                return seg.secondary
            return self.who_id("tech-lead", at_ms) or pid
        ids = self.contacts.get(role)
        if not ids:
            return None
        for pid in ids:
            if self.unavailable_at(pid, at_ms) is None:
                return pid
        return ids[0]

    def person(self, name_or_id: str) -> Person | None:
        """Look someone up by id, display name or handle (what a notification names)."""
        if name_or_id in self.people:
            return self.people[name_or_id]
        for p in self.people.values():
            if name_or_id in (p.name, p.handle):
                return p
        return None

    # -- rules ------------------------------------------------------------------------------
    def check_window(self) -> tuple[int, int]:
        """The span the rules are checked over: one full rotation cycle past every dated entry."""
        cycle = 1
        for s in self.shifts:
            cycle = math.lcm(cycle, len(s.pairs))
        cycle = min(cycle, 520)
        window = self.rules.fairness_window_weeks
        first = 0
        last = cycle + window
        for o in self.overrides:
            first = min(first, self.week_of(o.start_ms) - 1)
            last = max(last, self.week_of(o.end_ms) + window + 1)
        for w in self.swaps:
            first = min(first, w - 1)
            last = max(last, w + window + 1)
        for u in self.unavailable:
            first = min(first, self.week_of(u.start_ms) - 1)
            last = max(last, self.week_of(u.end_ms) + 1)
        return self.week_start_ms(first), self.week_start_ms(last)

    def duty(self, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, int, str]]]:
        """Each person's on-duty intervals (start, end, "shift role") between two moments."""
        out: dict[str, list[tuple[int, int, str]]] = {}
        for seg in self.segments(start_ms, end_ms):
            for role in ROTATION_ROLES:
                pid = seg.holder(role)
                lst = out.setdefault(pid, [])
                label = f"{seg.shift.name} {role}"
                if lst and lst[-1][1] == seg.start_ms and lst[-1][2] == label:
                    lst[-1] = (lst[-1][0], seg.end_ms, label)
                else:
                    lst.append((seg.start_ms, seg.end_ms, label))
        return out


def check_rules(roster: OnCallRoster) -> list[RuleBreach]:
    """Every breach of the rest, fairness, coverage and reachability rules (errors and warnings)."""
    r = roster.rules
    out: list[RuleBreach] = []
    start, end = roster.check_window()
    duty = roster.duty(start, end)
    # 1. one slot per person per rotation week, and at most N weeks on duty in any window
    weeks_on: dict[str, dict[int, list[str]]] = {}
    first_w, last_w = roster.week_of(start), roster.week_of(end)
    for w in range(first_w, last_w):
        for shift in roster.shifts:
            p, s = roster.base_pair(shift, w)
            for pid, role in ((p, "primary"), (s, "secondary")):
                weeks_on.setdefault(pid, {}).setdefault(w, []).append(f"{shift.name} {role}")
    for pid, weeks in sorted(weeks_on.items()):
        for w, slots in sorted(weeks.items()):
            if len(slots) > 1:
                out.append(RuleBreach(_swap_field(roster, w) or "shifts", f"{pid} holds {len(slots)} slots in the week of {_week_label(roster, w)} ({', '.join(slots)}); one slot per stint"))
        ws = sorted(weeks)
        n = r.fairness_window_weeks
        for i, w in enumerate(ws):
            inside = [x for x in ws[i:] if x < w + n]
            if len(inside) > r.fairness_weeks_on:
                out.append(RuleBreach(
                    _swap_field(roster, *inside) or "shifts",
                    f"{pid} is on duty {len(inside)} weeks out of {n} from {_week_label(roster, w)} (fairness: at most {r.fairness_weeks_on} in {n})",
                ))
                break
    # 2. rest: no run of duty without a rest break longer than a stint
    rest_ms, stint_ms = r.rest_after_stint_s * 1000, r.stint_s * 1000
    for pid, spans in sorted(duty.items()):
        spans = sorted(spans)
        runs: list[tuple[int, int]] = []
        run_start, run_end = spans[0][0], spans[0][1]
        for a, b, _ in spans[1:]:
            if a - run_end < rest_ms:
                run_end = max(run_end, b)
            else:
                runs.append((run_start, run_end))
                run_start, run_end = a, b
        runs.append((run_start, run_end))
        for a, b in runs:
            if b - a > stint_ms:
                out.append(RuleBreach(
                    _entry_field(roster, pid, a, b) or "shifts",
                    f"{pid} is on duty from {iso_utc(a)} to {iso_utc(b)} without {r.rest_after_stint_s / 86_400:g} consecutive days off (a stint is at most {r.stint_s / 86_400:g} days)",
                ))
                break
    # 3. overrides and breaks must not leave a role with the same person twice
    for seg in roster.segments(start, end):
        if seg.primary == seg.secondary:
            out.append(RuleBreach(_entry_field(roster, seg.primary, seg.start_ms, seg.end_ms) or "overrides",
                                  f"{seg.primary} would be both primary and secondary of {seg.shift.name} at {iso_utc(seg.start_ms)}"))
            break
    # 4. reachability: never unreachable for more than the limit while on duty
    for u in roster.unavailable:
        fld = f"unavailable.{u.index}"
        worst = 0
        for a, b, label in duty.get(u.person, []):
            lo, hi = max(a, u.start_ms), min(b, u.end_ms)
            worst = max(worst, hi - lo)
        if worst == 0:
            continue
        if worst > r.max_unreachable_s * 1000 and u.covered_by is None:
            out.append(RuleBreach(fld, f"{u.person} would be unreachable for {_dur(worst)} while on duty (limit {_dur(r.max_unreachable_s * 1000)}); add an override for that time, or name covered_by"))
        elif worst > r.max_unreachable_s * 1000:
            out.append(RuleBreach(fld, f"{u.person} is off duty for {_dur(worst)} while on call; {u.covered_by} covers (a break this long is better written as an override)", "warning"))
        elif worst > r.tell_secondary_after_s * 1000 and u.covered_by is None:
            out.append(RuleBreach(fld, f"a {_dur(worst)} break while on duty: tell the secondary (set covered_by)", "warning"))
    return out


def _dur(ms: int) -> str:
    m = ms // 60_000
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _week_label(roster: OnCallRoster, week: int) -> str:
    return iso_utc(roster.week_start_ms(week))[:10]


def _swap_field(roster: OnCallRoster, *weeks: int) -> str | None:
    for i, s in enumerate(roster.spec.swaps):
        if roster.week_of(_day_ms(s.week)) in weeks:
            return f"swaps.{i}"
    return None


def _entry_field(roster: OnCallRoster, pid: str, start_ms: int, end_ms: int) -> str | None:
    for o in roster.overrides:
        if o.person == pid and o.start_ms < end_ms and o.end_ms > start_ms:
            return f"overrides.{o.index}"
    for i, s in enumerate(roster.spec.swaps):
        w = _day_ms(s.week)
        if pid in (s.a, s.b) and w < end_ms and w + WEEK_MS > start_ms:
            return f"swaps.{i}"
    return None


def parse_roster(data: dict[str, Any], path: Path | str = "<roster>", *, strict: bool = True) -> OnCallRoster:
    """Validate parsed TOML as a roster. With ``strict``, a broken rule is an error."""
    spec = validate(path, data, RosterFile)
    roster = OnCallRoster(spec, path)
    if strict:
        errors = [b for b in check_rules(roster) if b.severity == "error"]
        if errors:
            raise RosterRuleError(path, errors)
    return roster


def load_roster(path: Path, *, strict: bool = True) -> OnCallRoster:
    """Read and validate a roster file (errors name the file and the field)."""
    return parse_roster(read_data_file(Path(path)), path, strict=strict)


def example_roster_path() -> Path:
    """The commented example roster shipped under runbooks/oncall/."""
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "oncall" / "roster.example.toml"


class RosterFileWatch:
    """A ``Roster`` over a file that reloads when the file changes. An edit that breaks the file
    keeps the last good roster; both that and a broken rest rule are reported through
    ``on_error`` (pages still go out)."""

    def __init__(self, path: Path, on_error: Any = None) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self._stamp: tuple[int, int] | None = None
        self.current: OnCallRoster | None = None
        self.error: str | None = None
        self.reload()

    def reload(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            roster = load_roster(self.path, strict=False)
            self.current = roster
            self.error = None
            errors = [b for b in check_rules(roster) if b.severity == "error"]
            if errors and self.on_error is not None:
                # a broken rest rule is reported, never a reason to stop paging people
                self.on_error(str(RosterRuleError(self.path, errors)))
        except PolicyError as exc:
            self.error = str(exc)
            if self.on_error is not None:
                self.on_error(self.error)

    def who(self, role: str, at_ms: int) -> str:
        self.reload()
        if self.current is None:
            return FALLBACK_HANDLES.get(role, f"@{role}")
        return self.current.who(role, at_ms)

    def person(self, name_or_id: str) -> Person | None:
        return None if self.current is None else self.current.person(name_or_id)


def iter_days(start_ms: int, days: int) -> Iterator[int]:
    """Midnights (UTC) of ``days`` consecutive days from the day of ``start_ms``."""
    day = start_ms - start_ms % DAY_MS
    for i in range(days):
        yield day + i * DAY_MS

