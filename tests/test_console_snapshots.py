"""Snapshots of every console screen at fixed sizes, on a seeded engine with a virtual clock.

Times on screen are engine times in UTC and the engine's ids are seeded, so the pictures are the
same on every run and machine. Update them with ``pytest tests/test_console_snapshots.py
--snapshot-update`` after checking the change by eye.
"""
from __future__ import annotations

from console_support import session, settle, with_incident

from console.tui.app import ConsoleApp

CRASH = """Traceback (most recent call last):
  File "engine/live.py", line 1, in _run
RuntimeError: [bold]fleet model diverged[/bold] \x1b[31m(tick 4242)"""


def app_with_incident(tmp_path, **kwargs):
    s = session(tmp_path, **kwargs)
    with_incident(s)
    s.inject("external_outage", None)
    s.advance(150_000)
    return ConsoleApp(s)


def test_main_80x24(snap_compare, tmp_path):
    assert snap_compare(app_with_incident(tmp_path), terminal_size=(80, 24), run_before=settle)


def test_main_80x24_incident_panel(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("down", "2")
        await settle(pilot)

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(80, 24), run_before=before)


def test_main_160x50(snap_compare, tmp_path):
    assert snap_compare(app_with_incident(tmp_path), terminal_size=(160, 50), run_before=settle)


def test_main_200_services_120x40(snap_compare, tmp_path):
    s = session(tmp_path, fleet_size=200, warmup_ms=60_000)
    s.inject("cpu_saturation", "svc-0042")
    s.advance(180_000)
    assert snap_compare(ConsoleApp(s), terminal_size=(120, 40), run_before=settle)


def test_help(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(ConsoleApp(session(tmp_path)), terminal_size=(100, 50), run_before=before)


def test_chaos_menu(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("c", "down", "down")

    assert snap_compare(ConsoleApp(session(tmp_path)), terminal_size=(120, 30), run_before=before)


def test_mitigate(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("m", "down", "down", "down", "down", "down")

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(120, 40), run_before=before)


def test_confirm(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("k")

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(80, 24), run_before=before)


def seeded_receipt_ids(monkeypatch) -> None:
    """Receipt ids are random UUIDs; the timeline cites them, so its snapshot needs them fixed."""
    import itertools
    import uuid

    import engine.receipts.ledger

    counter = itertools.count(1)
    monkeypatch.setattr(engine.receipts.ledger, "new_receipt_id", lambda: f"urn:uuid:{uuid.UUID(int=next(counter), version=4)}")


def test_timeline(snap_compare, tmp_path, monkeypatch):
    seeded_receipt_ids(monkeypatch)

    async def before(pilot):
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(100, 30), run_before=before)


def test_timeline_event_log(snap_compare, tmp_path):
    async def before(pilot):
        await settle(pilot)
        await pilot.press("t", "3")
        await settle(pilot)

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(100, 30), run_before=before)


def test_pir_draft(snap_compare, tmp_path, monkeypatch):
    # The facts drafter: the analyzer's draft is its own engineers' to snapshot.
    import console.tui.pir

    monkeypatch.setattr(console.tui.pir, "PIR_DRAFTER", console.tui.pir.facts_markdown)

    async def before(pilot):
        await settle(pilot)
        await pilot.press("P")
        await settle(pilot)

    assert snap_compare(app_with_incident(tmp_path), terminal_size=(100, 30), run_before=before)


def test_engine_crash(snap_compare, tmp_path):
    s = session(tmp_path)
    s.crash_text = CRASH

    async def before(pilot):
        await settle(pilot)

    assert snap_compare(ConsoleApp(s), terminal_size=(100, 30), run_before=before)


def test_warroom(snap_compare, tmp_path):
    from pathlib import Path

    from engine.oncall.roster import load_roster

    app = app_with_incident(tmp_path)
    s = app.session
    s.engine.roster = load_roster(Path(__file__).resolve().parents[1] / "runbooks" / "oncall" / "roster.example.toml")
    iid = s.engine.get_incident(sorted(s.engine.incidents.values(), key=lambda i: i.detected_at_ms)[-1].id).id
    s.warroom_open(iid, ic="ann", scribe="bob")
    s.warroom_change(iid, "write", text="external-api answers 503 to every call", kind="diagnostic")
    s.warroom_change(iid, "write", text="serve fail-safe responses, page the vendor", kind="decision")
    s.warroom_change(iid, "check", item="root-cause", detail="vendor outage")
    s.advance(400_000)

    async def before(pilot):
        await settle(pilot)
        await pilot.press("W")
        for _ in range(3):
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.press("escape")  # out of the line, so the footer shows the room's keys

    assert snap_compare(app, terminal_size=(120, 36), run_before=before)
