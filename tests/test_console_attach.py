"""Consoles attached to one engine over its control socket (``ggen console --attach``), and
``ggen console --serve`` giving every browser a console on that one engine."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from console_support import screen_text, settle
from tmux_support import keys, until

from console.tui.actions import MANUAL_ACTIONS
from console.tui.app import ConsoleApp
from console.tui.attached import AttachedSession, EngineGone
from console.tui.screens.dialogs import ConfirmScreen, CrashScreen
from console.tui.session import open_live_session
from engine.control.client import ControlClient, ControlError
from engine.datadir import DataDir
from engine.fleet.faults import FAULT_KINDS
from engine.live import wait_until
from engine.view import view_from_dict

ROOT = Path(__file__).resolve().parents[1]
GGEN = [sys.executable, "-m", "console.cli.main"]


def live_with_incident(tmp_path: Path) -> tuple[object, str]:
    """An in-process engine (control socket on) with one open incident, paused so that both
    consoles look at the same still picture."""
    s = open_live_session(DataDir(tmp_path / "data"), speed=120.0, actor="owner")
    s.inject("bad_deploy", "app")
    assert wait_until(lambda: any(i.open for i in s.engine.incidents.values()), 20)
    s.pause()
    assert ControlClient(s.data_dir.control_socket_path).alive()
    (iid,) = [i.id for i in s.engine.incidents.values() if i.open]
    return s, iid


def test_two_attached_consoles_see_one_engine_and_each_others_actions(tmp_path):
    s, iid = live_with_incident(tmp_path)
    ann = AttachedSession(s.data_dir, actor="ann")
    bob = AttachedSession(s.data_dir, actor="bob")

    async def go():
        async with ConsoleApp(ann).run_test(size=(120, 40)) as pa, ConsoleApp(bob).run_test(size=(120, 40)) as pb:
            await settle(pa)
            await settle(pb)
            for pilot in (pa, pb):
                text = screen_text(pilot.app)
                assert "ATTACHED" in text and "error rate app" in text and "PAUSED" in text
                assert pilot.app.main.selected_id == iid
            await pa.press("a")  # Ann acknowledges in her console ...
            await settle(pa)
            assert s.engine.incidents[iid].acknowledged_by == "ann"
            await settle(pb)
            assert "✓ ann" in screen_text(pb.app)  # ... and Bob's console shows it
            await pb.press("k")  # Bob pulls the kill switch (after confirming) ...
            assert isinstance(pb.app.screen, ConfirmScreen)
            await pb.press("y")
            await settle(pb)
            assert s.engine.governor.kill_switch
            await settle(pa)
            assert "KILL SWITCH" in screen_text(pa.app)  # ... and Ann sees automation stopped
            await pb.press("n")
            await pb.press(*"rolled back by hand", "enter")
            await settle(pb)
            notes = [e for e in s.engine.incidents[iid].events if e.kind == "incident.note"]
            assert [(n.actor, n.summary) for n in notes] == [("person:bob", "rolled back by hand")]
            await pa.press("t")  # Ann's timeline screen, event log tab, has Bob's note
            await settle(pa)
            await pa.press("3")
            await settle(pa)
            assert "rolled back by hand" in screen_text(pa.app) and "person:bob" in screen_text(pa.app)

    try:
        asyncio.run(go())
    finally:
        s.stop()
    assert not s.live.running


def test_an_attached_console_acts_through_the_engine_on_every_key(tmp_path):
    """Speed and pause, a manual mitigation (the governor decides), a fault and dry-run, all
    from an attached console, land in the engine with the attached person as the actor."""
    s, iid = live_with_incident(tmp_path)
    a = AttachedSession(s.data_dir, actor="cid")

    async def go():
        async with ConsoleApp(a).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            before = len(s.engine.incidents[iid].events)
            names = [x.name for x in MANUAL_ACTIONS]
            await pilot.press("m", *["down"] * names.index("scale_replicas"))
            await pilot.pause()
            assert pilot.app.screen.query_one("#target").value == "app"  # the likely target came from the engine
            await pilot.press("enter", "y")
            await settle(pilot)
            new = s.engine.incidents[iid].events[before:]
            assert new and new[-1].actor == "person:cid" and new[-1].kind in ("mitigation.applied", "mitigation.refused")
            await pilot.press("d")
            await settle(pilot)
            assert s.engine.governor.dry_run and "DRY-RUN" in screen_text(pilot.app)
            await pilot.press("c", "enter", "y")
            await settle(pilot)
            assert [f.kind for f in s.engine.fleet.faults if f.kind != "bad_deploy"] == ["traffic_surge"]  # the menu's first
            assert any(n["kind"] == "fault.injected" and "person:cid" in n["text"] for n in s.engine.notices)
            await pilot.press("-", "-", "-")
            await settle(pilot)
            assert s.live.clock.speed == 10.0 and "×10" in screen_text(pilot.app)
            await pilot.press("p")  # it was paused: resume, then pause again
            await settle(pilot)
            assert not s.live.paused
            await pilot.press("p")
            await settle(pilot)
            assert s.live.paused and "PAUSED" in screen_text(pilot.app)

    try:
        asyncio.run(go())
    finally:
        s.stop()


def test_an_attached_console_says_so_when_the_engine_stops(tmp_path):
    s, iid = live_with_incident(tmp_path)
    a = AttachedSession(s.data_dir, actor="ann")

    async def go():
        async with ConsoleApp(a).run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            s.stop()
            await settle(pilot)
            assert isinstance(pilot.app.screen, CrashScreen)
            assert "The engine stopped" in screen_text(pilot.app)
            assert "no longer answers on its control socket" in pilot.app.screen.text and "keeps trying" in pilot.app.screen.text
            await pilot.press("escape")
            await settle(pilot)
            assert "ENGINE STOPPED" in screen_text(pilot.app) and "error rate app" in screen_text(pilot.app)  # the last picture stays
            with pytest.raises(EngineGone):
                a.acknowledge(iid)

    asyncio.run(go())


def test_console_operations_check_arguments_and_give_each_console_its_notices(tmp_path):
    s, iid = live_with_incident(tmp_path)
    c = ControlClient(s.data_dir.control_socket_path)
    try:
        for op, args, code, arg in (
            ("incident.acknowledge", {"incident_id": "deadbeef00", "actor": "x"}, "not_found", "incident_id"),
            ("console.view", {"spark_samples": -1}, "bad_argument", "spark_samples"),
            ("warroom.change", {"incident_id": iid, "change": "write", "text": "x", "actor": "a"}, "refused", None),
            ("warroom.change", {"incident_id": iid, "change": "shout", "actor": "a"}, "bad_argument", "change"),
            ("console.manual_action", {"action": "scale_replicas", "target": "app", "incident_id": "nope", "actor": "a"}, "not_found", "incident_id"),
        ):
            with pytest.raises(ControlError) as err:
                c.call(op, args)
            assert (err.value.code, err.value.arg) == (code, arg), (op, err.value.code, err.value.arg, err.value.message)
        got = c.call("console.view", {"selected": iid})
        view = view_from_dict(got["view"])
        assert view.mode == "attached" and view.detail is not None and view.detail.row.id == iid and view.paused
        first, cursor = got["view"]["notices"], got["cursor"]
        assert any(n["kind"] == "fault.injected" for n in first)  # the backlog, on a first call
        assert c.call("console.view", {"notices_after": cursor})["view"]["notices"] == []  # nothing new since
        c.call("engine.kill_switch", {"on": True, "actor": "ann"})
        again = c.call("console.view", {"notices_after": cursor})["view"]["notices"]
        assert [n["kind"] for n in again if n["kind"] == "kill_switch"] == ["kill_switch"]
        other = c.call("console.view", {})["view"]["notices"]  # another console starts from the backlog
        assert any(n["kind"] == "kill_switch" for n in other) and any(n["kind"] == "fault.injected" for n in other)
        assert c.call("incident.acknowledge", {"incident_id": iid, "actor": "ann"})["acknowledged_by"] == "ann"
        assert c.call("incident.acknowledge", {"incident_id": iid, "actor": "bob"})["acknowledged_by"] == "ann"  # first one wins
    finally:
        s.stop()


def run_ggen(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GGEN, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_attach_without_an_engine_exits_3_and_refuses_engine_options(tmp_path):
    out = run_ggen("--data-dir", str(tmp_path / "data"), "console", "--attach")
    assert out.returncode == 3, out.stderr
    assert out.stderr.strip().splitlines() == [f"ggen: no engine is running on {tmp_path / 'data'} (start one with ggen console or ggen watch)"]
    out = run_ggen("--data-dir", str(tmp_path / "data"), "console", "--attach", "--speed", "10")
    assert out.returncode == 2 and "--speed configure a new one" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run_ggen("--data-dir", str(tmp_path / "data"), "console", "--attach", "--serve")
    assert out.returncode == 2 and "either --attach or --serve" in out.stderr


# ------------------------------------------------------------------------------------ --serve
def _procs_on(root: Path) -> list[int]:
    """Processes (engines, served consoles) whose command line names this data directory."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(root).encode() in cmd and b"console.cli.main" in cmd and int(entry.name) != os.getpid():
            out.append(int(entry.name))
    return out


def _reap(root: Path) -> list[int]:
    """Kill what a failed test left running on ``root`` (by pid); returns those pids."""
    left = _procs_on(root)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


async def _browser(port: int, keys: list[tuple[str, str]], timeout: float = 40.0) -> str:
    """One browser's websocket session: what its console drew, after pressing ``keys`` (each
    sent once the text before it appeared)."""
    import aiohttp

    seen = b""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40") as ws:
            await ws.send_str(json.dumps(["resize", {"width": 120, "height": 40}]))
            pending = list(keys)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    msg = await ws.receive(timeout=1.0)
                except asyncio.TimeoutError:
                    msg = None
                if msg is not None and msg.type == aiohttp.WSMsgType.BINARY:
                    seen += msg.data
                elif msg is not None and msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                text = seen.decode("utf-8", "replace")
                while pending and pending[0][0] in text:
                    await ws.send_str(json.dumps(["stdin", pending.pop(0)[1]]))
                    seen = b""  # look for the next needle in what is drawn from now on
                    text = ""
                if not pending:
                    break
            assert not pending, f"never saw {pending[0][0]!r}; last output: {seen[-2000:]!r}"
            await ws.send_str(json.dumps(["stdin", "q"]))
    return seen.decode("utf-8", "replace")


def test_serve_gives_every_browser_a_console_on_one_background_engine(tmp_path):
    port = _free_port()
    dd = DataDir(tmp_path / "data")
    proc = subprocess.Popen([*GGEN, "--data-dir", str(dd.root), "console", "--serve", "--port", str(port), "--speed", "30"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not body:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/")
                assert status == 200
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        assert "ggen console" in body and "/ws" in body
        for _ in range(2):  # a second browser's page load answers as well
            status, again = _get(f"http://127.0.0.1:{port}/")
            assert status == 200 and "ggen console" in again
        client = ControlClient(dd.control_socket_path)
        engine_pid = client.call("ping")["pid"]
        assert engine_pid != proc.pid and "ggen watch" in dd.lock_path.read_text()

        async def two_browsers() -> tuple[str, str]:
            # The first browser injects a fault from the chaos menu; the second, on the same
            # engine, sees the incident it opens.
            down = "\x1b[B" * list(FAULT_KINDS).index("bad_deploy")
            first = _browser(port, [("ATTACHED", "c"), ("Inject a fault", down + "\r"), ("Inject bad_deploy on app", "y"), ("injected on", "")])
            second = _browser(port, [("ATTACHED", ""), ("error rate app", "")], timeout=60)
            return await asyncio.gather(first, second)

        asyncio.run(two_browsers())
        assert wait_until(lambda: bool(client.call("incidents.list")), 30), "the first browser's fault opened no incident"
        assert client.call("ping")["pid"] == engine_pid  # still the one engine
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        # The background engine stopped with the server, and no served console outlived it.
        assert wait_until(lambda: not _procs_on(dd.root), 15), f"left running: {_procs_on(dd.root)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _reap(dd.root)
    err = proc.stderr.read()
    assert f"http://127.0.0.1:{port}" in err and "every browser attached to one engine" in err
    assert not dd.control_socket_path.exists() and not ControlClient(dd.control_socket_path).alive()


def test_serve_attaches_browsers_to_an_engine_that_already_runs(tmp_path):
    s = open_live_session(DataDir(tmp_path / "data"), speed=10.0, actor="owner")
    port = _free_port()
    proc = subprocess.Popen([*GGEN, "--data-dir", str(s.data_dir.root), "console", "--serve", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"http://127.0.0.1:{port}/")[0] == 200:
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        asyncio.run(_browser(port, [("ATTACHED", "")]))  # raises unless the console drew ATTACHED
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert s.live.running  # serving never stops an engine it did not start
        assert wait_until(lambda: not _procs_on(s.data_dir.root), 15), f"left running: {_procs_on(s.data_dir.root)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _reap(s.data_dir.root)
        s.stop()
    assert f"attached to the engine already running, pid {os.getpid()}" in proc.stderr.read()


@pytest.mark.system
def test_two_attached_console_processes_in_tmux_share_one_engine(tmp_path):
    assert shutil.which("tmux"), "tmux is required (CI installs it)"
    data = tmp_path / "data"
    ggen_bin = Path(sys.executable).parent / "ggen"
    watch = subprocess.Popen([str(ggen_bin), "--data-dir", str(data), "watch", "--speed", "30", "--no-notices"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    names = [f"ggen-att-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    env = dict(os.environ, TERM="xterm-256color")

    try:
        assert wait_until(lambda: ControlClient(DataDir(data).control_socket_path).alive(), 30)
        for name, who in zip(names, ("ann", "bob")):
            cmd = f"cd {ROOT} && {ggen_bin} --data-dir {data} console --attach --actor {who}; echo CONSOLE-EXIT=$?; sleep 30"
            subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd], check=True, env=env)
        for name in names:
            until(name, "ATTACHED", 20)
        keys(names[0], "c")
        until(names[0], "Inject a fault", 10)
        keys(names[0], *["Down"] * list(FAULT_KINDS).index("bad_deploy"), "Enter")
        until(names[0], "Inject bad_deploy on app", 10)
        keys(names[0], "y")
        until(names[1], "error rate app", 40)  # the incident the fault opens, seen in the other console
        keys(names[1], "a")
        until(names[0], "✓ bob", 20)
        for name in names:
            keys(name, "q")
            until(name, "CONSOLE-EXIT=0", 15)
        assert watch.poll() is None  # quitting attached consoles leaves the engine running
    finally:
        for name in names:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=20)
    assert watch.returncode == 0, watch.stderr.read()
