"""Golden files for the Markdown outputs: the timeline and the PIR draft of the bad-deploy sample
(seed 1), with the random receipt ids and temporary paths normalised."""
from __future__ import annotations

from analyzer.pir import create_pir
from analyzer.timeline import reconstruct_timeline
from engine.clock import parse_iso_ms
from tests.timeline_support import check_golden, drilled, normalize

DRAFTED_AT = parse_iso_ms("2026-01-25T15:00:00Z")


def test_timeline_markdown_matches_the_golden_file():
    case = drilled("errors-bad-deploy")
    led = case.ledger()
    try:
        tl = reconstruct_timeline(case.db, incident_id=case.incident_id, ledger=led, anchors=case.anchors())
    finally:
        led.close()
    check_golden("timeline_errors-bad-deploy.md", normalize(tl.render_markdown(), case))


def test_pir_draft_matches_the_golden_file():
    case = drilled("errors-bad-deploy")
    led = case.ledger()
    try:
        draft, _ = create_pir(case.db, led, case.incident_id, "Bad deploy on app", now_ms=DRAFTED_AT, anchors=case.anchors(), knowledge=False)
    finally:
        led.close()
    check_golden("pir_errors-bad-deploy.md", normalize(draft.text, case))


def test_queue_timeline_matches_the_golden_file():
    case = drilled("queue-traffic-surge")
    led = case.ledger()
    try:
        tl = reconstruct_timeline(case.db, incident_id=case.incident_id, ledger=led, anchors=case.anchors())
    finally:
        led.close()
    check_golden("timeline_queue-traffic-surge.md", normalize(tl.render_markdown(), case))
