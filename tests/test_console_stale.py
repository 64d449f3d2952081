"""A console over a real source (issue 10): the status bar says which source feeds the engine,
and when signals go stale it says so (STALE: n signals); no widget ever shows an unknown value
as a number (no NaN or nan on screen, a ? instead), in this process or attached over JSON."""
from __future__ import annotations

import asyncio
import math
import re

import orjson
import pytest
from console_support import screen_text, settle

from console.tui.app import ConsoleApp
from console.tui.session import VirtualSession
from engine.actuators import ActuatorRouter
from engine.clock import VirtualClock
from engine.view import view_from_json, view_to_json
from engine.core import Engine
from engine.policy.bundle import load_policy
from engine.sources.base import SignalSource
from engine.sources.observed import ObservedFleet

POLICY = load_policy()
HEALTHY = {"rps": 400.0, "p50_ms": 40.0, "p99_ms": 120.0, "p99_9_ms": 200.0, "error_5xx_pct": 0.1, "error_4xx_pct": 0.1, "cpu_pct": 40.0, "memory_pct": 50.0, "up": 1.0, "throttled_rps": 0.0, "revision": 1.0, "config_version": 1.0}
NAN_ON_SCREEN = re.compile(r"\bnan\b", re.IGNORECASE)


class Feed(SignalSource):
    kind = "prometheus"

    def run(self) -> None:  # fed by the test
        pass


def observed_session(tmp_path) -> tuple[VirtualSession, Feed]:
    feed = Feed("http://127.0.0.1:9090", stale_after_ms=3000)
    fleet = ObservedFleet(POLICY.fleet, POLICY.mitigation, [feed])
    eng = Engine(POLICY, clock=VirtualClock(), fleet=fleet, actuator=ActuatorRouter({}, {}))
    fleet.notify = eng.notice
    feed.bind(eng)
    feed.attempted = True
    return VirtualSession(eng, actor="tester"), feed


def run(s: VirtualSession, feed: Feed, seconds: int, app_p99: float = 120.0, feeding: bool = True) -> None:
    for _ in range(seconds):
        if feeding:
            now = s.engine.clock.now_ms()
            for name in s.engine.fleet.services:
                for sig, v in dict(HEALTHY, p99_ms=app_p99 if name == "app" else 120.0).items():
                    feed.store.put("service", name, sig, v, now)
            for name in s.engine.fleet.breakers:
                feed.store.put("circuit", name, "state", 0.0, now)
        s.advance(1000)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_the_console_names_the_source_and_says_when_signals_are_stale(tmp_path, size):
    s, feed = observed_session(tmp_path)
    run(s, feed, 40)
    run(s, feed, 100, app_p99=1600.0)  # a latency incident on observed values
    assert any(i.open for i in s.engine.incidents.values())

    async def go():
        async with ConsoleApp(s).run_test(size=size) as pilot:
            await settle(pilot)
            status = screen_text(pilot.app).splitlines()[0]
            assert "via prometheus" in status and "STALE" not in status
            run(s, feed, 30, feeding=False)  # the source stops answering
            stale = sum(len(v) for v in s.engine.fleet.stale.values())
            assert stale > 0
            await settle(pilot)
            status = screen_text(pilot.app).splitlines()[0]
            assert f"STALE: {stale} signals" in status or (size[0] < 100 and "STALE:" in status)
            panels = ["1", "2", "3", "4", "5"] if size[0] < 120 else [None, "down"]
            for key in panels:
                if key:
                    await pilot.press(key)
                    await settle(pilot)
                text = screen_text(pilot.app)
                assert not NAN_ON_SCREEN.search(text), f"a NaN on screen (panel {key}):\n{text}"
            if size[0] >= 120:
                text = screen_text(pilot.app)
                assert "?" in text  # the fleet's unknown values
                assert re.search(r"\? app +\? ", text), "a stale service is drawn as unknown, not as a healthy ●"
            await pilot.press("t", "3")
            await settle(pilot)
            assert not NAN_ON_SCREEN.search(screen_text(pilot.app))

    asyncio.run(go())


def test_an_unknown_value_stays_unknown_over_the_control_socket(tmp_path):
    s, feed = observed_session(tmp_path)
    run(s, feed, 40)
    run(s, feed, 100, app_p99=1600.0)
    run(s, feed, 30, feeding=False)
    iid = next(i.id for i in s.engine.incidents.values() if i.open)
    view = s.read_view(iid)
    app = next(r for r in view.services if r.name == "app")
    assert math.isnan(app.p99_ms) and app.stale and app.level in ("alert", "stale")
    assert any(math.isnan(c.current) for c in view.detail.criteria)
    wire = view_to_json(view)
    parsed = orjson.loads(wire)  # strict JSON: an unknown value travels as null
    assert next(r for r in parsed["services"] if r["name"] == "app")["p99_ms"] is None
    back = view_from_json(wire)
    app2 = next(r for r in back.services if r.name == "app")
    assert math.isnan(app2.p99_ms) and app2.stale and math.isnan(app2.p99_hist[-1])
    assert back.source == "prometheus" and back.stale_signals == view.stale_signals > 0
    assert [math.isnan(c.current) for c in back.detail.criteria] == [math.isnan(c.current) for c in view.detail.criteria]


def test_the_speed_of_an_engine_on_a_real_source_cannot_change(tmp_path):
    import json

    from console.tui.session import open_live_session
    from engine.control.client import ControlClient, ControlError
    from engine.datadir import DataDir
    from engine.live import wait_until
    from engine.sources import prepare_source

    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"service": s, "signals": {"p99_ms": 90.0, "rps": 10.0}}) + "\n" for s in ("api", "app")))
    dd = DataDir(tmp_path / "data")
    setup = prepare_source(dd, source="file", path=str(samples))
    session = open_live_session(dd, policy=setup.policy, **setup.console_kwargs())
    try:
        setup.start_sources(session.live)
        with pytest.raises(ValueError, match="real system"):
            session.set_speed(10.0)
        client = ControlClient(dd.control_socket_path)
        assert wait_until(client.alive, 10)
        with pytest.raises(ControlError) as err:
            client.call("engine.clock", {"speed": 10.0, "actor": "ann"})
        assert err.value.code == "refused" and err.value.arg == "speed"
        assert session.live.clock.speed == 1.0
        assert client.call("console.view", {})["view"]["source"] == "file"
    finally:
        session.stop()
