"""Snapshots of the trainee-mode screens (seeded engine, virtual clock, no clock thread): the main
screen with the training banner after the page, and the score report. Update with
``pytest tests/test_training_snapshots.py --snapshot-update`` after checking the change by eye."""
from __future__ import annotations

from console_support import settle

from console.tui.actions import MANUAL_ACTIONS
from console.tui.training import training_app
from engine.drill.scenario import load_scenario


def _app():
    return training_app(load_scenario("errors-bad-deploy"), trainee="ann", start_clock=False)


async def _paged(pilot):
    await pilot.pause()
    await pilot.press("enter")
    pilot.app.session.advance(70_000)
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)
    await pilot.press("v", "down", "enter")
    await settle(pilot)
    pilot.app.clear_notifications()  # toasts last 3 s of wall time: not in a picture
    await pilot.pause()


def test_trainee_screen_after_the_page(snap_compare):
    assert snap_compare(_app(), terminal_size=(130, 40), run_before=_paged)


def test_score_report(snap_compare):
    async def before(pilot):
        await _paged(pilot)
        order = [a.name for a in MANUAL_ACTIONS]
        await pilot.press("m", *["down"] * order.index("rollback_deploy"), "enter")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        pilot.app.session.advance(400_000)
        await settle(pilot)
        await pilot.press("f", "y")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(110, 45), run_before=before)
