"""Escalation delivery end to end: the ladder in virtual time, delivered to a real local HTTP server."""
from __future__ import annotations

import time

import pytest

from engine.delivery import DeliveryService, read_records
from engine.delivery.config import DeliveryConfig
from engine.oncall.roster import example_roster_path, load_roster
from ops_support import sev1_engine, start_hook


@pytest.fixture
def hook():
    h = start_hook()
    yield h
    h.close()


def webhook_config(url: str, **chan) -> DeliveryConfig:
    spec = {"type": "webhook", "name": "pager-bridge", "url": url, "timeout_ms": 2000} | chan
    return DeliveryConfig.model_validate({"retry": {"attempts": 3, "backoff_initial_ms": 20, "backoff_multiplier": 2, "jitter_pct": 0}, "channels": [spec]})


def pages_of(eng, inc):
    return [n for n in eng.outbox.items if n.incident_id == inc.id and n.recipient_role != "channel"]


def test_unacknowledged_sev1_walks_the_whole_ladder_to_the_people_on_the_roster(tmp_path, hook):
    roster = load_roster(example_roster_path())
    # 2026-01-25 is a Sunday of rotation week 2; EU/EMEA (Katja Novak / Luca Romano) hands over to
    # APAC (Quan Nguyen / Rina Sato) at 16:00, between the first page and the secondary's page.
    eng, inc = sev1_engine("2026-01-25T15:54:00Z", roster=roster)
    svc = DeliveryService(eng.outbox, webhook_config(hook.url), records=tmp_path / "delivery.jsonl", engine=eng)
    svc.start()
    try:
        # the first pages were written before the service started: hand them over like a live host would
        for n in list(eng.outbox.items):
            svc.submit(n)
        t0 = inc.escalated_at_ms
        wall = time.perf_counter()
        eng.run_for(t0 + 31 * 60_000 - eng.now_ms)
        engine_wall = time.perf_counter() - wall
        assert svc.wait_idle(20)
    finally:
        svc.stop()
    got = [(n.recipient_role, n.channel, (n.at_ms - t0) // 1000, n.recipient) for n in pages_of(eng, inc)]
    assert got == [
        ("primary", "pager", 0, "Katja Novak"),
        ("vp-engineering", "sms", 0, "Vera Kowalski"),
        ("secondary", "pager", 300, "Rina Sato"),  # the APAC secondary: the roster at that moment
        ("tech-lead", "pager", 900, "Tessa Okafor"),
        ("vp-engineering", "pager", 1800, "Vera Kowalski"),
        ("eng-manager", "pager", 1800, "Marco Silva"),
    ]
    # every notification of the incident reached the server, once, with the roster's contact on it
    bodies = [r.json() for r in hook.received]
    by_id = {b["notification"]["id"]: b for b in bodies}
    assert len(by_id) == len(bodies)
    for n in pages_of(eng, inc):
        b = by_id[n.id]
        assert b["notification"]["recipient"] == n.recipient
        assert b["notification"]["text"] == n.text and b["notification"]["incident_id"] == inc.id
        assert b["contact"]["name"] == n.recipient
    assert by_id[pages_of(eng, inc)[2].id]["contact"]["handle"] == "@rina"
    assert hook.received[0].headers["content-type"] == "application/json"
    recs = read_records(tmp_path / "delivery.jsonl")
    delivered = {r["notification_id"] for r in recs if r["outcome"] == "delivered"}
    assert {n.id for n in eng.outbox.items} <= delivered
    assert all(r["status"] == 200 for r in recs if r["outcome"] == "delivered")
    # delivery never slowed the engine: 31 simulated minutes of a whole fleet in well under a second or two
    assert engine_wall < 5


def test_acknowledgement_stops_the_no_ack_steps_but_not_the_unresolved_ones(hook):
    roster = load_roster(example_roster_path())
    eng, inc = sev1_engine("2026-01-25T14:00:00Z", roster=roster)
    svc = DeliveryService(eng.outbox, webhook_config(hook.url), engine=eng)
    svc.start()
    try:
        for n in list(eng.outbox.items):
            svc.submit(n)
        t0 = inc.escalated_at_ms
        eng.run_for(t0 + 120_000 - eng.now_ms)
        eng.acknowledge(inc.id, "katja")
        eng.run_for(t0 + 31 * 60_000 - eng.now_ms)
        assert svc.wait_idle(20)
    finally:
        svc.stop()
    roles = [(n.recipient_role, (n.at_ms - t0) // 1000) for n in pages_of(eng, inc)]
    assert ("secondary", 300) not in roles
    assert roles == [("primary", 0), ("vp-engineering", 0), ("tech-lead", 900), ("vp-engineering", 1800), ("eng-manager", 1800)]
    assert {r.json()["notification"]["id"] for r in hook.received} >= {n.id for n in pages_of(eng, inc)}


def test_failing_webhook_retries_with_backoff_records_every_attempt_and_escalates_one_step(tmp_path):
    # the first three requests fail three different ways (timeout, 500, dropped connection)
    hook = start_hook(plan=["hang", 500, "close"], hang_s=0.6)
    try:
        roster = load_roster(example_roster_path())
        eng, inc = sev1_engine("2026-01-25T14:00:00Z", roster=roster)
        cfg = webhook_config(hook.url, channels=["pager"], timeout_ms=300)
        svc = DeliveryService(eng.outbox, cfg, records=tmp_path / "delivery.jsonl", engine=eng)
        svc.start()
        try:
            primary = next(n for n in eng.outbox.items if n.incident_id == inc.id and n.recipient_role == "primary")
            svc.submit(primary)
            assert svc.wait_idle(20)
            # the escalated page went out at once; the ladder's own +5 min step is not repeated
            eng.run_for(6 * 60_000)
            assert svc.wait_idle(20)
        finally:
            svc.stop()
    finally:
        hook.close()
    recs = [r for r in read_records(tmp_path / "delivery.jsonl") if r["notification_id"] == primary.id]
    assert [(r["attempt"], r["outcome"]) for r in recs] == [(1, "retry"), (2, "retry"), (3, "failed"), (3, "escalated")]
    assert "timeout" in recs[0]["error"]
    assert recs[1]["status"] == 500 and recs[1]["error"].startswith("HTTP 500")
    assert recs[2]["error"]  # connection dropped without an answer
    assert [r.get("next_attempt_in_ms") for r in recs[:2]] == [20, 40]
    gaps = [b.at - a.at for a, b in zip(hook.received, hook.received[1:3])]
    assert gaps[0] >= 0.3 + 0.02 - 0.01 and gaps[1] >= 0.04 - 0.01  # timeout + backoff, then backoff
    esc = recs[3]["escalated_to"]
    assert esc["role"] == "secondary" and esc["recipient"] == "Luca Romano" and esc["step"] == 2
    secondary = [n for n in eng.outbox.items if n.incident_id == inc.id and n.recipient_role == "secondary"]
    assert len(secondary) == 1 and secondary[0].id == esc["notification_id"]
    assert "could not deliver page to Katja Novak" in secondary[0].text
    assert secondary[0].id in {r.json()["notification"]["id"] for r in hook.received}
    notices = [n for n in eng.notices if n["kind"] == "delivery.failed"]
    assert len(notices) == 1 and notices[0]["notification_id"] == primary.id
    assert list(svc.failures)[0]["notification_id"] == primary.id


def test_permanent_http_error_is_not_retried_and_escalates_at_once(tmp_path):
    hook = start_hook(default=404)
    try:
        eng, inc = sev1_engine()
        svc = DeliveryService(eng.outbox, webhook_config(hook.url, roles=["tech-lead"]), records=tmp_path / "d.jsonl", engine=eng)
        svc.start()
        try:
            eng.run_for(inc.escalated_at_ms + 900_000 - eng.now_ms)
            assert svc.wait_idle(10)
        finally:
            svc.stop()
    finally:
        hook.close()
    recs = read_records(tmp_path / "d.jsonl")
    assert [(r["attempt"], r["outcome"], r.get("status")) for r in recs[:2]] == [(1, "failed", 404), (1, "escalated", None)]
    assert recs[1]["escalated_to"]["role"] == "vp-engineering"
    assert len(hook.received) == 1


def test_stopping_with_queued_work_records_it_as_undelivered(tmp_path):
    hook = start_hook(default="hang", hang_s=1.0)
    try:
        eng, inc = sev1_engine()
        svc = DeliveryService(eng.outbox, webhook_config(hook.url, timeout_ms=2000), records=tmp_path / "d.jsonl", engine=eng)
        svc.start()
        for n in list(eng.outbox.items)[:3]:
            svc.submit(n)
        assert hook.wait_for(1, 5)
        svc.stop(timeout=5)
    finally:
        hook.close()
    recs = read_records(tmp_path / "d.jsonl")
    outcomes = sorted(r["outcome"] for r in recs)
    assert outcomes.count("undelivered") == 2 and len(recs) == 3
