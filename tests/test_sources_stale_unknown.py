"""Stale never looks healthy (issue 10): with every signal of a real source stale, the console's
regions and breakers, ``ggen circuits status`` and ``ggen services health`` say unknown (``?``,
UNKNOWN), never a green ●, CLOSED, or the last/configured number."""
from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner
from console_support import screen_text, settle
from test_console_stale import observed_session, run

from console.tui.app import ConsoleApp
from engine.control.operations import Operations


def stale_session(tmp_path, *, fed_s: int = 40):
    s, feed = observed_session(tmp_path)
    if fed_s:
        run(s, feed, fed_s)
    run(s, feed, 30, feeding=False)  # the source stops answering
    assert s.engine.fleet.stale
    return s, feed


def fed_regions(s, feed):
    """Region signals too (the console test feed only gives services and breakers)."""
    now = s.engine.clock.now_ms()
    for name in s.engine.fleet.regions:
        for sig, v in {"up": 1.0, "healthy": 1.0, "consecutive_failed_checks": 0.0, "traffic_pct": 100.0 if name == s.engine.fleet.serving else 0.0}.items():
            feed.store.put("region", name, sig, v, now)


def test_fresh_regions_and_breakers_read_as_known(tmp_path):
    s, feed = observed_session(tmp_path)
    for _ in range(5):
        fed_regions(s, feed)
        run(s, feed, 1)
    v = s.read_view()
    assert all(b.state == "CLOSED" for b in v.breakers)
    assert all(r.known for r in v.regions) and v.regions[0].weight_pct == 100.0


def test_stale_regions_and_breakers_are_unknown_in_the_view_and_on_screen(tmp_path):
    s, feed = observed_session(tmp_path)
    for _ in range(10):
        fed_regions(s, feed)
        run(s, feed, 1)
    run(s, feed, 30, feeding=False)
    v = s.read_view()
    assert {b.state for b in v.breakers} == {"UNKNOWN"}
    assert not any(r.known for r in v.regions)

    async def go():
        async with ConsoleApp(s).run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            text = screen_text(pilot.app)
            assert "● us-central1" not in text and "? us-central1" in text and "health unknown" in text
            assert "100.0%" not in text and "serving" not in text.split("Breakers")[0].split("Regions")[1]
            assert f"0/{len(v.breakers)} closed, {len(v.breakers)} unknown" in text

    asyncio.run(go())


def test_signals_no_source_provides_are_unknown_too(tmp_path):
    """Regions this feed never gives are not drawn healthy either."""
    s, feed = observed_session(tmp_path)
    run(s, feed, 5)
    v = s.read_view()
    assert not any(r.known for r in v.regions)
    assert all(b.state == "CLOSED" for b in v.breakers)  # the feed gives breaker states


def cli(monkeypatch, s, module, args):
    import console.cli.circuits as circuits_mod

    ops = Operations(s.engine)
    handler = lambda op, a=None, **kw: json.loads(json.dumps(ops.handle(op, a or {}), default=str).replace("NaN", "null"))
    monkeypatch.setattr(circuits_mod, "call", handler)
    mod = __import__(f"console.cli.{module}", fromlist=[module])
    monkeypatch.setattr(mod, "call", handler)
    res = CliRunner().invoke(getattr(mod, module), args)
    assert res.exit_code == 0, res.output
    return res.output


def test_circuits_status_says_unknown_not_closed(tmp_path, monkeypatch):
    s, _ = stale_session(tmp_path)
    out = cli(monkeypatch, s, "circuits", ["status"])
    n = len(s.engine.fleet.breakers)
    assert "CLOSED " not in out and out.count("UNKNOWN") >= n
    assert f"0 of {n} not CLOSED, {n} UNKNOWN" in out
    data = json.loads(cli(monkeypatch, s, "circuits", ["status", "--json"]))
    assert {c["state"] for c in data["circuits"]} == {"UNKNOWN"} and data["unknown"] == n


def test_circuits_status_on_fresh_signals_is_unchanged(tmp_path, monkeypatch):
    s, feed = observed_session(tmp_path)
    run(s, feed, 10)
    out = cli(monkeypatch, s, "circuits", ["status"])
    n = len(s.engine.fleet.breakers)
    assert "UNKNOWN" not in out and out.strip().endswith(f"0 of {n} not CLOSED")


def test_services_health_prints_question_marks_for_stale_counts(tmp_path, monkeypatch):
    s, _ = stale_session(tmp_path)
    out = cli(monkeypatch, s, "services", ["health"])
    lines = out.splitlines()
    header = lines[0].split()
    app = next(l for l in lines if l.startswith("app ")).split()
    for col in ("REPLICAS", "REV", "CONFIG", "RPS", "P99_MS"):
        assert app[header.index(col)] == "?", (col, app)
    data = json.loads(cli(monkeypatch, s, "services", ["health", "--json"]))
    row = next(r for r in data["services"] if r["name"] == "app")
    assert row["replicas"] is None and row["revision"] is None and "replicas" in row["unknown"]


def test_services_health_on_fresh_signals_shows_numbers(tmp_path, monkeypatch):
    s, feed = observed_session(tmp_path)
    run(s, feed, 10)
    out = cli(monkeypatch, s, "services", ["health"])
    lines = out.splitlines()
    header = lines[0].split()
    app = next(l for l in lines if l.startswith("app ")).split()
    assert app[header.index("REV")] == "1" and app[header.index("RPS")] == "400"
    assert app[header.index("REPLICAS")] == "?"  # this feed never gives replicas: unknown, not the configured count
