"""Shared pieces of the console tests: sessions on a virtual clock, waiting for the screen to catch
up with the engine (no sleeps), and reading what the screen shows as plain text."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.datadir import DataDir

from console.tui.app import ConsoleApp
from console.tui.session import VirtualSession, virtual_session

WARMUP_MS = 120_000


def session(tmp_path: Path, *, receipts: bool = True, **kwargs: Any) -> VirtualSession:
    """A seeded session two minutes into its run, writing receipts under ``tmp_path``."""
    kwargs.setdefault("warmup_ms", WARMUP_MS)
    kwargs.setdefault("actor", "tester")
    return virtual_session(data_dir=DataDir(tmp_path / "data") if receipts else None, **kwargs)


def with_incident(s: VirtualSession, fault: str = "bad_deploy", target: str | None = None, run_ms: int = 75_000) -> str:
    """Inject ``fault`` and run until its incident is detected; returns the incident id."""
    s.engine.inject(fault, target, actor="test")
    s.advance(run_ms)
    opened = sorted(s.engine.incidents.values(), key=lambda i: i.detected_at_ms)
    assert opened, f"{fault} opened no incident in {run_ms} ms"
    return opened[-1].id


async def settle(pilot: Any) -> None:
    """Let workers finish and their messages land, then read the engine once more and show it."""
    app = pilot.app
    main = app.main
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()
    if app.screen is not main:
        return  # the main screen reads the engine again when it is back on top
    before = main.frames
    main.request_refresh()
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if main.frames > before and not main._reading:
            break
    else:
        raise AssertionError("the main screen never showed a fresh view")
    await app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app: ConsoleApp) -> str:
    """Every line the terminal shows right now, as plain text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)
