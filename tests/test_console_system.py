"""The console as a process: the real command in tmux, in a browser server, against a locked data
directory; and a live engine that quits cleanly or crashes under it."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from functools import partial
from pathlib import Path

import pytest
import tmux_support as tmux
from console_support import screen_text, settle

from console.tui.app import ConsoleApp
from console.tui.screens.dialogs import CrashScreen
from console.tui.screens.main import MainScreen
from console.tui.session import ScriptedEngine, open_live_session
from engine.datadir import DataDir
from engine.events import RECEIPT_KINDS
from engine.fleet.faults import FAULT_KINDS
from engine.live import LiveEngine, wait_until

ROOT = Path(__file__).resolve().parents[1]
GGEN = [sys.executable, "-m", "console.cli.main"]


def ggen(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GGEN, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_held_data_dir_exits_3_with_one_line(tmp_path):
    dd = DataDir(tmp_path / "data")
    holder = LiveEngine(dd, description="test holder", receipts=False)
    holder.start()
    try:
        out = ggen("--data-dir", str(dd.root), "console")
    finally:
        holder.stop()
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ggen: another engine already runs on") and "test holder" in lines[0]
    assert "Traceback" not in out.stderr


def test_usage_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    cases = [
        (("console", "--scenario", "region-outage", "--replay", str(bad)), "either --scenario or --replay"),
        (("console", "--replay", str(bad)), "not JSON"),
        (("console", "--replay", str(tmp_path / "missing.json")), "no such file"),
        (("console", "--scenario", "no-such-scenario"), "unknown scenario"),
    ]
    for args, needle in cases:
        out = ggen("--data-dir", str(tmp_path / "data"), *args)
        assert out.returncode == 2, (args, out.stderr)
        assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_quit_stops_the_engine_and_loses_no_event(tmp_path):
    dd = DataDir(tmp_path / "data")
    s = open_live_session(dd, speed=120.0, actor="tester")
    s.inject("bad_deploy", "app")
    assert wait_until(lambda: any(len(i.events) >= 3 for i in s.engine.incidents.values()), 20)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert "error rate app" in screen_text(pilot.app)
            await pilot.press("q")
            await pilot.pause()
            assert not pilot.app.is_running

    asyncio.run(go())
    assert s.stopped and not s.live.running
    events = [(e.incident_id, e.kind) for i in s.engine.incidents.values() for e in i.events if e.kind in RECEIPT_KINDS]
    db = sqlite3.connect(dd.ledger_path)
    stored = [tuple(r) for r in db.execute("SELECT incident_id, kind FROM receipts WHERE incident_id IS NOT NULL ORDER BY seq")]
    db.close()
    assert sorted(stored) == sorted(events) and events
    outbox = dd.outbox_path.read_text().splitlines()
    assert len(outbox) == len(s.engine.outbox.items) > 0
    again = open_live_session(dd, speed=1.0)  # the lock was released
    again.stop()


def test_ctrl_c_quits(tmp_path):
    s = open_live_session(DataDir(tmp_path / "data"), speed=10.0)

    async def go():
        async with ConsoleApp(s).run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("ctrl+c")
            await pilot.pause()
            assert not pilot.app.is_running

    asyncio.run(go())
    assert s.stopped and not s.live.running


class CrashingEngine(ScriptedEngine):
    """An engine whose fourth tick raises, with hostile text in the message."""

    def step(self) -> None:
        if self.ticks == 3:
            raise RuntimeError("[bold]fleet model diverged[/bold] \x1b[31m")
        super().step()


def test_an_engine_crash_is_shown_in_the_console_not_as_a_traceback(tmp_path):
    s = open_live_session(DataDir(tmp_path / "data"), speed=50.0, engine_class=CrashingEngine)
    assert wait_until(lambda: s.crash_text is not None, 10)

    async def go():
        async with ConsoleApp(s).run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert isinstance(pilot.app.screen, CrashScreen)
            text = screen_text(pilot.app)
            assert "The engine stopped" in text
            assert "RuntimeError: [bold]fleet model diverged[/bold] \\x1b[31m" in text
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(pilot.app.screen, MainScreen)
            assert "ENGINE STOPPED" in screen_text(pilot.app)
            await pilot.press("q")
            await pilot.pause()

    asyncio.run(go())
    assert s.stopped


def test_replay_runs_in_a_temporary_data_dir(tmp_path):
    from console.tui.recording import Recording

    rec = tmp_path / "run.json"
    rec.write_text(Recording(seed=2, actions=[{"at_ms": 3000, "kind": "inject", "args": {"fault": "bad_deploy", "target": "app", "actor": "person:ann"}}]).model_dump_json())
    real = DataDir(tmp_path / "data")
    s = open_live_session(real, speed=300.0, replay=rec)
    temp = s.data_dir.root
    try:
        assert temp != real.root and not real.root.exists()
        assert s.mode == "replay" and s.title == f"replay of {rec}"
        assert wait_until(lambda: [i.type for i in s.engine.incidents.values()] == ["error_rate_spike"], 20)
        assert [f.kind for f in s.engine.fleet.faults] == ["bad_deploy"]
    finally:
        s.stop()
    assert not temp.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_http_on_localhost_and_stops(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([*GGEN, "--data-dir", str(tmp_path / "data"), "console", "--serve", "--port", str(port), "--speed", "10"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                    body = resp.read().decode()
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert "ggen console" in body, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert f"ws://127.0.0.1:{port}/ws" in body or "/ws" in body
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None
    err = proc.stderr.read()
    assert f"http://127.0.0.1:{port}" in err


@pytest.mark.system
def test_console_in_tmux_injects_a_fault_with_keys_and_shows_the_incident(tmp_path):
    assert shutil.which("tmux"), "tmux is required (CI installs it)"
    name = f"ggen-test-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    ggen_bin = Path(sys.executable).parent / "ggen"
    cmd = f"cd {ROOT} && {ggen_bin} --data-dir {data} console --speed 60; echo CONSOLE-EXIT=$?; sleep 30"
    env = dict(os.environ, TERM="xterm-256color")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd], check=True, env=env)

    pane, keys, until = (partial(f, name) for f in (tmux.pane, tmux.keys, tmux.until))

    try:
        until("LIVE", 20)
        until("external-api", 10)
        keys("c")
        until("Inject a fault", 10)
        keys(*["Down"] * list(FAULT_KINDS).index("bad_deploy"), "Enter")
        until("Inject bad_deploy on app", 10)
        keys("y")
        screen = until("error rate app", 30)
        assert "Sev2" in screen
        keys("q")
        until("CONSOLE-EXIT=0", 15)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    db = sqlite3.connect(data / "ledger.sqlite")
    kinds = [r[0] for r in db.execute("SELECT kind FROM receipts ORDER BY seq")]
    db.close()
    assert "incident.detected" in kinds


def test_notification_deliveries_show_in_the_notices_feed(tmp_path):
    dd = DataDir(tmp_path / "data")
    dd.ensure()
    dd.config_path.write_text('[delivery]\n[[delivery.channels]]\ntype = "console"\nname = "screen"\n')
    s = open_live_session(dd, speed=120.0, actor="tester")
    try:
        s.inject("bad_deploy", "app")
        assert wait_until(lambda: any(n.get("kind") == "delivery.delivered" for n in list(s._notices)), 20)

        async def go():
            async with ConsoleApp(s).run_test(size=(160, 50)) as pilot:
                await settle(pilot)
                assert "SENT" in screen_text(pilot.app) and "screen (console)" in screen_text(pilot.app)

        asyncio.run(go())
    finally:
        s.stop()


def test_a_scenario_plays_its_faults_live(tmp_path):
    s = open_live_session(DataDir(tmp_path / "data"), speed=1000.0, scenario="region-outage")
    try:
        assert s.mode == "scenario" and s.script_progress() == (0, len(s.scenario.faults))
        assert wait_until(lambda: any(i.type == "region_failover" for i in s.engine.incidents.values()), 20)
        assert s.script_progress() == (len(s.scenario.faults),) * 2
        fault = s.engine.fleet.faults[0]
        assert fault.kind == "region_outage" and fault.start_ms - s.engine.started_ms == s.scenario.scenario.warmup_s * 1000 + int(s.scenario.faults[0].at_s * 1000)
        s.pause()  # a busy engine at 1000x would keep the test's idle detection waiting

        async def go():
            async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
                await settle(pilot)
                text = screen_text(pilot.app)
                assert "SCENARIO" in text and "region failover" in text and "PAUSED" in text

        asyncio.run(go())
    finally:
        s.stop()
