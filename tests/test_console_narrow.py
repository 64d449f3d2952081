"""At 80x24 the status and metrics bars, the footer and the chaos menu's key hints fit: shorter
labels instead of text cut at the edge."""
from __future__ import annotations

import asyncio

from console_support import screen_text, settle
from test_console_snapshots import app_with_incident

from console.tui.screens.chaos import ChaosScreen


def test_header_and_footer_fit_80_columns(tmp_path):
    async def go():
        app = app_with_incident(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            lines = screen_text(pilot.app).splitlines()
            status, metrics, footer = lines[0], lines[1], lines[-1]
            assert "…" not in status and "faults 2" in status and "2 open Sev2" in status, status
            assert "…" not in metrics and metrics.rstrip().endswith("1 escalated") and "MTTR" in metrics, metrics
            assert footer.rstrip().endswith("q Quit") and "k Kill" in footer, footer

    asyncio.run(go())


def test_wide_terminals_keep_the_full_labels(tmp_path):
    async def go():
        app = app_with_incident(tmp_path)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            lines = screen_text(pilot.app).splitlines()
            assert "2026-01-25 14:05:45Z" in lines[0] and "automation on" in lines[0]
            assert "incidents 2: 2 open, 0 resolved, 1 escalated" in lines[1]
            assert "k Kill switch" in lines[-1]

    asyncio.run(go())


def test_chaos_menu_key_hints_show_at_80x24(tmp_path):
    async def go():
        app = app_with_incident(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(pilot.app.screen, ChaosScreen)
            text = screen_text(pilot.app)
            assert "Enter: inject on the target shown · t: other target · Esc: back" in text, text

    asyncio.run(go())


def test_training_status_bar_never_says_automation_is_on_at_80_columns():
    from rich.text import Text

    from console.tui.screens.training import TrainingStatusBar

    bar = TrainingStatusBar(False)
    seen: list[str] = []
    import textual.widgets

    orig = textual.widgets.Static.update
    try:
        textual.widgets.Static.update = lambda self, content="", *, layout=True: seen.append(content.plain)  # type: ignore[method-assign]
        bar.update(Text(" TRAINING  14:05:45Z  ▶ ×1  auto on  2 open Sev2"))
        bar.update(Text(" TRAINING  2026-01-25 14:05:45Z  ▶ ×1  automation on  2 open Sev2"))
    finally:
        textual.widgets.Static.update = orig  # type: ignore[method-assign]
    assert "auto off (training)" in seen[0] and "auto on" not in seen[0]
    assert "automation off (training)" in seen[1]


def test_stale_source_status_still_fits_80_columns(tmp_path):
    from test_console_stale import observed_session, run

    from console.tui.app import ConsoleApp

    s, feed = observed_session(tmp_path)
    run(s, feed, 40)
    run(s, feed, 100, app_p99=1600.0)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            run(s, feed, 30, feeding=False)
            await settle(pilot)
            status = screen_text(pilot.app).splitlines()[0]
            assert "prometheus" in status and "STALE: " in status and "1 open Sev2" in status, status

    asyncio.run(go())
