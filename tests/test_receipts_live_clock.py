"""A live engine sped up (ggen console --speed 60) observes on its own fast clock but records
receipts at the real time they are written (receipts.md: recorded_at is when it was written)."""
from __future__ import annotations

import time
from pathlib import Path

from engine.datadir import DataDir
from engine.live import LiveEngine
from engine.receipts import KeyStore, Ledger, verify_ledger


def test_a_sped_up_engine_records_real_times(tmp_path: Path) -> None:
    dd = DataDir(tmp_path / "data").ensure()
    live = LiveEngine(dd, seed=1, speed=600.0).start()
    real_start = int(time.time() * 1000)
    try:
        live.engine.inject("bad_deploy", "app", actor="test")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(i for i in live.engine.incidents.values()):
            time.sleep(0.05)
        time.sleep(0.3)  # a few more receipts (mitigation) at 600x
    finally:
        live.stop()
    real_end = int(time.time() * 1000)
    keys = KeyStore.open(dd.keys_dir)
    ledger = Ledger.open(dd.ledger_path, keys)
    try:
        rows = list(ledger.iter_receipts())
        assert rows, "the incident wrote no receipt"
        for r in rows:
            assert real_start - 1000 <= r.recorded_at_ms <= real_end + 1000, r
        assert max(r.observed_at_ms for r in rows) > real_end + 10_000  # the engine's clock ran ahead
        assert verify_ledger(ledger, keys.anchors()).ok
    finally:
        ledger.close()


def test_incidents_left_open_when_the_engine_stops_are_marked_unwatched(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from console.cli.main import cli
    from engine.receipts import incidents_from_ledger

    dd = DataDir(tmp_path / "data").ensure()
    live = LiveEngine(dd, seed=1, speed=600.0, description="ggen console by tester").start()
    try:
        live.engine.inject("region_outage", actor="test")  # unfixable here for minutes: stays open
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not live.engine.open_incidents():
            time.sleep(0.05)
        assert live.engine.open_incidents()
    finally:
        live.stop()
    assert not live.receipt_errors
    keys = KeyStore.open(dd.keys_dir)
    ledger = Ledger.open(dd.ledger_path, keys)
    try:
        rows = incidents_from_ledger(ledger)
        assert verify_ledger(ledger, keys.anchors()).ok
        last = list(ledger.iter_receipts())[-1].payload()
    finally:
        ledger.close()
    still_open = [r for r in rows if r.status != "resolved"]
    assert still_open and all(r.unwatched_since_ms is not None for r in still_open)
    assert all(r.unwatched_since_ms is None for r in rows if r.status == "resolved")
    assert last["kind"] == "incident.note" and last["evidence"]["unwatched"] is True
    assert "the engine stopped (console by tester)" in last["evidence"]["text"]
    out = CliRunner().invoke(cli, ["--data-dir", str(dd.root), "incidents", "list"]).output
    assert "unwatched" in out
