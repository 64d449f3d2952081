"""Handoff records between shifts and the iCalendar export of the schedule."""
from __future__ import annotations

import json

import icalendar
from click.testing import CliRunner

from console.cli.main import cli
from engine.clock import parse_iso_ms
from engine.oncall.ical import export_ical, fold
from engine.oncall.roster import example_roster_path, load_roster
from ops_support import ledger_with_incident


def t(s: str) -> int:
    return parse_iso_ms(s)


def test_ical_export_parses_back_with_an_independent_parser():
    r = load_roster(example_roster_path())
    text = export_ical(r, t("2026-02-02T00:00:00Z"), t("2026-02-09T00:00:00Z"), now_ms=t("2026-01-30T10:00:00Z"))
    raw = text.encode()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    cal = icalendar.Calendar.from_ical(text)
    events = [c for c in cal.walk("VEVENT")]
    # 7 days x 3 shifts, and the 2026-02-03 override cuts one US shift into three stretches
    assert len(events) == 21 + 2
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == len(uids)
    first = min(events, key=lambda e: e["DTSTART"].dt)
    assert first["DTSTART"].dt.isoformat() == "2026-02-02T00:00:00+00:00"
    assert first["DTEND"].dt.isoformat() == "2026-02-02T08:00:00+00:00"
    assert str(first["SUMMARY"]) == "On call US/Americas: Carmen Diaz / Dmitri Volkov"
    over = [e for e in events if "Dmitri Volkov / Felix Grant" in str(e["SUMMARY"])]
    assert len(over) == 1 and over[0]["DTSTART"].dt.isoformat() == "2026-02-03T02:00:00+00:00"
    assert "override: primary dmitri (Carmen at the dentist)" in str(over[0]["DESCRIPTION"])
    # the same export twice keeps the UIDs (calendar apps update instead of duplicating)
    again = export_ical(r, t("2026-02-02T00:00:00Z"), t("2026-02-09T00:00:00Z"), now_ms=t("2026-01-31T10:00:00Z"))
    assert [str(e["UID"]) for e in icalendar.Calendar.from_ical(again).walk("VEVENT")] == uids


def test_ical_escapes_text_and_folds_inside_multibyte_names_correctly(tmp_path):
    src = example_roster_path().read_text()
    hostile = 'Zoë; “Quotes”, back\\\\slash 日本語の名前がとても長い人 ünïcödé'
    p = tmp_path / "roster.toml"
    p.write_text(src.replace('name = "Ana Souza"', f'name = "{hostile}"'), encoding="utf-8")
    r = load_roster(p)
    text = export_ical(r, t("2026-01-05T00:00:00Z"), t("2026-01-06T00:00:00Z"), now_ms=t("2026-01-01T00:00:00Z"), person="ana")
    for line in text.encode("utf-8").split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # never cut inside a character
    ev = list(icalendar.Calendar.from_ical(text).walk("VEVENT"))
    assert len(ev) == 1 and str(ev[0]["SUMMARY"]) == "On call (primary): US/Americas"
    assert hostile.replace("\\\\", "\\") in str(ev[0]["DESCRIPTION"])
    assert fold("x" * 75) == "x" * 75 and fold("x" * 76) == "x" * 75 + "\r\n x"


def test_cli_export_ical_for_one_person(tmp_path):
    runner = CliRunner()
    env = {"GGEN_DATA_DIR": str(tmp_path)}
    assert runner.invoke(cli, ["oncall", "init"], env=env).exit_code == 0
    out = tmp_path / "me.ics"
    r = runner.invoke(cli, ["oncall", "export", "--ical", str(out), "--weeks", "6", "--from", "2026-01-05", "--person", "greta"], env=env)
    assert r.exit_code == 0, r.output
    cal = icalendar.Calendar.from_ical(out.read_bytes())
    starts = sorted(e["DTSTART"].dt.isoformat() for e in cal.walk("VEVENT"))
    # greta is EU primary in weeks 0 and 3; her 45-minute break is covered, not removed from duty
    assert len(starts) == 14
    assert starts[0] == "2026-01-05T08:00:00+00:00" and starts[7] == "2026-01-26T08:00:00+00:00"
    r = runner.invoke(cli, ["oncall", "export", "--ical", str(out), "--person", "nobody"], env=env)
    assert r.exit_code == 2 and "unknown person" in r.output


def test_handoff_record_carries_the_ledger_incidents_and_reaches_the_next_shift(tmp_path):
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    runner = CliRunner()
    env = {"GGEN_DATA_DIR": str(dd.root)}
    assert runner.invoke(cli, ["oncall", "init"], env=env).exit_code == 0
    # 2026-01-25 (Sunday, week 2) 15:30 UTC: EU/EMEA (Katja/Luca) hands to APAC (Quan/Rina) at 16:00
    args = ["oncall", "handoff", "--at", "2026-01-25T15:30:00Z",
            "--change", "app deploy r42 | 2026-01-25T09:12Z | rolled back",
            "--watch", "acct-3003 queue depth near quota",
            "--question", "Is the breaker override still needed? Yes until the vendor fix",
            "--question", "Who owns the PIR?"]
    r = runner.invoke(cli, args, env=env)
    assert r.exit_code == 0, r.output
    text = r.output
    for label in ("Outgoing: Katja Novak (primary), Luca Romano (secondary), EU/EMEA", "Incoming: Quan Nguyen (primary), Rina Sato (secondary), APAC",
                  "Shift: APAC 2026-01-25 16:00 to 2026-01-26 00:00 UTC", "ONGOING INCIDENTS", "RECENT CHANGES", "WATCH FOR", "QUESTIONS"):
        assert label in text
    assert inc.id in text and "circuit_breaker_opened" in text and "NOT acknowledged" in text
    assert "app deploy r42 | 2026-01-25T09:12Z | rolled back" in text
    assert "Q: Is the breaker override still needed?" in text and "A: Yes until the vendor fix" in text and "A: (open)" in text
    # the incoming shift sees it once its shift starts, and marks it read
    r = runner.invoke(cli, ["oncall", "handoff", "show", "--at", "2026-01-25T16:05:00Z", "--ack", "quan", "--json"], env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["incoming"]["primary"] == "Quan Nguyen" and d["acknowledged_by"] == "quan"
    ids = [i["incident_id"] for i in d["ongoing_incidents"]]
    assert ids[0] == inc.id and len(ids) == len(set(ids))  # most severe and oldest first
    assert {i["incident_id"] for i in d["ongoing_incidents"]} == {i.id for i in eng.incidents.values() if i.open}
    assert d["ongoing_incidents"][0]["severity"] == "Sev1" and d["ongoing_incidents"][0]["status"] == "escalated"
    assert d["watch_for"] == ["acct-3003 queue depth near quota"]
    files = list((dd.root / "handoffs").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["acknowledged_by"] == "quan"


def test_handoff_show_without_records_says_where_it_looked(tmp_path):
    r = CliRunner().invoke(cli, ["oncall", "handoff", "show"], env={"GGEN_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 4 and "no handoff record" in r.output and "ggen oncall handoff" in r.output
