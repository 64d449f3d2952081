"""`ggen console --source ...`: the console's live session runs the engine on the chosen source
(the observed fleet, the configured actuators), its sources stop with it, and misuse is refused."""
from __future__ import annotations

import json

from engine.datadir import DataDir
from engine.sources import prepare_source
from engine.sources.observed import ObservedFleet
from sources_support import free_port, ggen, wait_for


def test_console_session_runs_on_a_file_source(tmp_path):
    from console.tui.session import open_live_session

    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"service": s, "signals": {"p99_ms": 90.0, "rps": 10.0}}) + "\n" for s in ("api", "app")))
    dd = DataDir(tmp_path / "data")
    setup = prepare_source(dd, source="file", path=str(samples))
    session = open_live_session(dd, policy=setup.policy, **setup.console_kwargs())
    try:
        setup.start_sources(session.live)
        eng = session.engine
        assert isinstance(eng.fleet, ObservedFleet) and eng.governor.dry_run
        wait_for(lambda: eng.signals("service", "app")["p99_ms"] == 90.0, 10, what="observed p99")
        assert session.live.services[-1] is setup.sources[0]
    finally:
        session.stop()
    assert setup.sources[0]._thread is None  # stopped with the session


def test_console_refuses_simulator_options_with_a_real_source(tmp_path):
    data = str(tmp_path / "data")
    r = ggen("--data-dir", data, "console", "--source", "prometheus", "--scenario", "errors-bad-deploy")
    assert r.returncode == 2 and "the prometheus source runs on the wall clock" in r.stderr
    r = ggen("--data-dir", data, "console", "--source", "alertmanager", "--listen", "nowhere")
    assert r.returncode == 2 and r.stderr.startswith("ggen: --listen 'nowhere'")


def test_a_busy_alertmanager_port_stops_the_session_cleanly(tmp_path):
    import socket

    from console.tui.session import open_live_session

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        dd = DataDir(tmp_path / "data")
        setup = prepare_source(dd, source="alertmanager", listen=f"127.0.0.1:{port}")
        session = open_live_session(dd, policy=setup.policy, **setup.console_kwargs())
        try:
            setup.start_sources(session.live)
            raise AssertionError("the busy port was not noticed")
        except OSError as exc:
            assert f"cannot listen on 127.0.0.1:{port}" in str(exc)
        assert not session.live.running
    # The data directory is free again: another engine can take it.
    setup2 = prepare_source(dd)
    again = open_live_session(dd, policy=setup2.policy)
    again.stop()
