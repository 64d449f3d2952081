"""The control operations on a virtual-clock engine: the right command fixes its fault and the wrong
one does not, every change goes through the safety governor and leaves a signed record, and bad
arguments name the argument. (The same operations serve the control socket.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine.clock import VirtualClock, iso_utc
from engine.control.history import MetricsHistory
from engine.control.operations import Operations
from engine.control.protocol import BAD_ARGUMENT, FAILED, NOT_FOUND, REFUSED, UNKNOWN_OP, OpError
from engine.control.records import OPERATOR_ACTION, OperatorLog
from engine.core import Engine, SeededIds
from engine.receipts import KeyStore, Ledger, ReceiptSink, verify_ledger

MIN = 60_000


@dataclass
class Rig:
    engine: Engine
    ops: Operations
    ledger: Ledger
    keys: KeyStore

    def run(self, ms: int) -> None:
        self.ops.advance(ms)  # type: ignore[misc]

    def act(self, operation: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self.ops.handle("act", dict({"operation": operation, "args": args or {}, "actor": "alice"}, **kw))

    def get(self, op: str, args: dict[str, Any] | None = None) -> Any:
        return self.ops.handle(op, args or {})

    def incident(self, itype: str) -> Any:
        return next(i for i in self.engine.incidents.values() if i.type == itype)

    def receipts(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = [r.payload() for r in self.ledger.iter_receipts()]
        return [r for r in out if kind is None or r["kind"] == kind]


@pytest.fixture
def rig(tmp_path):
    eng = Engine(clock=VirtualClock(), seed=3, ids=SeededIds(3), kill_switch=True)
    hist = MetricsHistory()
    keys = KeyStore.open_or_init(tmp_path / "keys", now_ms=eng.now_ms)
    ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
    sink = ReceiptSink(ledger, keys, eng.policy.policy_hashes, eng.clock)
    eng.subscribe(sink)

    def advance(ms: int) -> None:
        end = eng.now_ms + ms
        while eng.now_ms < end:
            eng.run_for(eng.tick_ms)
            hist.record(eng)

    ops = Operations(eng, history=hist, operator_log=OperatorLog(eng, sink.append_receipt), advance=advance)
    advance(2 * MIN)
    yield Rig(eng, ops, ledger, keys)
    ledger.close()


def _raises(code: str, fn, *a, arg: str | None = None, match: str = "", **kw: Any) -> OpError:
    with pytest.raises(OpError) as ei:
        fn(*a, **kw)
    assert ei.value.code == code, ei.value.message
    if arg is not None:
        assert ei.value.arg == arg
    assert match in ei.value.message
    return ei.value


# ----------------------------------------------------------------------------- right fix, wrong fix
def test_queue_backlog_concurrency_fixes_it_and_an_open_breaker_makes_it_worse(rig):
    rig.engine.inject("traffic_surge", "acct-1001", params={"factor": 4.0})
    rig.run(3 * MIN)
    q = rig.engine.fleet.queues["acct-1001"]
    depth0 = q.depth
    assert depth0 > 1000
    rig.act("circuit-breaker.open", {"service": "action-handler", "reason": "timeout_degradation"})
    rig.run(MIN)
    assert q.processed == 0.0 and q.depth > depth0  # deliveries stop: the wrong fix
    rig.act("circuit-breaker.close", {"service": "action-handler"})
    rig.act("governor.update", {"account_id": "acct-1001", "concurrency": 100})
    rig.run(6 * MIN)
    assert q.depth < 500
    rig.run(3 * MIN)
    assert rig.incident("queue_backlog_overflow").state == "resolved"


def test_pool_exhaustion_needs_a_restart_of_the_right_service(rig):
    rig.engine.inject("dependency_timeouts", "action-handler")
    rig.run(MIN)
    inc = rig.incident("circuit_breaker_opened")
    _raises(REFUSED, rig.act, "circuit-breaker.override", {"service": "action-handler", "state": "CLOSED", "duration_ms": 5 * MIN}, arg="service", match="connection pool exhausted")
    # Restarting the database (wrong service) leaves action-handler's pool exhausted.
    rig.act("mitigation.trigger", {"incident_id": inc.id, "action": "restart", "params": {"target": "database"}})
    rig.run(30_000)
    assert rig.engine.fleet.services["action-handler"].pool_in_use > 0
    pools = {(p["service"], p["database"]): p["status"] for p in rig.get("db.connections")["pools"]}
    assert pools[("action-handler", "database")] == "EXHAUSTED" and pools[("app", "database")] == "OK"
    rig.act("mitigation.trigger", {"incident_id": inc.id, "action": "restart"})
    rig.run(15_000)
    assert rig.engine.fleet.services["action-handler"].pool_in_use == 0
    # The open breaker starved the tenants' deliveries: their backlog incidents concern the same
    # service, so the override is recorded on an incident only when named.
    plan = rig.act("circuit-breaker.override", {"service": "action-handler", "state": "CLOSED", "duration_ms": 5 * MIN}, plan_only=True)
    assert plan["incident_id"] is None and "open incidents concern it" in plan["incident_note"]
    res = rig.act("circuit-breaker.override", {"service": "action-handler", "state": "CLOSED", "duration_ms": 5 * MIN}, incident_id=inc.id)
    assert res["status"] == "applied" and res["incident_id"] == inc.id
    rig.run(3 * MIN)
    assert inc.state == "resolved"
    kinds = [(e.kind, e.actor, e.data.get("action")) for e in inc.events if e.actor == "person:alice"]
    assert ("mitigation.applied", "person:alice", "restart_service") in kinds
    assert ("mitigation.applied", "person:alice", "override_breaker") in kinds


def test_slow_query_needs_the_index_not_compression_and_a_rewrite_only_helps(rig):
    rig.engine.inject("slow_queries", "database")
    rig.run(3 * MIN)
    app = rig.engine.fleet.services["app"]
    assert app.p99 > 1000
    rig.act("compression.enable", {"algorithm": "gzip"})
    rig.run(MIN)
    assert app.p99 > 1000  # compression does nothing for a sequential scan
    qid = rig.get("db.queries.slow", {"since": "5m"})["queries"][0]["query_id"]
    rig.act("db.queries.optimize", {"query_id": qid})
    rig.run(MIN)
    assert 500 < app.p99 < 1000  # the rewrite helps but the scan remains
    rig.act("db.indexes.create", {"index_name": "idx_user_account", "database": "prod"})
    rig.run(MIN)
    assert app.p99 < 300
    assert rig.get("db.indexes.missing", {})["missing"] == []
    assert rig.get("db.queries.slow", {"since": "30s"})["queries"] == []


def test_large_responses_need_compression_not_an_index(rig):
    rig.engine.inject("large_responses", "api")
    rig.run(3 * MIN)
    api = rig.engine.fleet.services["api"]
    assert api.p99 > 500 and api.response_bytes_p99 > 500_000
    size = rig.get("metrics.get", {"metric": "response_size_bytes", "quantiles": ["p99"]})
    assert size["columns"] == ["response_p99_bytes"]
    rig.act("db.indexes.create", {"index_name": "idx_events_ts"})
    rig.run(MIN)
    assert api.p99 > 500
    rig.act("compression.enable", {"algorithm": "gzip", "service": "api"})
    rig.run(MIN)
    assert api.p99 < 300 and api.response_bytes_p99 < 150_000


def test_bad_config_needs_the_config_rollback_not_a_deploy_rollback(rig):
    rig.engine.inject("bad_config", "app")
    rig.run(2 * MIN)
    inc = rig.incident("error_rate_spike")
    _raises(FAILED, rig.act, "mitigation.trigger", {"incident_id": inc.id, "action": "rollback"}, match="no deploy to roll back")
    assert rig.engine.fleet.services["app"].error_pct > 5
    diff = rig.get("config.diff", {"from": "30m-ago", "to": "now"})["services"][0]
    assert diff["keys"] == [{"key": "payments.timeout_ms", "from": 2000, "to": 50}]
    at = diff["changes"][0]["at_ms"]
    _raises(NOT_FOUND, rig.act, "config.rollback", {"timestamp": iso_utc(at + 1000)}, arg="timestamp")
    rig.act("config.rollback", {"timestamp": iso_utc(at - 1000)})
    rig.run(MIN)
    assert rig.engine.fleet.services["app"].error_pct < 1
    assert rig.get("config.diff", {"from": "30m-ago", "to": "now"})["services"][0]["keys"] == []


def test_schema_change_needs_the_flag_off_and_shows_in_the_schema_diff(rig):
    rig.engine.inject("schema_change", "app")
    rig.run(2 * MIN)
    flags = rig.get("flags.list", {"changed_since": "30m"})["flags"]
    assert [(f["flag"], f["enabled"]) for f in flags] == [("api_schema_v2", True)]
    diff = rig.get("schema.diff", {"from": "24h-ago", "to": "now"})
    assert diff["breaking"] and diff["services"][0]["endpoints"][0]["required_added"] == ["account_ref", "line_items"]
    doc = rig.get("schema.document", {"latest": True})["schemas"]
    assert next(d for d in doc if d["service"] == "app")["version"] == 2
    lines = rig.get("logs.tail", {"filter": "validation_error", "limit": 5})["lines"]
    assert lines and all(ln["fields"]["status_code"] == 400 for ln in lines)
    _raises(NOT_FOUND, rig.act, "config.rollback", {"timestamp": "10m-ago"})
    rig.act("feature-flags.disable", {"service": "app", "flag": "api_schema_v2"})
    rig.run(MIN)
    assert rig.engine.fleet.services["app"].err4 < 0.01


def test_region_conflicts_block_failback_until_resolved(rig):
    f = rig.engine.fleet
    rig.engine.inject("region_outage", "us-central1", duration_s=240)
    rig.run(40_000)
    inc = rig.incident("region_failover")
    _raises(REFUSED, rig.act, "replication.conflict-resolve", {"strategy": "timestamp-wins"}, arg="strategy", match="does not answer")
    rig.act("mitigation.trigger", {"incident_id": inc.id, "action": "failover"})
    assert rig.get("replication.verify", {"bidirectional": True, "timeout_ms": 0})["status"] == "UNREACHABLE"
    rig.run(5 * MIN)
    assert f.replication_conflicts() > 0 and f.regions["us-central1"].consecutive_passed >= 5
    v = rig.get("replication.verify", {"bidirectional": True, "timeout_ms": 30_000})
    assert v["status"] == "INCONSISTENT" and v["conflicts"] == f.replication_conflicts()
    _raises(REFUSED, rig.act, "failback", {"region": "us-central1"}, arg="region", match="conflicting records")
    res = rig.act("replication.conflict-resolve", {"strategy": "timestamp-wins"})
    assert res["after"]["conflicts"] == 0 and res["after"]["lost_records"] == 0  # merged, nothing lost
    rig.act("failback", {"region": "us-central1"})
    rig.run(2 * MIN)
    v = rig.get("replication.verify", {"bidirectional": True, "timeout_ms": 60_000})
    assert v["status"] == "CONSISTENT" and len(set(v["counts"].values())) == 1
    assert f.serving == "us-central1"


# ----------------------------------------------------------------------------- governor, dry-run, records
def test_dry_run_plans_and_records_but_changes_nothing(rig):
    rig.get("engine.dry_run", {"on": True, "actor": "alice"})
    res = rig.act("governor.update", {"account_id": "acct-2002", "concurrency": 40})
    assert res["status"] == "planned" and res["after"] == res["before"]
    assert rig.engine.fleet.queues["acct-2002"].concurrency == 20
    recs = [r for r in rig.receipts(OPERATOR_ACTION) if r["evidence"]["operation"] == "governor.update"]
    assert recs[-1]["evidence"]["status"] == "planned" and recs[-1]["actor"] == "person:alice"


def test_plan_only_changes_and_records_nothing(rig):
    n = len(rig.receipts())
    res = rig.act("governor.update", {"account_id": "acct-2002", "concurrency": 40}, plan_only=True)
    assert res["status"] == "plan" and rig.engine.fleet.queues["acct-2002"].concurrency == 20
    assert len(rig.receipts()) == n


def test_the_safety_governor_budget_refuses_the_sixth_action(rig):
    budget = rig.engine.policy.mitigation.governor.budget_actions
    for i in range(budget):
        rig.act("governor.update", {"account_id": "acct-2002", "concurrency": 21 + i})
    e = _raises(REFUSED, rig.act, "governor.update", {"account_id": "acct-2002", "concurrency": 50}, match="remediation budget")
    assert "recorded as urn:uuid:" in e.message
    assert rig.engine.fleet.queues["acct-2002"].concurrency == 20 + budget
    last = rig.receipts(OPERATOR_ACTION)[-1]["evidence"]
    assert last["status"] == "refused" and last["after"] == last["before"]


def test_operator_receipts_carry_before_and_after_and_the_ledger_verifies(rig):
    rig.act("rate-limit.enable", {"account_id": "acct-3003", "max_per_second": 1.5})
    rig.act("rate-limit.disable", {"account_id": "acct-3003"})
    rig.get("chaos.inject", {"fault": "cpu_saturation", "target": "app", "actor": "bob"})
    ops = rig.receipts(OPERATOR_ACTION)
    en = next(r for r in ops if r["evidence"]["operation"] == "rate-limit.enable")
    assert en["evidence"]["before"]["acct-3003"]["rate_limit_per_s"] is None
    assert en["evidence"]["after"]["acct-3003"]["rate_limit_per_s"] == 2  # receipts hold integers
    assert en["incident_id"] is None and en["actor"] == "person:alice"
    assert any(r["evidence"]["operation"] == "chaos.inject" and r["actor"] == "person:bob" for r in ops)
    assert verify_ledger(rig.ledger, rig.keys.anchors()).ok


def test_actions_attach_to_the_one_incident_they_concern(rig):
    rig.engine.inject("bad_config", "app")
    rig.run(2 * MIN)
    inc = rig.incident("error_rate_spike")
    res = rig.act("rate-limit.enable", {"max_per_second": 5000})
    assert res["incident_id"] == inc.id
    assert inc.events[-1].kind == "mitigation.applied" and inc.events[-1].actor == "person:alice"
    mine = len([e for e in inc.events if e.actor == "person:alice"])
    res = rig.act("rate-limit.disable", {}, attach=False)
    assert res["incident_id"] is None and res["status"] == "applied"
    assert len([e for e in inc.events if e.actor == "person:alice"]) == mine
    unrelated = rig.act("governor.update", {"account_id": "acct-2002", "concurrency": 25})
    assert unrelated["incident_id"] is None
    rig.act("config.rollback", {"timestamp": "10m-ago"})
    rig.run(7 * MIN)
    assert inc.state == "resolved"
    _raises(REFUSED, rig.act, "governor.update", {"account_id": "acct-2002", "concurrency": 26}, incident_id=inc.id)
    _raises(NOT_FOUND, rig.act, "governor.update", {"account_id": "acct-2002", "concurrency": 26}, incident_id="urn:uuid:ffff")
    assert verify_ledger(rig.ledger, rig.keys.anchors()).ok


def test_mitigation_trigger_maps_friendly_names_per_incident_type(rig):
    rig.engine.inject("traffic_surge", "acct-1001")
    rig.run(3 * MIN)
    inc = rig.incident("queue_backlog_overflow")
    res = rig.act("mitigation.trigger", {"incident_id": inc.id[:13], "action": "scale-up"})
    assert res["steps"][0]["action"] == "scale_concurrency" and res["steps"][0]["target"] == "acct-1001"
    assert rig.engine.fleet.queues["acct-1001"].concurrency > 20
    e = _raises(BAD_ARGUMENT, rig.act, "mitigation.trigger", {"incident_id": inc.id, "action": "failover"}, arg="action")
    assert "scale-up" in e.message and "open-breaker" in e.message
    res = rig.act("mitigation.trigger", {"incident_id": inc.id, "action": "scale_concurrency", "params": {"to": 90}})
    assert rig.engine.fleet.queues["acct-1001"].concurrency == 90
    _raises(BAD_ARGUMENT, rig.act, "mitigation.trigger", {"incident_id": inc.id, "action": "throttle"}, arg="params")
    applied = [x for x in inc.events if x.kind == "mitigation.applied"]
    assert [x.actor for x in applied] == ["person:alice", "person:alice"]


# ----------------------------------------------------------------------------- arguments
def test_bad_arguments_name_the_argument(rig):
    _raises(UNKNOWN_OP, rig.get, "no.such.op")
    _raises(BAD_ARGUMENT, rig.get, "circuits.status", {"verbose": True}, arg="verbose")
    _raises(BAD_ARGUMENT, rig.act, "governor.update", {"account_id": "acct-1001", "concurrency": 0}, arg="concurrency")
    _raises(BAD_ARGUMENT, rig.act, "governor.update", {"account_id": "acct-1001", "concurrency": 101}, arg="concurrency", match="limit 100")
    _raises(BAD_ARGUMENT, rig.act, "circuit-breaker.open", {"service": "nope"}, arg="service", match="known: api")
    _raises(BAD_ARGUMENT, rig.act, "circuit-breaker.open", {"service": "api"}, arg="service", match="no circuit breaker guards")
    _raises(BAD_ARGUMENT, rig.act, "circuit-breaker.override", {"service": "app", "duration_ms": 10}, arg="duration_ms")
    _raises(BAD_ARGUMENT, rig.act, "rate-limit.enable", {"max_per_second": -1}, arg="max_per_second")
    _raises(BAD_ARGUMENT, rig.act, "compression.enable", {"algorithm": "lzma"}, arg="algorithm", match="gzip")
    _raises(BAD_ARGUMENT, rig.act, "failback", {"region": "mars-1"}, arg="region")
    _raises(BAD_ARGUMENT, rig.act, "no.such", {}, arg="operation")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metric": "bogus"}, arg="metric", match="pubsub.subscription.lag")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metric": "queue_depth", "quantiles": ["p99"]}, arg="quantiles")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metric": "request_latency", "quantiles": ["p42"]}, arg="quantiles", match="p50")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metric": "request_latency", "grouped_by": "error_code"}, arg="grouped_by")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metric": "request_latency", "since": "5 parsecs"}, arg="since")
    _raises(BAD_ARGUMENT, rig.get, "metrics.get", {"metrics": ["errors", "vibes"], "service": "app"}, arg="metrics")
    _raises(BAD_ARGUMENT, rig.get, "logs.tail", {"filter": "status_code >= 500 AND"}, arg="filter")
    _raises(BAD_ARGUMENT, rig.get, "logs.tail", {"level": "LOUD"}, arg="level")
    _raises(BAD_ARGUMENT, rig.get, "config.diff", {"from": "now", "to": "1h-ago"}, arg="from")
    _raises(BAD_ARGUMENT, rig.get, "replication.verify", {"timeout_ms": -5}, arg="timeout_ms")
    _raises(BAD_ARGUMENT, rig.get, "chaos.inject", {"fault": "meteor"}, arg="fault")
    _raises(BAD_ARGUMENT, rig.get, "chaos.inject", {"fault": "bad_deploy", "target": "nowhere"}, arg="target")


# ----------------------------------------------------------------------------- diagnose
def test_metrics_windows_aggregations_and_aliases(rig):
    rig.engine.inject("cpu_saturation", "app")
    rig.run(3 * MIN)
    now = rig.get("metrics.get", {"metric": "request_latency", "service": "app"})
    assert now["rows"][0]["name"] == "app" and "window" not in now["rows"][0]
    win = rig.get("metrics.get", {"metric": "cloudrun.googleapis.com/request_latencies", "service": "app", "since": "5m"})
    st = win["rows"][0]["window"]["stats"]["cpu_pct"]
    assert st["min"] < st["avg"] < st["max"] and win["rows"][0]["window"]["resolution"] == "tick"
    daily = rig.get("metrics.get", {"metric": "request_latency", "quantiles": ["p99"], "since": "24h", "aggregation": "daily", "service": "app"})
    row = daily["rows"][0]
    assert row["buckets"] and row["buckets"][0]["max"]["p99_ms"] >= row["buckets"][0]["avg"]["p99_ms"]
    assert "history covers only since" in row["note"]
    alias = rig.get("metrics.get", {"metric": "pubsub.googleapis.com/subscription/num_undelivered_messages"})
    assert alias["metric"] == "queue_depth" and {r["name"] for r in alias["rows"]} == set(rig.engine.fleet.queues)
    grp = rig.get("metrics.get", {"metrics": ["errors", "latency", "cpu", "memory"], "service": "action-handler", "since": "5m"})
    assert grp["columns"] == ["error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min", "p50_ms", "p99_ms", "p99_9_ms", "cpu_pct", "memory_pct"]


def test_logs_carry_status_codes_and_filters_select_them(rig):
    rig.engine.inject("bad_deploy", "app")
    rig.run(2 * MIN)
    five = rig.get("logs.tail", {"filter": "status_code >= 500", "limit": 50})["lines"]
    assert five and {ln["fields"]["status_code"] for ln in five} <= {500, 502, 503, 504}
    assert any("unhandled exception in revision 2" in ln["message"] for ln in five)
    app_err = rig.get("logs.tail", {"service": "app", "level": "ERROR", "since": "5m", "limit": 20})["lines"]
    assert app_err and all(ln["service"] == "app" and ln["level"] == "ERROR" for ln in app_err)
    assert len(app_err) <= 20
    by_code = rig.get("metrics.get", {"metric": "error_rate", "grouped_by": "error_code", "service": "app", "since": "1m"})["groups"]
    assert by_code[0]["error_code"] == 500 and by_code[0]["pct_of_requests"] > 10


def test_ping_and_status(rig):
    p = rig.get("ping")
    assert p["now_ms"] == rig.engine.now_ms and p["protocol"] == 1
    st = rig.get("engine.status")
    assert st["kill_switch"] is True and st["incidents_total"] == 0


def test_stale_signals_are_never_reported_healthy(rig):
    # A watched system whose signals for app went stale (a real source that stopped answering).
    rig.engine.fleet.stale = {"service:app": {"p99_ms", "error_pct"}}
    rows = {r["name"]: r for r in rig.ops.handle("services.health", {})["services"]}
    assert rows["app"]["status"] == "UNKNOWN"
    assert any("stale signals: error_pct, p99_ms" in p for p in rows["app"]["problems"])
    assert rows["api"]["status"] == "OK"
    status = rig.ops.handle("engine.status", {})
    assert status["stale"] == {"service:app": ["error_pct", "p99_ms"]}
    assert status["sources"][0]["kind"] == "sim"
