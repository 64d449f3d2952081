"""Phases are named by the event that starts them: an acknowledgement starts no phase (it was
listed as ESCALATED before the escalation happened); it shows under the phase it happened in,
in time order, in every rendering and in the receipts-only timeline."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from analyzer.timeline import reconstruct_timeline, receipts_timeline
from engine.events import ACKNOWLEDGED, DETECTED, ESCALATED
from tests.timeline_support import drilled


class WithOperatorReceipts:
    """A ledger that adds an acknowledgement and, later, an escalation to an incident."""

    def __init__(self, real: Any, ack_ms: int, escalated_ms: int) -> None:
        self.real, self.path = real, real.path
        self.ack_ms, self.escalated_ms = ack_ms, escalated_ms

    def find_incident(self, text: str) -> str:
        return self.real.find_incident(text)

    def incident_receipts(self, incident_id: str) -> list[Any]:
        recs = list(self.real.incident_receipts(incident_id))
        seq = max(r.seq for r in recs)
        extra = [
            (ACKNOWLEDGED, self.ack_ms, "acknowledged by root", "person:root"),
            (ESCALATED, self.escalated_ms, "escalated to the secondary on call", "engine"),
        ]
        for i, (kind, at, summary, actor) in enumerate(extra, start=1):
            payload = {"summary": summary, "actor": actor, "incident_type": "error_rate_spike", "service": "app", "evidence": {}}
            recs.append(SimpleNamespace(seq=seq + i, receipt_id=f"urn:uuid:00000000-0000-4000-8000-00000000000{i}", incident_id=incident_id, kind=kind, observed_at_ms=at, payload=lambda p=payload: p))
        return sorted(recs, key=lambda r: r.observed_at_ms)


@pytest.fixture(scope="module")
def ledger():
    case = drilled("errors-bad-deploy")
    real = case.ledger()
    det = next(r for r in real.incident_receipts(case.incident_id) if r.kind == DETECTED)
    # acknowledged 20 s after the alert (after the rollback started), escalated 3 minutes later
    yield case, WithOperatorReceipts(real, det.observed_at_ms + 20_000, det.observed_at_ms + 200_000)
    real.close()


def _check(tl: Any, ack_ms: int, escalated_ms: int) -> None:
    escalated = [p for p in tl.phases if p.name == "ESCALATED"]
    assert [p.at_ms for p in escalated] == [escalated_ms], [(p.name, p.what) for p in tl.phases]
    assert all("acknowledged" not in p.what for p in tl.phases)
    homes = [p for p in tl.phases if any(e.text == "acknowledged by root" for e in p.during)]
    assert len(homes) == 1
    home = homes[0]
    after = [p for p in tl.phases if p.at_ms > home.at_ms]
    assert home.at_ms <= ack_ms and (not after or after[0].at_ms > ack_ms), (home.name, [(p.name, p.at_ms) for p in tl.phases], ack_ms)
    assert home.name != "ESCALATED"
    e = home.during[0]
    assert e.at_ms == ack_ms and e.source == "receipt" and e.origin.receipt_id


def test_acknowledgement_sits_in_the_phase_it_happened_in(ledger):
    case, led = ledger
    tl = reconstruct_timeline(case.db, incident_id=case.incident_id, ledger=led)
    _check(tl, led.ack_ms, led.escalated_ms)
    # the table lists it under its phase, between that phase and the next, and never as ESCALATED
    lines = tl.render_table().splitlines()
    at = next(i for i, line in enumerate(lines) if "acknowledged by root" in line)
    phase_lines = [(i, line) for i, line in enumerate(lines) if line.startswith("  1") and "  " in line[14:]]
    before = [line for i, line in phase_lines if i < at][-1]
    assert "ESCALATED" not in before and "ESCALATED acknowledged" not in tl.render_table()
    assert any("ESCALATED" in line and "escalated to the secondary" in line for _, line in phase_lines)
    md = tl.render_markdown()
    assert "| ESCALATED | acknowledged" not in md and "| | acknowledged by root |" in md
    data = tl.to_dict()
    assert sum(len(p["during"]) for p in data["phases"]) == 1


def test_receipts_only_timeline_does_the_same(ledger):
    case, led = ledger
    tl = receipts_timeline(led, case.incident_id)
    _check(tl, led.ack_ms, led.escalated_ms)
