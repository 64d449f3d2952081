"""The console's headless parts: recordings and replays, the receipts feed, the view and its figures."""
from __future__ import annotations

import sqlite3

import orjson
import pytest
from console_support import session, with_incident

from console.tui.receipts import ReceiptFeed
from console.tui.recording import Recorder, Recording, load_recording
from console.tui.session import (
    ReplayError,
    ScriptedEngine,
    VirtualSession,
    recording_script,
    virtual_session,
)
from console.tui.text import duration, sparkline
from console.tui.view import ack_state, read_view
from engine.clock import VirtualClock
from engine.core import SeededIds
from engine.datadir import DataDir
from engine.drill.runner import run_scenario
from engine.drill.scenario import load_scenario
from engine.events import RECEIPT_KINDS
from engine.policy.bundle import load_policy


def outcome(engine):
    """What a run did, independent of ids and absolute times."""
    out = []
    for inc in sorted(engine.incidents.values(), key=lambda i: (i.detected_at_ms, i.type)):
        t0 = engine.started_ms
        out.append(
            (
                inc.type,
                inc.entity,
                inc.max_severity,
                inc.detected_at_ms - t0,
                inc.state,
                None if inc.escalated_at_ms is None else inc.escalated_at_ms - t0,
                None if inc.acknowledged_at_ms is None else inc.acknowledged_at_ms - t0,
                [(e.kind, e.actor, e.observed_at_ms - t0) for e in inc.events],
            )
        )
    return out


def replay(rec: Recording, run_ms: int):
    sc = load_scenario(rec.scenario) if rec.scenario else None
    engine = ScriptedEngine(load_policy(), clock=VirtualClock(), seed=rec.seed, ids=SeededIds(rec.seed), script=recording_script(rec, sc))
    engine.run_for(run_ms)
    return engine


def test_a_recorded_session_replays_to_the_same_incidents(tmp_path):
    s = virtual_session(seed=7, actor="alice")
    path = tmp_path / "session.json"
    s.recorder = Recorder(path, Recording(seed=7, source="console"))
    s.advance(60_000)
    s.inject("bad_deploy", "app")
    s.advance(70_000)
    (iid,) = list(s.engine.incidents)
    s.note(iid, "rollback looks right")
    s.escalate(iid, "wants eyes on it")
    s.advance(20_000)
    s.acknowledge(iid)
    s.manual_action("scale_replicas", "app", incident_id=iid, params={"to": 6}, reason="headroom")
    s.inject("external_outage", None)
    s.advance(200_000)
    s.set_kill_switch(True)
    s.advance(30_000)
    s.stop()
    rec = load_recording(path)
    assert [a.kind for a in rec.actions] == ["inject", "note", "escalate", "acknowledge", "manual_action", "inject", "kill_switch"]
    assert rec.ended_at_ms == s.engine.now_ms - s.engine.started_ms
    replayed = replay(rec, rec.ended_at_ms)
    assert replayed.script_errors == []
    assert outcome(replayed) == outcome(s.engine)
    assert len(outcome(s.engine)) >= 2


def test_drill_json_replays_to_the_drill_incidents(tmp_path):
    sc = load_scenario("latency-slow-queries")
    result, engine = run_scenario(sc, seed=3)
    path = tmp_path / "drill.json"
    path.write_bytes(orjson.dumps({"summary": {"runs": 1}, "results": [result.to_dict()]}))
    rec = load_recording(path)
    assert (rec.scenario, rec.seed, rec.source) == ("latency-slow-queries", 3, "drill")
    replayed = replay(rec, engine.now_ms - engine.started_ms)
    assert outcome(replayed) == outcome(engine)
    assert [i.type for i in replayed.incidents.values()] == [r.type for r in result.incidents]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"format": "something-else"}', "'format'"),
        (b'{"format": "ggen.console-recording", "version": 1}', "'seed'"),
        (b'{"format": "ggen.console-recording", "version": 1, "seed": 1, "actions": [{"at_ms": 5, "kind": "launch"}]}', "'actions.0.kind'"),
        (b'{"format": "ggen.console-recording", "version": 1, "seed": 1, "actions": [{"at_ms": -5, "kind": "inject"}]}', "'actions.0.at_ms'"),
        (b'{"summary": {}, "results": []}', "'results' is empty"),
        (b'{"results": [{"scenario": 3}]}', "'results[0]'"),
    ],
)
def test_bad_replay_files_are_refused_naming_file_and_field(tmp_path, content, needle):
    path = tmp_path / "replay.json"
    path.write_bytes(content)
    with pytest.raises(ReplayError) as err:
        load_recording(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_a_replayed_action_that_cannot_apply_is_reported_not_fatal():
    rec = Recording(seed=1, actions=[{"at_ms": 5000, "kind": "acknowledge", "args": {"incident": {"type": "latency_spike", "entity": "api", "detected_ms": 0}, "actor": "bob"}}])
    engine = ScriptedEngine(load_policy(), clock=VirtualClock(), seed=1, ids=SeededIds(1), script=recording_script(rec, None))
    s = VirtualSession(engine)
    s.advance(10_000)
    assert s.crash_text is None
    assert len(engine.script_errors) == 1 and "no latency_spike incident on api" in engine.script_errors[0]
    assert any(n["kind"] == "replay.error" for n in s.drain_notices())


def test_receipts_feed_verifies_each_receipt_and_flags_a_tampered_one(tmp_path):
    s = session(tmp_path)
    iid = with_incident(s)
    s.note(iid, "checked")
    feed = ReceiptFeed(DataDir(tmp_path / "data"))
    lines = feed.poll()
    kinds = [e.kind for e in s.engine.incidents[iid].events if e.kind in RECEIPT_KINDS]
    assert [ln.kind for ln in lines] == kinds
    assert all(ln.verified for ln in lines) and lines[0].incident_id == iid
    assert feed.poll() == []  # incremental: nothing new
    s.advance(30_000)
    more = feed.poll()
    assert more and more[0].seq == lines[-1].seq + 1
    feed.close()
    s.stop()
    # Tamper with one stored envelope: the feed must say it does not verify, and why.
    db = sqlite3.connect(tmp_path / "data" / "ledger.sqlite")
    (env,) = db.execute("SELECT envelope FROM receipts WHERE seq = 1").fetchone()
    forged = bytes(env).replace(b'"sig":"', b'"sig":"AAAA', 1)
    db.execute("UPDATE receipts SET envelope = ? WHERE seq = 1", (forged,))
    db.commit()
    db.close()
    again = ReceiptFeed(DataDir(tmp_path / "data"))
    checked = {ln.seq: ln for ln in again.poll()}
    again.close()
    assert not checked[1].verified and checked[1].failure
    assert all(ln.verified for seq, ln in checked.items() if seq != 1)


def test_receipts_feed_waits_for_a_ledger(tmp_path):
    feed = ReceiptFeed(DataDir(tmp_path / "empty"))
    assert feed.poll() == [] and feed.problem == "no ledger yet"


def test_view_metrics_and_ack_column(tmp_path):
    s = session(tmp_path, receipts=False)
    a = with_incident(s)  # auto-resolves
    s.advance(240_000)
    b = with_incident(s, "external_outage", run_ms=150_000)  # escalates
    v = read_view(s, b)
    m = v.metrics
    inc_a, inc_b = s.engine.incidents[a], s.engine.incidents[b]
    assert inc_a.auto_resolved and inc_b.escalated and inc_b.open
    assert (m.incidents, m.resolved, m.escalated_open, m.auto_resolved) == (2, 1, 1, 1)
    assert m.auto_rate == 0.5
    assert m.ttd_ms == (inc_a.time_to_detect_ms + inc_b.time_to_detect_ms) / 2
    assert m.mttr_ms == inc_a.mttr_ms
    assert v.detail is not None and v.detail.row.id == b and v.detail.criteria
    sla = s.policy.severity.levels[inc_b.severity].ack_within_s
    now = inc_b.escalated_at_ms
    assert ack_state(inc_b, now, sla)[1] == "waiting"
    assert ack_state(inc_b, now + sla * 1000 + 1000, sla) == ("late 0:01", "late")
    assert ack_state(inc_a, now, sla) == ("—", "closed")
    inc_b.escalated_at_ms, saved = None, inc_b.escalated_at_ms
    assert ack_state(inc_b, now, sla) == ("auto", "auto")
    inc_b.escalated_at_ms = saved
    s.acknowledge(b)
    assert ack_state(inc_b, now, sla) == ("✓ tester", "done")


def test_view_of_a_200_service_fleet(tmp_path):
    s = session(tmp_path, receipts=False, fleet_size=200, warmup_ms=60_000)
    v = read_view(s, None)
    assert len(v.services) == 200 and len(v.services[0].rps_hist) == 60
    assert {r.level for r in v.services} <= {"ok", "warn", "alert"}


def test_formatting_helpers():
    assert sparkline([], 4) == "    "
    assert sparkline([1, 2, 3], 5) == "  ▃▆█"
    assert sparkline([0.1] * 10, 5, floor=5.0) == "▁▁▁▁▁"
    assert len(sparkline(list(range(100)), 10)) == 10 and sparkline(list(range(100)), 10).endswith("█")
    assert [duration(x) for x in (None, 0, 45_000, 192_000, 3_840_000, 90_000_000)] == ["-", "0s", "45s", "3m12s", "1h04m", "1d01h"]
