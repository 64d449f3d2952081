"""The acknowledgement SLA clock the console shows: it starts when a human is paged, which is the
escalation for a live engine, and the trainee's page at detection in training (where a later
escalation by the trainee must not restart it)."""
from __future__ import annotations

import asyncio

from console_support import screen_text, settle, session, with_incident

from console.tui.app import ConsoleApp
from console.tui.screens.dialogs import ConfirmScreen
from console.tui.text import countdown
from console.tui.training import training_app
from engine.drill.scenario import load_scenario


def test_training_counts_the_ack_sla_from_the_trainees_page_even_after_an_escalation():
    app = training_app(load_scenario("errors-bad-deploy"), trainee="ann", start_clock=False)
    s = app.session

    async def go():
        async with app.run_test(size=(180, 44)) as pilot:
            await pilot.pause()
            await pilot.press("enter")  # the briefing
            s.advance(70_000)
            await settle(pilot)
            (inc,) = s.engine.incidents.values()
            paged = inc.notes["paged_at_ms"]
            sla_ms = s.policy.severity.levels[inc.severity].ack_within_s * 1000
            text = screen_text(app)
            assert f"SLA {sla_ms // 60000}m00s from the page" in text and "from escalation" not in text
            assert countdown(paged + sla_ms - s.engine.now_ms) in text
            s.advance(60_000)
            await pilot.press("e")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            assert inc.escalated and inc.escalated_at_ms > paged
            text = screen_text(app)
            left = countdown(paged + sla_ms - s.engine.now_ms)
            assert left in text and countdown(sla_ms) not in text  # not restarted at the escalation
            assert "from the page" in text

    asyncio.run(go())


def test_a_live_engine_counts_the_ack_sla_from_the_escalation(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(180, 44)) as pilot:
            await settle(pilot)
            await pilot.press("e", "y")
            await settle(pilot)
            text = screen_text(pilot.app)
            sla_ms = s.policy.severity.levels[s.engine.incidents[iid].severity].ack_within_s * 1000
            assert f"SLA {sla_ms // 60000}m00s from escalation" in text and countdown(sla_ms) in text

    asyncio.run(go())
