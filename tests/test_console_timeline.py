"""The timeline screen: the analyzer's reconstruction of the selected incident (from the
ingested logs when the analyzer database covers its window, from the receipts otherwise), its
Markdown, and the engine's raw event log, all with text from logs shown literally."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from console_support import screen_text, session, settle, with_incident

from console.tui.app import ConsoleApp
from console.tui.screens.incident import TimelineScreen
from console.tui.timeline import reconstruct_for, styled_table
from engine.clock import iso_utc

HOSTILE = "[bold]checkout exploded[/bold] [link=http://evil.example]x[/link] \x1b[31mred"


def write_logs(path: Path, start_ms: int, end_ms: int, bad_from_ms: int) -> None:
    """JSON Lines from ``app``: INFO every 2 s, a deploy just before ``bad_from_ms`` (a change
    line, which the timeline cites as evidence) and from then an ERROR every 2 s; the deploy and
    the errors carry markup and an escape code."""
    lines = [{"timestamp": iso_utc(bad_from_ms - 1000), "level": "INFO", "service": "app", "message": "deploy: revision 1 -> 2 rolling out " + HOSTILE}]
    for t in range(start_ms, end_ms, 2000):
        lines.append({"timestamp": iso_utc(t), "level": "INFO", "service": "app", "message": "GET /v1/cart 200 in 41 ms", "status_code": 200})
        if t >= bad_from_ms:
            lines.append({"timestamp": iso_utc(t + 500), "level": "ERROR", "service": "app", "message": HOSTILE, "status_code": 500})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_receipts_only_reconstruction_is_the_first_tab_and_the_event_log_is_one_key_away(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    s.note(iid, "rolled back by hand")
    s.advance(60_000)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("t")
            assert isinstance(pilot.app.screen, TimelineScreen)
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "from receipts only: no analyzer database (analyzer.duckdb)" in text
            for needle in ("PHASES", "ALERT TRIGGERED", "MITIGATION", "DURATIONS", "time to detect"):
                assert needle in text, needle
            await pilot.press("2")
            await settle(pilot)
            assert "# Timeline: error_rate_spike" in screen_text(pilot.app) and "## Phases" in screen_text(pilot.app)
            await pilot.press("3")
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "incident.note" in text and "rolled back by hand" in text
            await pilot.press("1")
            await settle(pilot)
            assert "PHASES" in screen_text(pilot.app)

    asyncio.run(go())


def test_reconstruction_merges_the_ingested_logs_of_the_window_and_shows_them_literally(tmp_path):
    from analyzer.ingest import ingest_paths

    s = session(tmp_path)
    iid = with_incident(s)
    s.advance(120_000)
    inc = s.engine.incidents[iid]
    logs = tmp_path / "app.jsonl"
    write_logs(logs, inc.first_anomaly_ms - 600_000, s.engine.now_ms, inc.first_anomaly_ms)
    ingest_paths([logs], s.data_dir.analyzer_db_path)

    result = reconstruct_for(s.data_dir, iid)
    assert result.timeline is not None and result.basis.startswith("analyzer database analyzer.duckdb:")
    assert result.timeline.counts["log_records"] > 0 and result.timeline.evidence
    table = styled_table(result.table(116))
    assert "EVIDENCE" in table.plain and "[bold]checkout exploded[/bold]" in table.plain and "\\x1b[31mred" in table.plain
    assert "\x1b" not in table.plain

    async def go():
        async with ConsoleApp(s).run_test(size=(140, 50)) as pilot:
            await settle(pilot)
            await pilot.press("t")
            await settle(pilot)
            screen = pilot.app.screen
            assert isinstance(screen, TimelineScreen) and screen.result is not None
            text = screen_text(pilot.app)
            assert "from analyzer database analyzer.duckdb" in text and "log records" in text
            view = screen.query_one("#recon-text")
            view.scroll_to(y=max(0, table.plain.split("\n").index(next(x for x in table.plain.split("\n") if x.startswith("EVIDENCE"))) - 2), animate=False)
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "EVIDENCE" in text and "[bold]checkout exploded[/bold]" in text and "[link=http://evil.example]x[/link]" in text
            strips = pilot.app.screen._compositor.render_strips()
            hits = [seg for strip in strips for seg in strip if "checkout exploded" in seg.text]
            assert hits and not any(seg.style and (seg.style.bold or seg.style.link) for seg in hits)

    asyncio.run(go())


def test_a_session_without_a_data_directory_says_why_there_is_no_reconstruction(tmp_path):
    s = session(tmp_path, receipts=False)
    with_incident(s)

    async def go():
        async with ConsoleApp(s).run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("t")
            await settle(pilot)
            assert "keeps no receipts" in screen_text(pilot.app)
            await pilot.press("3")
            await settle(pilot)
            assert "incident.detected" in screen_text(pilot.app)

    asyncio.run(go())
