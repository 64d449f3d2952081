"""The ledger and the sink with synthetic IncidentEvents: what a receipt says, batches, parents
across restarts, ids, checkpoints, and the incident summaries folded from receipts."""
from __future__ import annotations

import base64
import sqlite3

import pytest

from engine.events import IncidentEvent
from engine.receipts import ReceiptSink, summarize_incidents, verify_ledger
from engine.receipts.canonical import ProfileError
from engine.receipts.dsse import PAYLOAD_TYPE, decode_envelope
from engine.receipts.keys import KeyStore
from engine.receipts.ledger import AmbiguousId, Ledger, LedgerCorrupt, LedgerError, LedgerNotFound, ReceiptDraft, ReceiptNotFound
from engine.receipts.merkle import leaf_hash
from engine.receipts.note import parse_signed_checkpoint
from engine.receipts.summary import incidents_from_ledger

T0 = 1_769_349_600_000
IID = "urn:uuid:11111111-2222-4333-8444-555555555555"
POLICY = {"runbook": "a" * 64, "severity_rules": "b" * 64, "escalation_policy": "c" * 64}


def ev(kind: str, t: int, data: dict | None = None, *, iid: str = IID, sev: str = "Sev2", actor: str = "engine") -> IncidentEvent:
    return IncidentEvent(iid, 0, kind, T0 + t, T0 + t + 7, "queue_backlog_overflow", sev, "governor", "us-central1", actor, "queue.depth", f"{kind} summary", data or {})


@pytest.fixture
def env(tmp_path):
    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/test")
    ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
    calls: list[str] = []

    def policy(t: str) -> dict[str, str]:
        calls.append(t)
        return POLICY

    sink = ReceiptSink(ledger, keys, policy)
    yield keys, ledger, sink, calls
    ledger.close()


def test_sink_maps_an_event_to_a_receipt(env):
    keys, ledger, sink, calls = env
    det = sink(ev("incident.detected", 0, {"queue_depth": 1245, "queue_depth_threshold": 1000}))
    assert det is not None and det.receipt_id == IID and det.seq == 0
    p = det.payload()
    assert p["schema"] == "ggen.receipt/v1" and p["ledger"] == "ggen.ledger/test"
    assert p["receipt_id"] == p["incident_id"] == IID
    assert p["kind"] == "incident.detected" and p["incident_type"] == "queue_backlog_overflow" and p["severity"] == "Sev2"
    assert p["observed_at"] == "2026-01-25T14:00:00.000Z" and p["recorded_at"] == "2026-01-25T14:00:00.007Z"
    assert p["policy"] == POLICY and calls == ["queue_backlog_overflow"]
    assert p["evidence"] == {"queue_depth": 1245, "queue_depth_threshold": 1000}
    assert p["actions"] == [] and p["parents"] == [] and p["prev"] is None and p["seq"] == 0
    assert (p["service"], p["region"], p["source_signal"], p["actor"]) == ("governor", "us-central1", "queue.depth", "engine")
    assert p["key_id"] == keys.genesis_key_id == decode_envelope(det.envelope).keyid
    assert decode_envelope(det.envelope).payload_type == PAYLOAD_TYPE
    # a follow-up: fresh id, the detection as parent, actions split out of the evidence
    act = [{"action": "scale_concurrency", "from": 20, "to": 50, "duration_ms": 420}]
    mit = sink(ev("mitigation.applied", 5_000, {"actions": act, "queue_depth": 1300}, actor="runbook:queue_backlog_overflow@1"))
    q = mit.payload()
    assert q["receipt_id"].startswith("urn:uuid:") and q["receipt_id"] != IID and q["incident_id"] == IID
    assert q["parents"] == [{"receipt_id": IID, "leaf_sha256": det.leaf_hash.hex()}]
    assert q["prev"] == det.leaf_hash.hex() and q["seq"] == 1
    assert q["actions"] == act and q["evidence"] == {"queue_depth": 1300}
    assert det.leaf_hash == leaf_hash(det.envelope)
    assert verify_ledger(ledger, keys.anchors()).ok


def test_non_receipt_events_are_skipped_and_synonyms_mapped(env):
    keys, ledger, sink, _ = env
    assert sink(ev("notification.sent", 0)) is None
    assert ledger.size() == 0
    sink(ev("circuit_opened", 0))  # a documented synonym of incident.detected
    closed = sink(ev("circuit_closed", 1_000))
    assert ledger.get(0).kind == "incident.detected" and closed.kind == "recovery.verified"


def test_batches_are_one_transaction_with_one_checkpoint(env):
    keys, ledger, sink, _ = env
    out = sink.append_events([ev("incident.detected", 0), ev("mitigation.applied", 1), ev("recovery.started", 2), ev("recovery.verified", 3)])
    assert [r.seq for r in out] == [0, 1, 2, 3]
    # parents chain inside the batch, before anything was committed
    assert out[2].payload()["parents"][0] == {"receipt_id": out[1].receipt_id, "leaf_sha256": out[1].leaf_hash.hex()}
    with sqlite3.connect(ledger.path) as db:
        assert [r[0] for r in db.execute("SELECT size FROM checkpoints")] == [4]
    cp = parse_signed_checkpoint(ledger.latest_checkpoint())
    assert cp.size == 4 and cp.root == ledger.root(4)


def test_a_bad_event_rolls_back_the_whole_batch(env):
    keys, ledger, sink, _ = env
    with pytest.raises(ProfileError):
        sink.append_events([ev("incident.detected", 0), ev("mitigation.applied", 1, {"ratio": 0.5})])
    assert ledger.size() == 0 and ledger.latest_checkpoint() is None
    sink.append_events([ev("incident.detected", 0)])
    assert ledger.size() == 1


def test_parents_survive_a_restart(env, tmp_path):
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    last = sink(ev("mitigation.applied", 1))
    ledger.close()
    keys2 = KeyStore.open(tmp_path / "keys")
    ledger2 = Ledger.open(tmp_path / "ledger.sqlite", keys2)
    sink2 = ReceiptSink(ledger2, keys2, lambda t: POLICY)
    nxt = sink2(ev("recovery.verified", 2, {"recovered_at_ms": T0 + 1}))
    assert nxt.payload()["parents"] == [{"receipt_id": last.receipt_id, "leaf_sha256": last.leaf_hash.hex()}]
    assert nxt.payload()["prev"] == last.leaf_hash.hex()
    assert verify_ledger(ledger2, keys2.anchors()).ok


def test_parents_follow_writes_from_another_process(env, tmp_path):
    """A second Ledger object (as another process would) appends; the first must not reuse a
    stale cached parent or frontier."""
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    other = Ledger.open(tmp_path / "ledger.sqlite", KeyStore.open(tmp_path / "keys"))
    mid = ReceiptSink(other, KeyStore.open(tmp_path / "keys"), lambda t: POLICY)(ev("mitigation.applied", 1))
    nxt = sink(ev("recovery.started", 2))
    assert nxt.payload()["parents"][0]["receipt_id"] == mid.receipt_id
    assert verify_ledger(ledger, keys.anchors()).ok


def test_follow_up_without_detection_is_refused(env):
    keys, ledger, sink, _ = env
    with pytest.raises(LedgerError, match="no detection receipt"):
        sink(ev("mitigation.applied", 0))
    assert ledger.size() == 0


def test_duplicate_receipt_ids_are_refused(env):
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    with pytest.raises(LedgerError, match="already recorded"):
        sink(ev("incident.detected", 1))
    assert ledger.size() == 1


def test_append_receipt_for_non_incident_kinds(env):
    keys, ledger, sink, _ = env
    rec = sink.append_receipt("certificate.issued", evidence={"trainee": "alice", "score_pct": 92}, actor="person:bob", observed_at_ms=T0, recorded_at_ms=T0)
    p = rec.payload()
    assert p["incident_id"] is None and p["kind"] == "certificate.issued" and p["actor"] == "person:bob"
    assert p["evidence"] == {"trainee": "alice", "score_pct": 92} and p["parents"] == []
    assert verify_ledger(ledger, keys.anchors()).ok
    # a manual action on an incident names its parent automatically
    sink(ev("incident.detected", 0))
    man = sink.append_receipt("mitigation.applied", IID, actor="person:carol", actions=[{"action": "restart"}], observed_at_ms=T0 + 5, recorded_at_ms=T0 + 5)
    assert man.payload()["parents"][0]["receipt_id"] == IID


def test_find_by_id_prefix(env):
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    full = IID
    for text in (full, full.removeprefix("urn:uuid:"), "11111111", "11111111-2222", "111111112222", full.upper()):
        assert ledger.find_receipt(text).receipt_id == full, text
        assert ledger.find_incident(text) == full
    for bad in ("1111", "zzzzzzzzzz", ""):
        with pytest.raises(ReceiptNotFound):
            ledger.find_receipt(bad)
    with pytest.raises(ReceiptNotFound):
        ledger.find_receipt("22222222")
    other = "urn:uuid:11111111-9999-4333-8444-555555555555"
    sink(ev("incident.detected", 1, iid=other))
    with pytest.raises(AmbiguousId):
        ledger.find_receipt("11111111")
    assert ledger.find_receipt("11111111-9").receipt_id == other


def test_storage_settings_and_read_only_opening(env, tmp_path):
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    ro = Ledger(tmp_path / "ledger.sqlite", readonly=True)
    assert ro.size() == 1
    with pytest.raises(LedgerError):
        ro.append([ReceiptDraft(kind="x", observed_at_ms=1, recorded_at_ms=1)], keys)
    with pytest.raises(LedgerNotFound):
        Ledger(tmp_path / "missing.sqlite", readonly=True)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerCorrupt):
        Ledger(junk, readonly=True)


def test_origin_mismatch_is_refused(env, tmp_path):
    keys, ledger, sink, _ = env
    other = KeyStore.init(tmp_path / "other-keys", origin="ggen.ledger/other")
    with pytest.raises(LedgerError, match="does not match"):
        Ledger.open(tmp_path / "ledger.sqlite", other)


def test_write_checkpoint_on_demand_is_idempotent(env):
    keys, ledger, sink, _ = env
    assert ledger.write_checkpoint(keys, T0) is None
    sink(ev("incident.detected", 0))
    a = ledger.write_checkpoint(keys, T0)
    b = ledger.write_checkpoint(keys, T0 + 1)
    assert a is not None and b is not None and a.raw == b.raw and a.size == 1


# -- incident summaries -------------------------------------------------------------------------------------
def test_summaries_fold_severity_status_and_mttr(env):
    keys, ledger, sink, _ = env
    b = "urn:uuid:bbbbbbbb-2222-4333-8444-555555555555"
    c = "urn:uuid:cccccccc-2222-4333-8444-555555555555"
    sink.append_events(
        [
            ev("incident.detected", 0, sev="Sev2"),
            ev("incident.classified", 10_000, sev="Sev1"),
            ev("mitigation.applied", 20_000, sev="Sev1"),
            ev("incident.classified", 60_000, sev="Sev2"),
            ev("recovery.verified", 300_000, {"recovered_at_ms": T0 + 180_000}, sev="Sev2"),
            ev("incident.detected", 1_000, iid=b, sev="Sev3"),
            ev("incident.escalated", 130_000, iid=b, sev="Sev3"),
            ev("incident.acknowledged", 140_000, iid=b, sev="Sev3"),
            ev("incident.detected", 2_000, iid=c, sev="Sev4"),
        ]
    )
    by_id = {s.incident_id: s for s in incidents_from_ledger(ledger)}
    a = by_id[IID]
    assert (a.severity, a.current_severity, a.status) == ("Sev1", "Sev2", "resolved")
    assert a.detected_at_ms == T0 and a.recovered_at_ms == T0 + 180_000 and a.resolved_at_ms == T0 + 300_000
    assert a.mttr_ms == 180_000 and a.receipt_count == 5
    assert by_id[b].status == "escalated" and by_id[b].acknowledged_at_ms == T0 + 140_000 and by_id[b].mttr_ms is None
    assert by_id[c].status == "open" and by_id[c].severity == "Sev4"
    # a time window keeps recently active and unresolved incidents
    recent = {s.incident_id for s in incidents_from_ledger(ledger, since_ms=T0 + 400_000)}
    assert recent == {b, c}
    js = a.to_json()
    assert js["mttr_ms"] == 180_000 and js["detected_at"] == "2026-01-25T14:00:00.000Z"


def test_summary_reads_recovered_at_as_the_engine_writes_it():
    payloads = [
        {"incident_id": IID, "kind": "incident.detected", "observed_at": "2026-01-25T14:00:00.000Z"},
        {"incident_id": IID, "kind": "recovery.verified", "observed_at": "2026-01-25T14:05:00.000Z", "evidence": {"recovered_at": "2026-01-25T14:03:00.000Z"}},
    ]
    (s,) = summarize_incidents(payloads)
    assert s.mttr_ms == 180_000 and s.resolved_at_ms == T0 + 300_000


def test_summary_without_recovered_at_uses_the_resolution_time():
    payloads = [
        {"incident_id": IID, "kind": "incident.detected", "observed_at": "2026-01-25T14:00:00.000Z", "severity": "Sev2"},
        {"incident_id": IID, "kind": "recovery.verified", "observed_at": "2026-01-25T14:03:00.000Z", "evidence": {}},
        {"incident_id": None, "kind": "certificate.issued"},
    ]
    (s,) = summarize_incidents(payloads)
    assert s.mttr_ms == 180_000 and s.status == "resolved"


def test_rotation_receipt_is_base64_of_the_new_key(env, tmp_path):
    keys, ledger, sink, _ = env
    from engine.receipts.rotation import rotate_key

    rec, new = rotate_key(ledger, keys, now_ms=T0)
    assert base64.b64decode(rec.payload()["evidence"]["new_public_key"]) == new.public_key
    # the sink keeps working across the rotation, now with the new key
    after = sink(ev("incident.detected", 0))
    assert after.key_id == new.key_id
    assert verify_ledger(ledger, keys.anchors()).ok


def test_rotation_by_another_process_is_picked_up_by_a_running_sink(env, tmp_path):
    """`ggen keys rotate` in another terminal while the engine's sink keeps appending."""
    keys, ledger, sink, _ = env
    sink(ev("incident.detected", 0))
    other_keys = KeyStore.open(tmp_path / "keys")
    from engine.receipts.rotation import rotate_key

    _, new = rotate_key(Ledger.open(tmp_path / "ledger.sqlite", other_keys), other_keys, now_ms=T0)
    after = sink(ev("mitigation.applied", 1))  # the engine's KeyStore never saw the new key
    assert after.key_id == new.key_id
    assert verify_ledger(ledger, keys.anchors()).ok
