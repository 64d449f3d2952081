"""Every console action, driven with the Pilot: press the keys, then check the engine and the screen."""
from __future__ import annotations

import asyncio

import pytest
from console_support import screen_text, session, settle, with_incident

from console.tui.actions import MANUAL_ACTIONS
from console.tui.pir import collect_facts, facts_markdown
from console.tui.text import short_id
from console.tui.app import ConsoleApp
from console.tui.screens.chaos import ChaosScreen, TargetScreen
from console.tui.screens.dialogs import ConfirmScreen, PromptScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.incident import PirScreen, SimilarScreen, TimelineScreen
from console.tui.screens.main import MainScreen
from console.tui.screens.mitigate import MitigateScreen
from engine.fleet.faults import FAULT_KINDS
from engine.mitigate.actuator import SimActuator


def run(coro):
    return asyncio.run(coro)


def kinds(s, incident_id):
    return [e.kind for e in s.engine.incidents[incident_id].events]


def test_main_screen_shows_fleet_status_and_incident(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "VIRTUAL" in text and "ggen-demo" in text
            assert "error rate app" in text and "Sev2" in text
            for name in ("api", "app", "database", "external-api"):
                assert name in text  # fleet panel is the default lower panel
            assert pilot.app.main.selected_id == iid
            await pilot.press("2")
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "Runbook steps" in text and "throttle" in text

    run(go())


def test_chaos_menu_lists_every_fault_and_injects_after_confirmation(tmp_path):
    s = session(tmp_path)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("c")
            assert isinstance(pilot.app.screen, ChaosScreen)
            text = screen_text(pilot.app)
            for kind in FAULT_KINDS:
                assert kind in text, f"chaos menu lacks {kind}"
            order = list(FAULT_KINDS)
            await pilot.press(*["down"] * order.index("bad_deploy"), "enter")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            assert "bad_deploy on app" in screen_text(pilot.app)
            assert not s.engine.fleet.faults  # nothing before the confirmation
            await pilot.press("y")
            await settle(pilot)
            faults = [(f.kind, f.target) for f in s.engine.fleet.faults]
            assert faults == [("bad_deploy", "app")]
            assert "injected bad_deploy" in screen_text(pilot.app)  # the notices feed
            s.advance(75_000)
            await settle(pilot)
            assert "error rate app" in screen_text(pilot.app)

    run(go())


def test_chaos_menu_other_target_and_cancel(tmp_path):
    s = session(tmp_path)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("c", "enter", "n")  # first fault, then cancel at the confirmation
            await settle(pilot)
            assert s.engine.fleet.faults == []
            order = list(FAULT_KINDS)
            await pilot.press("c", *["down"] * order.index("cpu_saturation"), "t")
            assert isinstance(pilot.app.screen, TargetScreen)
            await pilot.press("down", "enter")  # the second target in the list (not the default)
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            (fault,) = s.engine.fleet.faults
            assert fault.kind == "cpu_saturation" and fault.target != "app" and fault.target in s.engine.fleet.services

    run(go())


def test_acknowledge_records_the_person_and_shows_it(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s, "external_outage", run_ms=150_000)  # cannot be fixed here: escalates
    inc = s.engine.incidents[iid]
    assert inc.escalated
    sla_ms = s.policy.severity.levels[inc.severity].ack_within_s * 1000
    s.advance(inc.escalated_at_ms + sla_ms + 60_000 - s.engine.now_ms)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert "late 1:00" in screen_text(pilot.app)  # a minute past the SLA, not acknowledged
            await pilot.press("a")
            await settle(pilot)
            inc = s.engine.incidents[iid]
            assert inc.acknowledged_by == "tester"
            ack = [e for e in inc.events if e.kind == "incident.acknowledged"]
            assert ack and ack[0].actor == "person:tester"
            assert "✓ tester" in screen_text(pilot.app)

    run(go())


def test_escalate_asks_first_then_counts_down_to_the_ack_sla(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    sla_s = s.policy.severity.levels["Sev2"].ack_within_s

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert " auto" in screen_text(pilot.app)  # automation handles it: no countdown yet
            await pilot.press("e")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("n")
            await settle(pilot)
            assert not s.engine.incidents[iid].escalated
            await pilot.press("e", "y")
            await settle(pilot)
            inc = s.engine.incidents[iid]
            assert inc.escalated and inc.escalated_at_ms == s.engine.now_ms
            assert "incident.escalated" in kinds(s, iid)
            assert f"{sla_s // 60}:00" in screen_text(pilot.app)
            s.advance(60_000)
            await settle(pilot)
            assert f"{sla_s // 60 - 1}:00" in screen_text(pilot.app)

    run(go())


def test_manual_mitigation_goes_through_the_engine_with_params(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    names = [a.name for a in MANUAL_ACTIONS]

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("m")
            assert isinstance(pilot.app.screen, MitigateScreen)
            await pilot.press(*["down"] * names.index("scale_replicas"))
            await pilot.pause()
            assert pilot.app.screen.query_one("#target").value == "app"  # the incident's service
            await pilot.press("tab", "tab")
            await pilot.press(*"to=7", "enter")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            assert "scale_replicas on app with to=7" in screen_text(pilot.app)
            await pilot.press("y")
            await settle(pilot)
            applied = [e for e in s.engine.incidents[iid].events if e.kind == "mitigation.applied" and e.actor == "person:tester"]
            assert applied and applied[-1].data["action"] == "scale_replicas"
            assert "replicas" in applied[-1].summary and "-> 7" in applied[-1].summary
            assert "manual scale_replicas" in screen_text(pilot.app)

    run(go())


def test_manual_mitigation_is_refused_when_the_governor_budget_is_spent(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    budget = s.policy.mitigation.governor.budget_actions
    names = [a.name for a in MANUAL_ACTIONS]
    for _ in range(budget):
        s.manual_action("prioritize_requests", "app", incident_id=iid, params={}, reason="spend the budget")

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            before = len(s.engine.incidents[iid].events)
            await pilot.press("m", *["down"] * names.index("restart_service"), "enter", "y")
            await settle(pilot)
            new = s.engine.incidents[iid].events[before:]
            assert [e.kind for e in new] == ["mitigation.refused"]
            assert "remediation budget" in new[0].summary
            assert "REFUSED" in screen_text(pilot.app)

    run(go())


def test_pause_and_speed_on_a_live_engine(tmp_path):
    from console.tui.session import open_live_session
    from engine.datadir import DataDir

    live = open_live_session(DataDir(tmp_path / "live"), speed=1.0, actor="tester")

    async def go():
        async with ConsoleApp(live).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("p")
            await settle(pilot)
            assert live.live.paused
            assert "PAUSED" in screen_text(pilot.app)
            frozen = live.engine.clock.now_ms()
            await pilot.press("space")
            await settle(pilot)
            assert not live.live.paused and live.engine.clock.now_ms() >= frozen
            await pilot.press("+")
            await settle(pilot)
            assert live.live.clock.speed == 2.0 and "×2" in screen_text(pilot.app)
            await pilot.press("+", "+")
            assert live.live.clock.speed == 10.0
            await pilot.press("-")
            await settle(pilot)
            assert live.live.clock.speed == 5.0 and "×5" in screen_text(pilot.app)

    try:
        run(go())
    finally:
        live.stop()


def test_dry_run_toggle_confirms_only_when_leaving_it(tmp_path):
    s = session(tmp_path)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("d")
            await settle(pilot)
            assert s.engine.governor.dry_run
            assert "DRY-RUN" in screen_text(pilot.app)
            await pilot.press("d")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            assert not s.engine.governor.dry_run
            assert "DRY-RUN" not in screen_text(pilot.app).splitlines()[0]
            notices = [n for n in s.engine.notices if n["kind"] == "dry_run"]
            assert [n["on"] for n in notices] == [True, False] and notices[0]["actor"] == "tester"

    run(go())


def test_kill_switch_stops_automation_and_escalates_open_incidents(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("k")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            assert s.engine.governor.kill_switch
            inc = s.engine.incidents[iid]
            assert inc.escalated and "kill switch" in (inc.escalation_reason or "")
            text = screen_text(pilot.app)
            assert "KILL SWITCH" in text and "escalated" in text
            await pilot.press("k", "y")
            await settle(pilot)
            assert not s.engine.governor.kill_switch

    run(go())


def test_timeline_pir_and_note_screens(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("n")
            assert isinstance(pilot.app.screen, PromptScreen)
            await pilot.press(*"saw 5xx on checkout", "enter")
            await settle(pilot)
            notes = [e for e in s.engine.incidents[iid].events if e.kind == "incident.note"]
            assert notes and notes[0].summary == "saw 5xx on checkout" and notes[0].actor == "person:tester"
            await pilot.press("t")
            assert isinstance(pilot.app.screen, TimelineScreen)
            await settle(pilot)
            assert "PHASES" in screen_text(pilot.app)  # the reconstruction comes first
            await pilot.press("3")  # the engine's event log
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "incident.detected" in text and "mitigation.applied" in text and "saw 5xx on checkout" in text
            await pilot.press("escape")
            assert isinstance(pilot.app.screen, MainScreen)
            await pilot.press("P")
            assert isinstance(pilot.app.screen, PirScreen)
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "1. Incident Summary" in text and "PIR drafter" in text and short_id(iid) in text
            await pilot.press("w")
            await settle(pilot)
            written = list((tmp_path / "data" / "pirs").glob("*-draft.md"))
            assert len(written) == 1
            body = written[0].read_text()
            assert iid in body and "status: DRAFT" in body and "## 7. Metrics & Impact" in body

    run(go())


def test_similar_incidents_come_from_the_knowledge_base(tmp_path):
    s = session(tmp_path)
    with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("s")
            assert isinstance(pilot.app.screen, SimilarScreen)
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "root cause" in text and "solution" in text, text
            assert "error" in text.lower()

    run(go())


def test_help_lists_every_key_and_the_palette_runs_actions(tmp_path):
    s = session(tmp_path)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 50)) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            assert isinstance(pilot.app.screen, HelpScreen)
            text = screen_text(pilot.app)
            for b in MainScreen.BINDINGS:
                assert b.description in text, b.description
            await pilot.press("escape")
            assert isinstance(pilot.app.screen, MainScreen)
            await pilot.press("ctrl+p")
            await pilot.press(*"bad_depl")
            await pilot.pause(0.3)  # the palette searches in a worker of its own
            await pilot.press("enter")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            assert [(f.kind, f.target) for f in s.engine.fleet.faults] == [("bad_deploy", "app")]

    run(go())


def test_every_actuator_action_is_offered():
    offered = {a.name for a in MANUAL_ACTIONS}
    actuator = {n.removeprefix("_do_") for n in dir(SimActuator) if n.startswith("_do_")} - {"none"}
    assert offered == actuator


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_hostile_text_is_shown_literally(tmp_path, size):
    """Markup and escape codes from people and services are displayed as typed, never interpreted."""
    import dataclasses

    from engine.policy.bundle import load_policy

    hostile = "[bold]boom[/bold] [link=http://evil.example]x[/link] \x1b[31mred"
    pol = load_policy()
    raw = pol.fleet.model_dump()
    raw["services"][2]["name"] = "[red]svc[/red]"  # upstream: no fault default names it
    for svc in raw["services"]:
        for dep in svc["depends_on"]:
            if dep["service"] == "upstream":
                dep["service"] = "[red]svc[/red]"
    spec = type(pol.fleet).model_validate(raw)
    s = session(tmp_path, policy=dataclasses.replace(pol, fleet=spec))
    iid = with_incident(s)
    s.note(iid, hostile)

    async def go():
        async with ConsoleApp(s).run_test(size=size) as pilot:
            await settle(pilot)
            narrow = size[0] < 120
            if narrow:
                await pilot.press("4")
                await settle(pilot)
            assert "[bold]boom[/bold]" in screen_text(pilot.app)  # the note's receipt in the feed
            if narrow:
                await pilot.press("1")
                await settle(pilot)
            assert "[red]svc[/red]" in screen_text(pilot.app)  # the service in the fleet table
            await pilot.press("t", "3")
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "[bold]boom[/bold]" in text
            assert "[link=http://evil.example]x[/link]" in text
            assert "\\x1b[31mred" in text and "\x1b" not in text
            strips = pilot.app.screen._compositor.render_strips()
            boom = [seg for strip in strips for seg in strip if "boom" in seg.text]
            assert boom and not any(seg.style and (seg.style.bold or seg.style.link) for seg in boom)

    run(go())


def test_pir_facts_fallback_has_every_section(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    s.note(iid, "[bold]not markup[/bold]")
    s.advance(200_000)
    text = facts_markdown(collect_facts(s, iid))
    assert text.startswith("---\nincident_id: " + iid)
    for n, title in enumerate(("Incident Summary", "Timeline of Events", "Root Cause Analysis (5 Whys)", "What Went Well", "What Went Wrong", "Action Items", "Metrics & Impact", "Follow-Up Items", "Lessons Learned", "Sign-Off"), 1):
        assert f"## {n}. {title}" in text
    assert "incident.detected" in text and "[bold]not markup[/bold]" in text and "MTTR:" in text


def test_stale_signals_show_as_gaps_and_never_crash_the_console(tmp_path):
    """A real source that stops answering turns signals into NaN: the screens must show them as
    unknown (gaps), keep working, and the similar-incidents query must leave them out."""
    from console.tui.text import SPARK, sparkline

    line = sparkline([1.0, float("nan"), 3.0], 3)
    assert line[1] == "·" and line[2] == SPARK[-1] and line[0] not in ("·", SPARK[-1])
    assert sparkline([float("nan")] * 4, 4) == "····"
    s = session(tmp_path)
    iid = with_incident(s)
    nan = float("nan")
    app_svc = s.engine.fleet.services["app"]
    app_svc.p99 = app_svc.p50 = nan
    app_svc.err5 = nan
    s.engine.history["app"].extend((s.engine.now_ms + i, nan, nan, nan) for i in range(30))

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert "·" in screen_text(pilot.app)
            await pilot.press("s")  # similar incidents reads the incident's signals
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(pilot.app.screen, SimilarScreen)
            await pilot.press("escape")
            await settle(pilot)
            assert pilot.app.main.selected_id == iid

    run(go())


def test_the_collector_is_back_on_after_the_first_frame(tmp_path):
    """`ggen console` starts with the garbage collector off; the first frame turns it back on
    (after collecting and freezing what start-up made)."""
    import gc

    s = session(tmp_path)

    async def go():
        gc.disable()
        try:
            async with ConsoleApp(s, freeze_startup_objects=True).run_test(size=(80, 24)) as pilot:
                assert not gc.isenabled() or pilot.app.main.frames > 0
                await settle(pilot)
                assert pilot.app.main.frames > 0
                assert gc.isenabled()
                assert gc.get_freeze_count() > 0
        finally:
            gc.enable()
            gc.unfreeze()

    run(go())


def test_chaos_menu_offers_each_fault_only_where_it_acts(tmp_path):
    """The console's 'other target' list follows the rule `ggen chaos inject` enforces."""
    from engine.view import fault_targets

    s = session(tmp_path)
    targets = fault_targets(s.engine)
    kinds = {n: svc.kind for n, svc in s.engine.fleet.services.items()}
    assert targets["slow_queries"] and all(kinds[t] == "database" for t in targets["slow_queries"])
    assert targets["external_outage"] and all(kinds[t] == "external" for t in targets["external_outage"])
    assert "app" in targets["bad_deploy"] and set(targets["traffic_surge"]) == set(s.engine.fleet.queues)
