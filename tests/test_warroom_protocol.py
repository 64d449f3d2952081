"""The warroom: roles and hand-over, the room cap, the scribe log as signed receipts, reminders,
and the closure checklist as a gate."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.receipts import KeyStore, Ledger
from engine.warroom import EngineRecorder, WarroomError, load_warroom_policy, open_warroom
from ops_support import ledger_with_incident, sev1_engine

POLICY = load_warroom_policy()
MIN = 60_000


def test_cli_warroom_lifecycle_with_receipts_that_verify(tmp_path):
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    env = {"GGEN_DATA_DIR": str(dd.root)}
    run = CliRunner().invoke
    short = inc.id.removeprefix("urn:uuid:")[:8]
    # the runbooks' spelling (`ggen incident warroom create`) works as well as the canonical one
    r = run(cli, ["incident", "warroom", "create", "--incident-id", short, "--ic", "Katja", "--by", "katja"], env=env)
    assert r.exit_code == 0, r.output
    assert f"Incident ID: {inc.id}" in r.output and "Severity: Sev1" in r.output and "Incident Commander: Katja" in r.output
    assert "Scribe: (unassigned)" in r.output and "assign the Scribe" in r.output
    steps = [
        ["assign", "--role", "scribe", "--person", "Luca"],
        ["assign", "--role", "subject-expert", "--person", "Tessa"],
        ["log", "--kind", "diagnostic", "Tessa: action-handler crash-loops since 14:01; breaker OPEN"],
        ["log", "--kind", "decision", "restart action-handler now; rollback at 14:20 if no improvement"],
        ["handover", "--role", "incident-commander", "--to", "Quan"],
    ]
    for s in steps:
        r = run(cli, ["incidents", "warroom", *s, "--by", "luca"], env=env)
        assert r.exit_code == 0, (s, r.output)
        assert "receipt urn:uuid:" in r.output or s[0] == "log"
    r = run(cli, ["incidents", "warroom", "close", "--by", "quan"], env=env)
    assert r.exit_code == 5 and "closure checklist incomplete" in r.output and "pir-scheduled" in r.output
    for item, detail in (("root-cause", "action-handler crash loop (bad config)"), ("metrics-green", "errors 0.4%"), ("action-items", "fix config validation (owner Tessa)"),
                         ("customers-informed", "all-clear posted 14:40"), ("pir-scheduled", "tomorrow 10:00 UTC")):
        r = run(cli, ["incidents", "warroom", "check", item, "--detail", detail, "--by", "quan"], env=env)
        assert r.exit_code == 0, r.output
    assert "checklist complete" in r.output
    r = run(cli, ["incidents", "warroom", "show", "--incident-id", short, "--json"], env=env)
    d = json.loads(r.output)
    assert d["roles"]["incident-commander"] == ["Quan"] and d["roles"]["scribe"] == ["Luca"] and d["missing_checklist"] == []
    r = run(cli, ["incidents", "warroom", "close", "--by", "quan"], env=env)
    assert r.exit_code == 0, r.output
    r = run(cli, ["incidents", "warroom", "log", "too late"], env=env)
    assert r.exit_code == 4 and "no open warroom" in r.output
    # every entry is a signed incident.note receipt on the incident's timeline, and the ledger verifies
    keys = KeyStore.open_or_init(dd.keys_dir)
    with Ledger.open(dd.ledger_path, keys) as ledger:
        notes = [rec.payload() for rec in ledger.incident_receipts(inc.id) if rec.kind == "incident.note"]
    texts = [n["summary"] for n in notes]
    assert texts[0].startswith("warroom opened by katja: Sev1")
    assert "Tessa: action-handler crash-loops since 14:01; breaker OPEN" in texts
    assert "Incident Commander handed over from Katja to Quan" in texts
    assert texts[-1].startswith("warroom closed by quan")
    assert len(notes) == 1 + 1 + len(steps) + 5 + 1
    decision = next(n for n in notes if n["evidence"]["warroom"]["entry_kind"] == "decision")
    assert decision["actor"] == "person:luca" and decision["incident_id"] == inc.id and decision["parents"]
    r = run(cli, ["incidents", "verify", "--incident-id", inc.id], env=env)
    assert r.exit_code == 0, r.output
    r = run(cli, ["incidents", "verify", "--all"], env=env)
    assert r.exit_code == 0, r.output
    # the warroom's lines are on the incident's timeline as `incidents show` tells it
    r = run(cli, ["incidents", "show", inc.id, "--json"], env=env)
    assert r.exit_code == 0 and "restart action-handler now; rollback at 14:20 if no improvement" in r.output


def test_roles_room_cap_and_handover_rules():
    from engine.warroom.room import Warroom

    room = Warroom("urn:uuid:x", "Sev1", "t", 0, 0, "ic")
    room.assign(POLICY, "incident-commander", "Ana", by="ana", now_ms=0)
    with pytest.raises(WarroomError, match="handover"):
        room.assign(POLICY, "incident-commander", "Ben", by="ana", now_ms=0)
    with pytest.raises(WarroomError, match="unknown role 'captain'"):
        room.assign(POLICY, "captain", "Ben", by="ana", now_ms=0)
    for i in range(9):
        room.assign(POLICY, "observer", f"obs{i}", by="ana", now_ms=0)
    assert len(room.people) == 10
    with pytest.raises(WarroomError, match="room is full"):
        room.assign(POLICY, "scribe", "Zed", by="ana", now_ms=0)
    # someone already in the room may take a second role
    room.assign(POLICY, "scribe", "obs0", by="ana", now_ms=0)
    # a hand-over that swaps a person out keeps the count
    room.handover(POLICY, "incident-commander", "Newcomer", by="ana", now_ms=0)
    assert room.holder("incident-commander") == "Newcomer" and "Ana" not in room.people and len(room.people) == 10


def test_cadence_reminders_in_virtual_time():
    room_start = 1_000_000
    from engine.warroom.room import Warroom

    room = Warroom("urn:uuid:x", "Sev1", "t", room_start, room_start, "ana")
    assert [r for r in room.reminders(POLICY, room_start) if r.startswith("assign")] == [
        "assign the Incident Commander (`assign --role incident-commander --person NAME`)", "assign the Scribe (`assign --role scribe --person NAME`)"]
    room.assign(POLICY, "incident-commander", "Ana", by="ana", now_ms=room_start)
    room.assign(POLICY, "scribe", "Ben", by="ana", now_ms=room_start)
    assert room.reminders(POLICY, room_start + 4 * MIN, status_every_s=300) == []
    r = room.reminders(POLICY, room_start + 5 * MIN, status_every_s=300)
    assert any(x.startswith("IC poll overdue") for x in r) and any(x.startswith("Sev1 status update due") for x in r)
    room.write("all: errors 38%, need 3 min", author="ana", kind="poll", now_ms=room_start + 5 * MIN)
    room.write("posted update #2", author="ben", kind="status", now_ms=room_start + 5 * MIN)
    assert room.reminders(POLICY, room_start + 9 * MIN, status_every_s=300) == []
    # a status-page publication counts as the status update
    r = room.reminders(POLICY, room_start + 10 * MIN + 1, status_every_s=300, last_status_ms=room_start + 9 * MIN)
    assert not any("status update" in x for x in r)
    assert any(x.startswith("decision point") for x in r)
    room.write("continue 2 min, then roll back", author="ana", kind="decision", now_ms=room_start + 11 * MIN)
    assert not any(x.startswith("decision point") for x in room.reminders(POLICY, room_start + 11 * MIN))


def test_scribe_log_through_a_live_engine_joins_the_in_memory_timeline(tmp_path):
    eng, inc = sev1_engine()
    rec = EngineRecorder(eng)
    room = open_warroom(tmp_path, incident_id=inc.id, severity=inc.severity, title=inc.title, incident_start_ms=inc.detected_at_ms, by="katja", now_ms=eng.now_ms, rec=rec)
    room.write("<script>alert(1)</script> and \x1b[31m", author="luca", kind="action", now_ms=eng.now_ms, rec=rec)
    notes = [e for e in inc.events if e.kind == "incident.note"]
    assert [n.summary for n in notes][-1] == "<script>alert(1)</script> and \x1b[31m"
    assert notes[-1].actor == "person:luca" and notes[-1].data["warroom"]["entry_kind"] == "action"
    with pytest.raises(WarroomError, match="already exists"):
        open_warroom(tmp_path, incident_id=inc.id, severity="Sev1", title="x", incident_start_ms=None, by="x", now_ms=0)
    text = room.render(POLICY, eng.now_ms)
    assert "TIMELINE" in text and "[action] <script>alert(1)</script>" in text


def test_cli_escapes_hostile_log_text_and_rejects_unknown_incidents(tmp_path):
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    env = {"GGEN_DATA_DIR": str(dd.root)}
    run = CliRunner().invoke
    assert run(cli, ["incidents", "warroom", "create", "--incident-id", inc.id], env=env).exit_code == 0
    assert run(cli, ["incidents", "warroom", "log", "\x1b]0;owned\x07 \x1b[2J text"], env=env).exit_code == 0
    r = run(cli, ["incidents", "warroom", "show"], env=env)
    assert "\x1b" not in r.output and "\\x1b]0;owned\\x07" in r.output
    r = run(cli, ["incidents", "warroom", "create", "--incident-id", "ffffffff"], env=env)
    assert r.exit_code == 4 and "no incident matches" in r.output
    r = run(cli, ["incidents", "warroom", "check", "vibes"], env=env)
    assert r.exit_code == 5 and "unknown checklist item 'vibes'" in r.output


def test_cli_status_reminder_knows_the_last_status_page_publication(tmp_path, monkeypatch):
    """`warroom show` reminds about the status-update cadence, counted from the last publication."""
    import types

    from console.cli.warroom import _status_cadence
    from engine.statuspage import StatusStore, StatusUpdate

    root = tmp_path / "dd"
    room = types.SimpleNamespace(severity="Sev1", incident_id="urn:uuid:00000000-0000-4000-8000-000000000001")
    monkeypatch.setenv("GGEN_DATA_DIR", str(root))
    import click

    with click.Context(cli):
        assert _status_cadence(room) == (300, None)
        StatusStore(root).append(
            StatusUpdate(
                incident_id=room.incident_id, number=1, audience="public", status="investigating", severity="Sev1",
                banner="MAJOR OUTAGE", title="API errors", components=["API Endpoints"], impact="requests fail",
                started="14:00 UTC", duration="5 min", affected="all customers", root_cause="under investigation",
                expected_resolution="15 min", next_update="14:10 UTC", drafted_at_ms=1, published_at_ms=123_000,
            )
        )
        assert _status_cadence(room) == (300, 123_000)
