"""The console's own kill switch, dry-run and fault injection leave the same signed
``engine.operator_action`` receipts as the control socket's operations do."""
from __future__ import annotations

import asyncio

from console_support import session, settle
from control_support import ledger_receipts

from console.tui.app import ConsoleApp
from console.tui.screens.chaos import ChaosScreen
from console.tui.screens.dialogs import ConfirmScreen
from engine.control.operations import Operations
from engine.control.records import OperatorLog
from engine.fleet.faults import FAULT_KINDS


def operator_receipts(s) -> list[dict]:
    """The session's operator receipts, read from its ledger file (the session may be stopped)."""
    return [r for r in ledger_receipts(s.data_dir.root) if r["kind"] == "engine.operator_action"]


def test_kill_switch_dry_run_and_chaos_from_keys_write_operator_receipts(tmp_path):
    s = session(tmp_path)

    async def go():
        async with ConsoleApp(s).run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("k")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            await pilot.press("k", "y")
            await settle(pilot)
            await pilot.press("d")
            await settle(pilot)
            await pilot.press("d", "y")
            await settle(pilot)
            await pilot.press("c")
            assert isinstance(pilot.app.screen, ChaosScreen)
            await pilot.press(*["down"] * list(FAULT_KINDS).index("bad_deploy"), "enter", "y")
            await settle(pilot)

    asyncio.run(go())
    got = [(r["evidence"]["operation"], r["evidence"]["status"], r["evidence"]["after"], r["actor"]) for r in operator_receipts(s)]
    assert got[:4] == [
        ("engine.kill_switch", "applied", {"kill_switch": True}, "person:tester"),
        ("engine.kill_switch", "applied", {"kill_switch": False}, "person:tester"),
        ("engine.dry_run", "applied", {"dry_run": True}, "person:tester"),
        ("engine.dry_run", "applied", {"dry_run": False}, "person:tester"),
    ]
    assert len(got) == 5 and got[4][0] == "chaos.inject" and got[4][2]["kind"] == "bad_deploy" and got[4][2]["target"] == "app"


def test_console_receipt_matches_the_control_socket_one(tmp_path):
    """Same operation through the console session and through the socket's Operations: the same
    receipt evidence (one receipt path, not two)."""
    a = session(tmp_path / "a")
    a.set_dry_run(True)
    b = session(tmp_path / "b")
    Operations(b.engine, operator_log=OperatorLog(b.engine, b.sink.append_receipt)).handle("engine.dry_run", {"on": True, "actor": "tester"})
    ra, rb = operator_receipts(a), operator_receipts(b)
    assert len(ra) == len(rb) == 1
    for key in ("kind", "actor", "summary", "evidence"):
        assert ra[0][key] == rb[0][key]


def test_refused_injection_is_an_error_not_a_receipt(tmp_path):
    s = session(tmp_path)
    try:
        s.inject("bad_deploy", "no-such-service")
    except ValueError as exc:
        assert "no-such-service" in str(exc) or "unknown" in str(exc)
    else:
        raise AssertionError("an unknown target was accepted")
    assert operator_receipts(s) == []
