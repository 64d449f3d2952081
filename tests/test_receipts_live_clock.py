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
