"""Failed deliveries of one incident escalate once per ladder step; a failed informational message pages nobody."""
from __future__ import annotations

from collections import Counter

from engine.delivery import DeliveryService, read_records
from engine.delivery.config import DeliveryConfig
from engine.oncall.roster import example_roster_path, load_roster
from ops_support import sev1_engine, start_hook


def failing_config(url: str, names: list[str]) -> DeliveryConfig:
    chans = [{"type": "webhook", "name": n, "url": url, "timeout_ms": 2000} for n in names]
    return DeliveryConfig.model_validate({"retry": {"attempts": 2, "backoff_initial_ms": 5, "backoff_multiplier": 2, "jitter_pct": 0}, "channels": chans})


def test_failed_page_and_failed_informational_sms_page_each_next_person_once(tmp_path):
    hook = start_hook(default=500)
    try:
        eng, inc = sev1_engine("2026-01-25T14:00:00Z", roster=load_roster(example_roster_path()))
        first = [n for n in eng.outbox.items if n.incident_id == inc.id and n.recipient_role != "channel"]
        assert [(n.recipient_role, n.kind) for n in first] == [("primary", "page"), ("vp-engineering", "info")]
        # two channels, both failing: every notification fails twice over
        svc = DeliveryService(eng.outbox, failing_config(hook.url, ["bridge-a", "bridge-b"]), records=tmp_path / "d.jsonl", engine=eng)
        svc.start()
        try:
            for n in first:
                svc.submit(n)
            assert svc.wait_idle(20)
        finally:
            svc.stop()
    finally:
        hook.close()
    pages = [n for n in eng.outbox.items if n.incident_id == inc.id and n.recipient_role != "channel"]
    per_step = Counter((n.recipient_role, n.step) for n in pages)
    # each failing page walks one step up: secondary, tech-lead, vp (pager), eng-manager, once each
    assert per_step == Counter({("primary", 0): 1, ("vp-engineering", 1): 1, ("secondary", 2): 1, ("tech-lead", 3): 1, ("vp-engineering", 4): 1, ("eng-manager", 5): 1})
    recs = read_records(tmp_path / "d.jsonl")
    sms = next(n for n in first if n.kind == "info")
    sms_recs = [r for r in recs if r["notification_id"] == sms.id]
    assert sorted(r["outcome"] for r in sms_recs if r["outcome"] not in ("retry",)) == ["failed", "failed", "not_escalated", "not_escalated"]
    assert all("informational" in r["error"] for r in sms_recs if r["outcome"] == "not_escalated")
    primary = first[0]
    outs = Counter(r["outcome"] for r in recs if r["notification_id"] == primary.id and r["outcome"] in ("escalated", "merged"))
    assert outs == Counter({"escalated": 1, "merged": 1})
    merged = next(r for r in recs if r["notification_id"] == primary.id and r["outcome"] == "merged")
    assert merged["escalated_to"]["role"] == "secondary" and merged["merged_into"] == primary.id
    # the informational failure is still shown as a failure
    assert any(n["kind"] == "delivery.failed" and n["notification_id"] == sms.id for n in eng.notices)
    assert sms.id in {f["notification_id"] for f in svc.failures}
