"""The warroom screen (key W): opening the room, the scribe log through the engine (events and
signed receipts), roles, the closure checklist as a gate, reminders that follow the engine's
clock and the status page, and who is on call / which deliveries failed, also from an attached
console."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from console_support import screen_text, session, settle, with_incident

from console.tui.app import ConsoleApp
from console.tui.attached import AttachedSession
from console.tui.screens.dialogs import ConfirmScreen, PromptScreen
from console.tui.screens.main import MainScreen
from console.tui.screens.warroom import RoleScreen, RoomOpenScreen, WarroomScreen
from console.tui.session import open_live_session
from engine.datadir import DataDir
from engine.live import wait_until
from engine.warroom import load_warroom

ROSTER = Path(__file__).resolve().parents[1] / "runbooks" / "oncall" / "roster.example.toml"


async def room_read(pilot) -> WarroomScreen:
    """Let pending changes land, then read the room once more and show it."""
    screen = pilot.app.screen
    assert isinstance(screen, WarroomScreen), type(screen)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    before = screen.reads
    screen._reading = False
    screen.request_read()
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if screen.reads > before:
            return screen
    raise AssertionError("the warroom was never read again")


async def type_line(pilot, text: str) -> None:
    """Put ``text`` on the focused input line (typing it key by key costs ~0.1 s a key) and
    press Enter, as a person finishing a line does."""
    pilot.app.focused.value = text
    await pilot.press("enter")


async def open_room(pilot, ic: str = "", scribe: str = "bob") -> WarroomScreen:
    await pilot.press("W")
    for _ in range(5):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    assert isinstance(pilot.app.screen, RoomOpenScreen)
    if ic:
        await pilot.press("ctrl+a", *ic)
    await pilot.press("enter", *scribe, "enter")
    return await room_read(pilot)


def notes(s, iid) -> list[tuple[str, str]]:
    return [(e.actor, e.summary) for e in s.engine.incidents[iid].events if e.kind == "incident.note"]


def test_open_the_room_log_through_the_engine_and_see_it_literally(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    hostile = "[bold]db pool[/bold] exhausted [link=http://evil.example]x[/link]"

    async def go():
        async with ConsoleApp(s).run_test(size=(130, 42)) as pilot:
            await settle(pilot)
            screen = await open_room(pilot)  # the IC defaults to the person at the console
            text = screen_text(pilot.app)
            for needle in ("Incident ID", iid, "Severity", "Sev2", "Start Time", "2026-01-25", "Incident Commander tester", "Scribe bob", "OPEN", "2 of 10 people", "☐ root-cause", "0 of 5"):
                assert needle in text, needle
            await pilot.press(*"ok", "enter")  # typed key by key ...
            await room_read(pilot)
            await type_line(pilot, hostile)  # ... and a longer one put on the line
            s.warroom_change(iid, "write", text="\x1b[31mred alert from a paste")  # an escape code cannot be typed as a key
            await room_read(pilot)
            text = screen_text(pilot.app)
            assert hostile in text and "\\x1b[31mred alert from a paste" in text and "\x1b" not in text
            strips = pilot.app.screen._compositor.render_strips()
            hits = [seg for strip in strips for seg in strip if "db pool" in seg.text]
            assert hits and not any(seg.style and seg.style.bold for seg in hits)
            assert screen.query_one("#room-input").value == ""  # cleared once saved
            # The kind of the next line: shift+tab to the kind, open it, pick "decision".
            await pilot.press("shift+tab", "enter", "down", "down", "down", "enter", "tab")
            await type_line(pilot, "roll back to revision 1 by 14:20")
            await room_read(pilot)
            assert "[decision] roll back to revision 1 by 14:20" in screen_text(pilot.app)
            await pilot.press("escape", "escape")  # out of the line, then back to the main screen
            assert isinstance(pilot.app.screen, MainScreen)

    asyncio.run(go())
    assert notes(s, iid) == [
        ("person:tester", "warroom opened by tester: Sev2 Error rate spike on app"),
        ("person:tester", "tester is Incident Commander (assigned by tester)"),
        ("person:tester", "bob is Scribe (assigned by tester)"),
        ("person:tester", "ok"),
        ("person:tester", hostile),
        ("person:tester", "\x1b[31mred alert from a paste"),
        ("person:tester", "roll back to revision 1 by 14:20"),
    ]
    decision = [e for e in s.engine.incidents[iid].events if e.kind == "incident.note"][-1]
    assert decision.data["warroom"]["entry_kind"] == "decision"
    room = load_warroom(s.data_dir.root, iid)
    assert [e.kind for e in room.log][-3:] == ["note", "note", "decision"]
    db = sqlite3.connect(s.data_dir.ledger_path)
    stored = [r[0] for r in db.execute("SELECT kind FROM receipts WHERE incident_id = ? ORDER BY seq", (iid,))]
    db.close()
    assert stored.count("incident.note") == 7  # every line is a signed receipt on the incident


def test_roles_checklist_gate_and_closing(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    items = ["root-cause", "metrics-green", "action-items", "customers-informed", "pir-scheduled"]

    async def go():
        async with ConsoleApp(s).run_test(size=(130, 42)) as pilot:
            await settle(pilot)
            await open_room(pilot, scribe="")
            assert "Scribe (unassigned)" in screen_text(pilot.app)
            await pilot.press("escape", "a")  # leave the line; assign a role
            assert isinstance(pilot.app.screen, RoleScreen)
            await pilot.press("down", "enter", *"bob", "enter")  # the second role: Scribe
            await room_read(pilot)
            assert "Scribe bob" in screen_text(pilot.app) and "2 of 10 people" in screen_text(pilot.app)
            await pilot.press("h")
            assert isinstance(pilot.app.screen, RoleScreen)
            await pilot.press("enter", *"cid", "enter")  # the Incident Commander hands over to cid
            await room_read(pilot)
            assert "Incident Commander cid" in screen_text(pilot.app)
            await pilot.press("x")  # refused: nothing ticked
            await room_read(pilot)
            assert load_warroom(s.data_dir.root, iid).open
            await pilot.press("c", "enter")  # the first open item, with what backs it
            assert isinstance(pilot.app.screen, PromptScreen)
            await type_line(pilot, "root-cause ok")
            await room_read(pilot)
            assert "1 of 5" in screen_text(pilot.app)
            await pilot.press("enter")  # a ticked item stays ticked (no prompt)
            assert isinstance(pilot.app.screen, WarroomScreen)
            for item in items[1:]:  # the others from another console of the same operator
                s.warroom_change(iid, "check", item=item, detail=f"{item} ok")
            await room_read(pilot)
            text = screen_text(pilot.app)
            assert "5 of 5" in text and "☑ root-cause (tester: root-cause ok)" in text and "☑ pir-scheduled" in text
            await pilot.press("x")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await room_read(pilot)
            assert "CLOSED" in screen_text(pilot.app) and "the room is closed" in screen_text(pilot.app)

    asyncio.run(go())
    room = load_warroom(s.data_dir.root, iid)
    assert not room.open and room.closed_by == "tester" and room.holder("incident-commander") == "cid"
    assert sorted(room.checklist) == sorted(items)
    assert notes(s, iid)[-1][1].startswith("warroom closed by tester")


def test_reminders_follow_the_engine_clock_and_the_status_page(tmp_path):
    from engine.statuspage import StatusStore, StatusUpdate

    s = session(tmp_path)
    iid = with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(130, 42)) as pilot:
            await settle(pilot)
            screen = await open_room(pilot)
            assert "nothing owed right now" in screen_text(pilot.app)
            s.advance(301_000)
            await room_read(pilot)
            assert "IC poll overdue" in screen_text(pilot.app)
            await pilot.press("shift+tab", "enter", *["down"] * 5, "enter", "tab")  # kind: poll
            await type_line(pilot, "everyone: no change")
            await room_read(pilot)
            assert "IC poll overdue" not in screen_text(pilot.app)
            s.advance(300_000)  # ten minutes in: a Sev2 owes a status update, and a decision
            await room_read(pilot)
            text = screen_text(pilot.app).replace("\n", " ")
            assert "status update due" in text and "decision point" in text
            inc = s.engine.incidents[iid]
            StatusStore(s.data_dir.root).append(StatusUpdate(
                incident_id=iid, number=1, audience="public", status="identified", severity="Sev2", banner="SEV2", title=inc.title,
                components=["api"], impact="errors on checkout", started="14:02 UTC", duration="10 min", affected="checkout",
                root_cause="a bad deploy", expected_resolution="14:30 UTC", drafted_at_ms=s.engine.now_ms, published_at_ms=s.engine.now_ms,
            ))
            await room_read(pilot)
            assert "status update due" not in screen_text(pilot.app).replace("\n", " ")
            assert screen.room is not None and screen.room["last_status_ms"] == s.engine.now_ms

    asyncio.run(go())


def test_on_call_and_failed_deliveries_are_shown(tmp_path):
    from engine.delivery import DeliveryService, load_delivery_config
    from engine.oncall.roster import load_roster

    s = session(tmp_path)
    s.engine.roster = load_roster(ROSTER)
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text('[delivery]\n[[delivery.channels]]\ntype = "command"\nname = "pager-cmd"\ncommand = ["/nonexistent/ggen-pager"]\nkinds = ["page"]\n')
    delivery = DeliveryService(s.engine.outbox, load_delivery_config(cfg_path), engine=s.engine)
    delivery.start()
    s.extras.services = [delivery]
    iid = with_incident(s)
    s.escalate(iid, "test: page a human")
    assert delivery.wait_idle(10) and delivery.failures
    now = s.engine.roster.segment_at(s.engine.now_ms)
    primary = s.engine.roster.people[now.primary].name

    async def go():
        async with ConsoleApp(s).run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "UNSENT" in text.splitlines()[0]  # the status bar
            assert f"on call {primary}/" in text and "unsent" in text  # the notices panel's title
            await open_room(pilot)
            text = screen_text(pilot.app)
            assert f"now {primary} (primary)" in text and "delivery failure" in text and "pager-cmd (command)" in text

    try:
        asyncio.run(go())
    finally:
        delivery.stop()


def test_an_attached_console_works_the_same_room(tmp_path):
    s = open_live_session(DataDir(tmp_path / "data"), speed=120.0, actor="owner")
    try:
        s.inject("bad_deploy", "app")
        assert wait_until(lambda: any(i.open for i in s.engine.incidents.values()), 20)
        s.pause()
        (iid,) = [i.id for i in s.engine.incidents.values() if i.open]
        a = AttachedSession(s.data_dir, actor="dee")

        async def go():
            async with ConsoleApp(a).run_test(size=(130, 42)) as pa, ConsoleApp(s).run_test(size=(130, 42)) as po:
                await settle(pa)
                await open_room(pa, scribe="eve")
                assert "Incident Commander dee" in screen_text(pa.app)
                await type_line(pa, "paged the db team")
                await room_read(pa)
                await settle(po)
                await po.press("W")  # the console running the engine opens the same room
                await room_read(po)
                text = screen_text(po.app)
                assert "Incident Commander dee" in text and "Scribe eve" in text and "paged the db team (dee)" in text

        asyncio.run(go())
        people = [n for n in notes(s, iid) if n[0] != "engine"]  # quitting the owner's console stops the engine: its "unwatched" note comes last
        assert people[-1] == ("person:dee", "paged the db team")
        assert notes(s, iid)[-1][0] == "engine" and "unwatched" in notes(s, iid)[-1][1]
    finally:
        s.stop()
