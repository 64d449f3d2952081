"""The on-call roster: shifts, weekly rotation, swaps, overrides, breaks, rest rules, time zones."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.clock import parse_iso_ms
from engine.oncall.roster import RosterRuleError, check_rules, example_roster_path, load_roster, parse_roster
from engine.policy.loader import PolicyError

EXAMPLE = example_roster_path()


def t(text: str) -> int:
    return parse_iso_ms(text)


def example_data() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def small_roster(**extra) -> dict:
    """A minimal valid roster: 3 shifts x 3 pairs, 18 people, two tech leads."""
    people = {f"p{i:02d}": {"name": f"Person {i:02d}"} for i in range(18)}
    people |= {"tl1": {"name": "Tech Lead One"}, "tl2": {"name": "Tech Lead Two"}, "vp": {"name": "VP"}, "em": {"name": "EM"}}
    shifts = []
    for s, (name, a, b) in enumerate((("US/Americas", "00:00", "08:00"), ("EU/EMEA", "08:00", "16:00"), ("APAC", "16:00", "24:00"))):
        shifts.append({"name": name, "start_utc": a, "end_utc": b, "rotation": [{"primary": f"p{s * 6 + 2 * k:02d}", "secondary": f"p{s * 6 + 2 * k + 1:02d}"} for k in range(3)]})
    data = {
        "roster": {"name": "test", "rotation_start": "2026-01-05"},
        "shifts": shifts,
        "people": people,
        "contacts": {"tech-lead": ["tl1", "tl2"], "vp-engineering": ["vp"], "eng-manager": ["em"]},
    }
    data.update(extra)
    return data


def test_example_roster_is_valid_and_breaks_no_rule():
    r = load_roster(EXAMPLE)
    assert check_rules(r) == []
    assert [s.name for s in r.shifts] == ["US/Americas", "EU/EMEA", "APAC"]
    assert set(r.contacts) == {"tech-lead", "vp-engineering", "eng-manager"}


def test_shift_boundaries_change_the_pair_at_the_exact_millisecond():
    r = parse_roster(small_roster())
    # Monday 2026-01-05 is week 0
    assert r.who_id("primary", t("2026-01-05T00:00:00Z")) == "p00"
    assert r.who_id("primary", t("2026-01-05T07:59:59.999Z")) == "p00"
    assert r.who_id("primary", t("2026-01-05T08:00:00Z")) == "p06"
    assert r.who_id("secondary", t("2026-01-05T15:59:59.999Z")) == "p07"
    assert r.who_id("primary", t("2026-01-05T16:00:00Z")) == "p12"
    assert r.who_id("primary", t("2026-01-05T23:59:59.999Z")) == "p12"
    assert r.who_id("primary", t("2026-01-06T00:00:00Z")) == "p00"
    seg = r.segment_at(t("2026-01-05T12:00:00Z"))
    assert (seg.shift_start_ms, seg.shift_end_ms) == (t("2026-01-05T08:00:00Z"), t("2026-01-05T16:00:00Z"))


def test_weekly_rotation_changes_on_monday_and_cycles():
    r = parse_roster(small_roster())
    assert r.who_id("primary", t("2026-01-11T23:59:59Z")) == "p12"  # Sunday night, week 0, APAC
    assert r.who_id("primary", t("2026-01-12T00:00:00Z")) == "p02"  # Monday, week 1, US pair 2
    assert r.who_id("primary", t("2026-01-19T03:00:00Z")) == "p04"  # week 2
    assert r.who_id("primary", t("2026-01-26T03:00:00Z")) == "p00"  # week 3 = week 0 again
    # before the rotation started, the cycle runs backwards consistently
    assert r.week_of(t("2026-01-04T23:00:00Z")) == -1
    assert r.who_id("primary", t("2026-01-04T23:00:00Z")) == "p16"  # APAC, pair (-1 % 3) = 2
    assert r.who("primary", t("2026-01-12T00:00:00Z")) == "Person 02"


def test_swap_exchanges_two_people_for_one_week_only():
    r = parse_roster(small_roster(swaps=[{"week": "2026-01-12", "a": "p02", "b": "p03", "reason": "3 Sev1 last week"}]))
    assert r.who_id("primary", t("2026-01-12T01:00:00Z")) == "p03"
    assert r.who_id("secondary", t("2026-01-12T01:00:00Z")) == "p02"
    assert r.segment_at(t("2026-01-12T01:00:00Z")).notes == ["swap"]
    assert r.who_id("primary", t("2026-02-02T01:00:00Z")) == "p02"  # same pair, week 4: swap is over


def test_override_applies_inside_its_range_and_shift_only():
    ov = [{"start": "2026-01-06T02:00:00Z", "end": "2026-01-06T10:00:00Z", "role": "primary", "shift": "US/Americas", "person": "p01", "reason": "dentist"},
          {"start": "2026-01-06T02:00:00Z", "end": "2026-01-06T10:00:00Z", "role": "secondary", "shift": "US/Americas", "person": "tl2"}]
    r = parse_roster(small_roster(overrides=ov))
    assert r.who_id("primary", t("2026-01-06T01:59:59Z")) == "p00"
    assert r.who_id("primary", t("2026-01-06T02:00:00Z")) == "p01"
    assert r.who_id("secondary", t("2026-01-06T05:00:00Z")) == "tl2"
    assert r.who_id("primary", t("2026-01-06T09:00:00Z")) == "p06"  # EU shift is not overridden
    segs = r.segments(t("2026-01-06T00:00:00Z"), t("2026-01-06T08:00:00Z"))
    assert [(s.primary, s.start_ms, s.end_ms) for s in segs] == [
        ("p00", t("2026-01-06T00:00:00Z"), t("2026-01-06T02:00:00Z")),
        ("p01", t("2026-01-06T02:00:00Z"), t("2026-01-06T08:00:00Z")),
    ]


def test_break_pages_the_cover_and_second_tech_lead_answers_when_the_first_is_away():
    un = [{"person": "p06", "start": "2026-01-05T10:00:00Z", "end": "2026-01-05T10:40:00Z", "covered_by": "p07"},
          {"person": "tl1", "start": "2026-01-05T10:00:00Z", "end": "2026-01-05T12:00:00Z"},
          {"person": "p07", "start": "2026-01-05T13:00:00Z", "end": "2026-01-05T13:20:00Z"}]
    r = parse_roster(small_roster(unavailable=un))
    assert r.who("primary", t("2026-01-05T10:10:00Z")) == "Person 07"
    assert r.who("primary", t("2026-01-05T10:40:00Z")) == "Person 06"
    assert r.who("tech-lead", t("2026-01-05T10:10:00Z")) == "Tech Lead Two"
    assert r.who("tech-lead", t("2026-01-05T12:00:00Z")) == "Tech Lead One"
    # a secondary on a short break without a named cover: the first reachable Tech Lead answers
    assert r.who_id("secondary", t("2026-01-05T13:10:00Z")) == "tl1"
    warnings = [b for b in check_rules(r) if b.severity == "warning"]
    assert [b.field for b in warnings] == ["unavailable.1"] or all(b.field.startswith("unavailable") for b in warnings)


def test_roles_missing_from_the_roster_fall_back_to_handles():
    data = small_roster()
    del data["contacts"]["eng-manager"]
    r = parse_roster(data)
    assert r.who("eng-manager", t("2026-01-05T00:00:00Z")) == "@manager-oncall"
    assert r.who("incident-commander", t("2026-01-05T00:00:00Z")) == "@incident-commander"


@pytest.mark.parametrize(
    "mutate, field, words",
    [
        (lambda d: d["shifts"][0]["rotation"][1].update(primary="zed"), "shifts.0.rotation.1.primary", "unknown person 'zed'"),
        (lambda d: d["shifts"][1].update(start_utc="09:00"), "shifts.1.start_utc", "nobody is on call from 08:00 to 09:00"),
        (lambda d: d["shifts"][2].update(start_utc="15:00"), "shifts.2.start_utc", "overlaps"),
        (lambda d: d["shifts"][2].update(end_utc="23:00"), "shifts.2.end_utc", "23:00 to 24:00"),
        (lambda d: d["shifts"][0].update(end_utc="25:00"), "shifts.0.end_utc", "HH:MM"),
        (lambda d: d["roster"].update(rotation_start="2026-01-06"), "roster.rotation_start", "Tuesday"),
        (lambda d: d["shifts"][0]["rotation"][0].update(secondary="p00"), "shifts.0.rotation.0", "both primary and secondary"),
        (lambda d: d.update(overrides=[{"start": "2026-01-06T02:00:00Z", "end": "2026-01-06T01:00:00Z", "role": "primary", "person": "p01"}]), "overrides.0.end", "end after"),
        (lambda d: d.update(overrides=[{"start": "2026-01-06T02:00:00Z", "end": "2026-01-06T03:00:00Z", "role": "captain", "person": "p01"}]), "overrides.0.role", "primary or secondary"),
        (lambda d: d["contacts"].update({"tech-lead": ["nobody"]}), "contacts.tech-lead.0", "unknown person"),
        (lambda d: d.update(bogus=1), "bogus", "Extra inputs"),
    ],
)
def test_structure_errors_name_the_file_and_field(tmp_path, mutate, field, words):
    data = small_roster()
    mutate(data)
    with pytest.raises(PolicyError) as ei:
        parse_roster(data, tmp_path / "roster.toml")
    assert ei.value.field == field
    assert words in str(ei.value)
    assert str(tmp_path / "roster.toml") in str(ei.value)


def test_fairness_one_week_in_three_is_enforced():
    data = small_roster()
    data["shifts"][0]["rotation"] = data["shifts"][0]["rotation"][:2]  # two pairs: every other week
    with pytest.raises(RosterRuleError) as ei:
        parse_roster(data, "r.toml")
    assert "fairness" in str(ei.value) and "2 weeks out of 3" in str(ei.value)
    # a team that reads the rule differently changes a number, not the program
    data["rules"] = {"fairness_window_weeks": 2}
    assert parse_roster(data)


def test_rest_two_days_off_after_a_stint():
    # p00 ends a US stint on Sunday 2026-01-11 08:00; an override on Monday breaks the rest rule
    bad = [{"start": "2026-01-12T10:00:00Z", "end": "2026-01-12T12:00:00Z", "role": "secondary", "shift": "EU/EMEA", "person": "p00"}]
    with pytest.raises(RosterRuleError) as ei:
        parse_roster(small_roster(overrides=bad), "r.toml")
    assert ei.value.field == "overrides.0"
    assert "without 2 consecutive days off" in str(ei.value)
    ok = [{"start": "2026-01-14T10:00:00Z", "end": "2026-01-14T12:00:00Z", "role": "secondary", "shift": "EU/EMEA", "person": "p00"}]
    assert parse_roster(small_roster(overrides=ok))


def test_swap_into_consecutive_weeks_is_refused_by_name():
    # p00 (week 0) takes p02's week 1 slot: two weeks running, no rest
    with pytest.raises(RosterRuleError) as ei:
        parse_roster(small_roster(swaps=[{"week": "2026-01-12", "a": "p00", "b": "p02"}]), "r.toml")
    assert ei.value.field.startswith("swaps.0")


def test_never_unreachable_more_than_an_hour_while_on_duty():
    un = [{"person": "p06", "start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:30:00Z"}]
    with pytest.raises(RosterRuleError) as ei:
        parse_roster(small_roster(unavailable=un), "r.toml")
    assert ei.value.field == "unavailable.0"
    assert "unreachable for 1 h 30 min" in str(ei.value)
    # off duty it is nobody's business
    un = [{"person": "p06", "start": "2026-01-12T09:00:00Z", "end": "2026-01-12T15:30:00Z"}]
    assert parse_roster(small_roster(unavailable=un))




def test_cli_now_and_check(tmp_path):
    runner = CliRunner()
    env = {"GGEN_DATA_DIR": str(tmp_path / "dd")}
    r = runner.invoke(cli, ["oncall", "init"], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["oncall", "check"], env=env)
    assert r.exit_code == 0 and "ok (22 people, 3 shifts)" in r.output
    r = runner.invoke(cli, ["oncall", "now", "--at", "2026-01-06T11:10:00Z", "--json"], env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["shift"]["name"] == "EU/EMEA"
    assert d["primary"]["name"] == "Greta Lind" and d["primary"]["on_break_until"] == "2026-01-06 11:45 UTC"
    assert d["answers_pages"]["primary"] == "Hugo Martin"
    assert d["next"] == {"shift": "APAC", "at": "2026-01-06 16:00 UTC", "primary": "Mei Tanaka", "secondary": "Nikhil Rao"}
    r = runner.invoke(cli, ["oncall", "now", "--tz", "Mars/Olympus"], env=env)
    assert r.exit_code == 2 and "unknown time zone" in r.output
    # a broken edit is reported with file and field
    rp = tmp_path / "dd" / "roster.toml"
    rp.write_text(rp.read_text().replace('end_utc = "16:00"', 'end_utc = "15:00"'))
    r = runner.invoke(cli, ["oncall", "check"], env=env)
    assert r.exit_code == 1 and "roster.toml: field shifts.2.start_utc: nobody is on call from 15:00 to 16:00" in r.output


def test_schedule_in_a_local_zone_follows_daylight_saving(tmp_path):
    """US DST starts 2026-03-08 at 02:00 local: the 00-08 UTC shift moves from 19:00 EST to 20:00 EDT."""
    runner = CliRunner()
    env = {"GGEN_DATA_DIR": str(tmp_path)}
    assert runner.invoke(cli, ["oncall", "init"], env=env).exit_code == 0
    r = runner.invoke(cli, ["oncall", "schedule", "--weeks", "2", "--from", "2026-03-02T12:00:00Z", "--tz", "America/New_York", "--json"], env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    us = {s["start"][:10]: s for s in d["segments"] if s["shift"] == "US/Americas"}
    assert us["2026-03-07"]["local_start"] == "2026-03-06 19:00 EST" and us["2026-03-07"]["local_end"] == "2026-03-07 03:00 EST"
    assert us["2026-03-08"]["local_start"] == "2026-03-07 19:00 EST" and us["2026-03-08"]["local_end"] == "2026-03-08 04:00 EDT"
    assert us["2026-03-09"]["local_start"] == "2026-03-08 20:00 EDT"
    # rotation week 8 (2026-03-02) and week 9 (2026-03-09): pairs change on Monday
    assert us["2026-03-08"]["primary"] == "elena" and us["2026-03-09"]["primary"] == "ana"
    # and Europe changes a few weeks later (2026-03-29), so the EU shift is an hour later in Berlin then
    r = runner.invoke(cli, ["oncall", "schedule", "--weeks", "1", "--from", "2026-03-23", "--tz", "Europe/Berlin", "--json"], env=env)
    eu = {s["start"][:10]: s for s in json.loads(r.output)["segments"] if s["shift"] == "EU/EMEA"}
    assert eu["2026-03-28"]["local_start"] == "2026-03-28 09:00 CET"
    assert eu["2026-03-29"]["local_start"] == "2026-03-29 10:00 CEST"
    # the calendar view renders both zones' labels
    r = runner.invoke(cli, ["oncall", "schedule", "--weeks", "1", "--from", "2026-03-02T12:00:00Z", "--tz", "America/New_York"], env=env)
    assert r.exit_code == 0 and "EDT" in r.output and "EST" in r.output and "Elena Park / Felix Grant" in r.output


def test_engine_ladder_pages_the_people_the_roster_names():
    from engine.clock import VirtualClock
    from engine.core import Engine

    roster = load_roster(EXAMPLE)
    eng = Engine(clock=VirtualClock(t("2026-01-25T14:00:00Z")), roster=roster)
    eng.run_for(60_000)
    eng.inject("dependency_outage", "action-handler")
    eng.set_kill_switch(True, "test")
    assert eng.run_until(lambda e: any(i.escalated for i in e.incidents.values()), 300_000)
    pages = [n for n in eng.outbox.items if n.channel == "pager"]
    # Sunday 2026-01-25 14:00 UTC is week 2, EU/EMEA: Katja Novak is primary
    assert pages[0].recipient_role == "primary" and pages[0].recipient == "Katja Novak"
    sms = [n for n in eng.outbox.items if n.channel == "sms"]
    assert sms and sms[0].recipient == "Vera Kowalski"
