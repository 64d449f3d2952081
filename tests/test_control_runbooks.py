"""Each runbook's manual procedure, typed command by command against a live engine.

A real ``ggen watch --kill-switch`` runs in a subprocess on a temporary data directory (automation
stopped, so nothing fixes the fault unless a person does); the fault is injected through the
control socket (``ggen chaos inject``), and every Diagnose / Mitigate / Rollback line of the
runbook's ``[manual]`` section is run as its own ``ggen`` process exactly as printed, with the
placeholders filled from what the diagnosis showed. Mitigations that the diagnosis rules out are
skipped with the reason asserted (the runbooks make them conditional). Then the incident must
resolve, the receipts must name the person, and the ledger must verify.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from control_support import ACTOR, GGEN, ledger_receipts, manual, start_watch
from engine.clock import iso_utc

pytestmark = pytest.mark.slow


def _person_actions(data, incident_id: str) -> list[dict]:
    return [r for r in ledger_receipts(data) if r["incident_id"] == incident_id and r["kind"] == "mitigation.applied" and r["actor"] == f"person:{ACTOR}"]


def _operator_receipts(data, operation: str) -> list[dict]:
    return [r for r in ledger_receipts(data) if r["kind"] == "engine.operator_action" and r["evidence"]["operation"] == operation]


def _row(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r["name"] == name)


# ----------------------------------------------------------------------------- 01 queue backlog
def test_queue_backlog_procedure_resolves_the_incident():
    rb = manual("queue_backlog_overflow")
    tenant = "acct-1001"
    w = start_watch()
    try:
        w.ggen(f"ggen chaos inject --fault traffic_surge --target {tenant} --param factor=4")
        inc = w.incident("queue_backlog_overflow")
        assert inc["entity"] == tenant and inc["escalated_at_ms"], inc  # kill switch: paged, nothing automatic

        def fill(cmd: str) -> str:
            return cmd.replace("<tenant-id>", tenant)

        for cmd in rb.diagnose:
            w.ggen(fill(cmd))
        lag = w.json("ggen metrics get --metric pubsub.subscription.lag")
        assert _row(lag["rows"], tenant)["now"]["lag_p99_s"] > 60
        t = w.json(f"ggen governor status --account-id {tenant}")["tenants"][0]
        assert t["processing_per_s"] < t["ingest_per_s"] and t["concurrency"] == 20
        # (wider windows than the runbook's for the checks: a loaded machine makes the diagnosis
        # take longer in engine time)
        errors = w.json("ggen logs tail --service governor --level ERROR --since 2h")["lines"]
        assert any("ALERT queue_backlog_overflow" in ln["message"] for ln in errors)
        lat = w.json("ggen metrics get --metric cloudrun.googleapis.com/request_latencies")
        handler_p99 = _row(lat["rows"], "action-handler")["now"]["p99_ms"]

        # Mitigate: raise the tenant's concurrency to its limit; cap its ingest as the runbook says.
        update, limit_cmd, breaker_cmd = (fill(c) for c in rb.mitigate)
        w.ggen(update.replace("<value>", str(t["limit"])))
        w.ggen(limit_cmd)
        # The breaker step is for a degraded action handler (p99 > 1000 ms); the diagnosis shows
        # it healthy, and opening it would stop every delivery: skipped.
        assert "circuit-breaker open --service action-handler" in breaker_cmd and handler_p99 < 1000

        done = w.resolved(inc["id"], timeout=45)
        assert done["escalation_reason"].startswith("automation is stopped")
        after = w.json(f"ggen governor status --account-id {tenant}")["tenants"][0]
        assert after["concurrency"] == t["limit"] and after["rate_limit_per_s"] == 100
        acts = _person_actions(w.data, inc["id"])
        assert [a["evidence"]["action"] for a in acts] == ["scale_concurrency", "rate_limit"]
        op = _operator_receipts(w.data, "governor.update")[0]["evidence"]
        assert op["before"][tenant]["concurrency"] == 20 and op["after"][tenant]["concurrency"] == t["limit"]
        assert op["incident_id"] == inc["id"]
        w.ggen("ggen incidents verify --all")
    finally:
        assert w.stop() == 0


def test_queue_backlog_rollback_restores_the_previous_state():
    rb = manual("queue_backlog_overflow")
    tenant = "acct-1001"
    w = start_watch()
    try:
        before_q = w.json(f"ggen governor status --account-id {tenant}")["tenants"][0]
        before_c = {c["name"]: (c["state"], c["override"]) for c in w.json("ggen circuits status")["circuits"]}
        for cmd in rb.mitigate:
            w.ggen(cmd.replace("<tenant-id>", tenant).replace("<value>", "60"))
        mid = w.json(f"ggen governor status --account-id {tenant}")["tenants"][0]
        assert (mid["concurrency"], mid["rate_limit_per_s"]) == (60, 100)
        assert _row(w.json("ggen circuits status")["circuits"], "governor->action-handler")["state"] == "OPEN"
        for cmd in rb.rollback:
            w.ggen(cmd.replace("<tenant-id>", tenant).replace("<previous-value>", str(before_q["concurrency"])))
        after_q = w.json(f"ggen governor status --account-id {tenant}")["tenants"][0]
        after_c = {c["name"]: (c["state"], c["override"]) for c in w.json("ggen circuits status")["circuits"]}
        assert (after_q["concurrency"], after_q["rate_limit_per_s"]) == (before_q["concurrency"], before_q["rate_limit_per_s"])
        assert after_c == before_c
        assert len(_operator_receipts(w.data, "governor.update")) == 2
    finally:
        assert w.stop() == 0


# ----------------------------------------------------------------------------- 02 circuit breaker
def test_circuit_breaker_procedure_resolves_the_incident():
    rb = manual("circuit_breaker_opened")
    w = start_watch()
    try:
        w.ggen("ggen chaos inject --fault dependency_timeouts --target action-handler")
        inc = w.incident("circuit_breaker_opened")
        assert inc["entity"] == "governor->action-handler"
        for cmd in rb.diagnose:
            w.ggen(cmd)
        circ = _row(w.json("ggen circuits status")["circuits"], "governor->action-handler")
        assert circ["state"] in ("OPEN", "HALF_OPEN")
        svc = w.json('ggen metrics get --service action-handler --metrics "errors,latency,cpu,memory" --since 5m')
        assert svc["columns"][:4] == ["error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min"]
        assert _row(svc["rows"], "action-handler")["window"]["stats"]["p50_ms"]["max"] > 500
        pools = {p["service"]: p for p in w.json("ggen db connections status")["pools"]}
        assert pools["action-handler"]["status"] == "EXHAUSTED" and pools["app"]["status"] == "OK"
        assert w.json("ggen db queries slow --since 5m")["queries"] == []

        # The only ggen mitigation is refused while the service is sick: the pool is the cause.
        override = rb.mitigate[0]
        refused = w.ggen(override, expect=5)
        assert "not healthy" in refused.stderr and "connection pool exhausted" in refused.stderr
        # The runbook's restart (kubectl in the documents) goes through the engine's actuator.
        w.ggen(f"ggen mitigation trigger --incident-id {inc['id']} --action restart")
        w.wait(lambda: _row(w.call("services.health")["services"], "action-handler")["status"] == "OK", 15, "action-handler healthy after the restart")
        w.ggen(override)
        done = w.resolved(inc["id"], timeout=30)
        assert done["state"] == "resolved"
        acts = _person_actions(w.data, inc["id"])
        assert [a["evidence"]["action"] for a in acts][:1] == ["restart_service"]
        refusals = [r for r in _operator_receipts(w.data, "circuit-breaker.override") if r["evidence"]["status"] == "refused"]
        assert refusals == []  # a precondition refusal changes nothing and is reported, not recorded
        applied = [r for r in _operator_receipts(w.data, "circuit-breaker.override") if r["evidence"]["status"] == "applied"]
        assert applied and applied[0]["evidence"]["after"]["governor->action-handler"]["override"] == "CLOSED"
        w.ggen("ggen incidents verify --all")
    finally:
        assert w.stop() == 0


def test_circuit_breaker_rollback_restores_the_previous_state():
    rb = manual("circuit_breaker_opened")
    w = start_watch()
    try:
        before = _row(w.json("ggen circuits status")["circuits"], "governor->action-handler")
        w.ggen(rb.mitigate[0])
        mid = _row(w.json("ggen circuits status")["circuits"], "governor->action-handler")
        assert mid["override"] is not None and mid["override"]["state"] == "CLOSED"
        for cmd in rb.rollback:
            w.ggen(cmd)
        after = _row(w.json("ggen circuits status")["circuits"], "governor->action-handler")
        assert (after["state"], after["override"]) == (before["state"], before["override"]) == ("CLOSED", None)
    finally:
        assert w.stop() == 0


# ----------------------------------------------------------------------------- 03 latency spike
def test_latency_spike_procedure_resolves_the_incident():
    rb = manual("latency_spike")
    w = start_watch()
    try:
        w.ggen("ggen chaos inject --fault slow_queries --target database")
        inc = w.incident("latency_spike", timeout=25)
        assert inc["service"] == "app"
        for cmd in rb.diagnose:
            w.ggen(cmd)
        lat = w.json("ggen metrics get --metric request_latency --quantiles p50,p99,p99.9 --since 5m")
        assert lat["columns"] == ["p50_ms", "p99_ms", "p99_9_ms"]
        assert _row(lat["rows"], "app")["window"]["stats"]["p99_ms"]["max"] > 500
        slow = w.json("ggen db queries slow --since 5m --limit 10")["queries"]
        assert slow and slow[0]["missing_index"] == "idx_user_account" and slow[0]["caller"] == "app"
        usage = w.json("ggen db indexes usage --database prod")
        assert usage["database"] == "database" and usage["sequential_scans"]
        missing = {m["index"]: m for m in w.json("ggen db indexes missing --schema-scan")["missing"]}
        assert missing["idx_user_account"]["pre_approved"] and missing["idx_user_account"]["query_id"] == slow[0]["query_id"]
        size = w.json("ggen metrics get --metric response_size_bytes --quantiles p99")
        normal_size = all(r["now"]["response_p99_bytes"] <= 50_000 for r in size["rows"])

        create, optimize, compress = rb.mitigate
        assert create == "ggen db indexes create --index-name idx_user_account"
        w.ggen(create)
        w.ggen(optimize.replace("<id>", slow[0]["query_id"]))
        # Compression is for large responses; sizes are normal here: skipped.
        assert "compression enable" in compress and normal_size
        done = w.resolved(inc["id"], timeout=40)
        assert done["state"] == "resolved"
        assert [a["evidence"]["action"] for a in _person_actions(w.data, inc["id"])][:1] == ["create_index"]
        after = w.json("ggen db queries slow --since 1m")["queries"]
        assert all(not q["still_slow"] for q in after)
    finally:
        assert w.stop() == 0


def test_latency_spike_rollback_restores_the_previous_state():
    rb = manual("latency_spike")
    # The runbook documents no rollback of its own; its mitigations have exact inverses.
    assert rb.rollback == []
    w = start_watch()
    try:
        before_idx = w.json("ggen db indexes usage --database prod")["indexes"]
        before_comp = {s["name"]: s["compression"] for s in w.json("ggen services health")["services"]}
        w.ggen("ggen db indexes create --index-name idx_user_account")
        w.ggen("ggen compression enable --algorithm gzip")
        assert {s["name"]: s["compression"] for s in w.json("ggen services health")["services"]}["api"] == "gzip"
        w.ggen("ggen compression disable")
        w.ggen("ggen db indexes drop --index-name idx_user_account")
        after_idx = w.json("ggen db indexes usage --database prod")["indexes"]
        assert sorted(i["index"] for i in after_idx) == sorted(i["index"] for i in before_idx)
        assert {s["name"]: s["compression"] for s in w.json("ggen services health")["services"]} == before_comp
    finally:
        assert w.stop() == 0


# ----------------------------------------------------------------------------- 04 error rate spike
def test_error_rate_procedure_resolves_the_incident():
    rb = manual("error_rate_spike")
    w = start_watch()
    try:
        w.ggen("ggen chaos inject --fault bad_config --target app")
        inc = w.incident("error_rate_spike", timeout=25)
        assert inc["service"] == "app"
        for cmd in rb.diagnose:
            w.ggen(cmd)
        by_code = w.json("ggen metrics get --metric error_rate --grouped-by error_code --since 5m")["groups"]
        app_codes = {g["error_code"]: g for g in by_code if g["service"] == "app"}
        assert max(app_codes, key=lambda c: app_codes[c]["per_min"]) == 504
        five = w.json("ggen logs tail --filter 'status_code >= 500' --limit 60")["lines"]
        assert five and all(ln["fields"]["status_code"] >= 500 for ln in five)
        assert any(ln["service"] == "app" and "payments call timed out" in ln["message"] for ln in five)
        four = w.json("ggen logs tail --filter 'status_code >= 400 AND status_code < 500' --limit 10")["lines"]
        assert all(400 <= ln["fields"]["status_code"] < 500 for ln in four)
        assert w.json("ggen feature-flags list --changed-since 30m")["flags"] == []
        assert w.json("ggen api schema diff --from 24h-ago --to now")["services"] == []
        health = {s["name"]: s for s in w.json("ggen services health")["services"]}
        failing_dependency = [d for d in ("database", "upstream") if health[d]["status"] != "OK"]
        diff = w.json("ggen config diff --from 6h-ago --to now")["services"]
        change = next(s for s in diff if s["service"] == "app")["changes"][-1]
        assert "payments.timeout_ms" in change["detail"]

        rollback, breaker, ratelimit = rb.mitigate
        w.ggen(rollback.replace("<before-change>", iso_utc(change["at_ms"] - 1000)))
        # No dependency is failing, so there is no breaker to open; the rate limit is the last
        # resort: both skipped.
        assert "<failing-dependency>" in breaker and failing_dependency == []
        assert "rate-limit enable" in ratelimit
        done = w.resolved(inc["id"], timeout=40)
        assert done["state"] == "resolved"
        assert [a["evidence"]["action"] for a in _person_actions(w.data, inc["id"])] == ["revert_config"]
        cfg = w.json("ggen config diff --from 6h-ago --to now")["services"]
        assert next(s for s in cfg if s["service"] == "app")["keys"] == []  # back to what it was
        w.ggen("ggen incidents verify --all")
    finally:
        assert w.stop() == 0


def test_error_rate_rollback_restores_the_previous_state():
    rb = manual("error_rate_spike")
    w = start_watch()
    try:
        dep = "upstream"
        before_c = {c["name"]: (c["state"], c["override"]) for c in w.json("ggen circuits status")["circuits"]}
        before_l = {s["name"]: s["rate_limit_rps"] for s in w.json("ggen services health")["services"]}
        _, breaker, ratelimit = rb.mitigate
        w.ggen(breaker.replace("<failing-dependency>", dep))
        w.ggen(ratelimit)
        assert _row(w.json("ggen circuits status")["circuits"], "app->upstream")["state"] == "OPEN"
        assert {s["name"]: s["rate_limit_rps"] for s in w.json("ggen services health")["services"]}["api"] == 100
        for cmd in rb.rollback:
            w.ggen(cmd.replace("<failing-dependency>", dep))
        assert {c["name"]: (c["state"], c["override"]) for c in w.json("ggen circuits status")["circuits"]} == before_c
        assert {s["name"]: s["rate_limit_rps"] for s in w.json("ggen services health")["services"]} == before_l
    finally:
        assert w.stop() == 0


# ----------------------------------------------------------------------------- 05 region failover
def test_region_failover_procedure_resolves_the_incident():
    rb = manual("region_failover")
    w = start_watch()
    try:
        w.ggen("ggen chaos inject --fault region_outage --target us-central1")
        inc = w.incident("region_failover")
        for cmd in rb.diagnose:
            # verify cannot compare counts while the primary is down: exit 1, UNREACHABLE
            w.ggen(cmd, expect=1 if "verify" in cmd else 0)
        traffic = {r["name"]: r for r in w.json("ggen metrics get --metric traffic_by_region --since 5m")["rows"]}
        assert traffic["us-central1"]["now"]["traffic_pct"] == 100 and traffic["us-central1"]["now"]["healthy"] == 0
        assert w.json("ggen replication verify --bidirectional --timeout=300", expect=1)["status"] == "UNREACHABLE"

        # Failover is automatic in the runbook; with automation stopped the on-call triggers it.
        w.ggen(f"ggen mitigation trigger --incident-id {inc['id']} --action failover")
        resolve, failback = rb.mitigate
        w.ggen(resolve)  # the stranded writes of the dead primary: the standby's data wins
        refused = w.ggen(failback, expect=5)  # the primary is still down: failback must wait
        assert "needs 5" in refused.stderr
        done = w.resolved(inc["id"], timeout=30)
        assert done["state"] == "resolved"
        rep = w.json("ggen replication status")
        assert rep["serving_region"] == "us-west1" and rep["conflicts"] == 0 and rep["lost_records"] > 0
        assert [a["evidence"]["action"] for a in _person_actions(w.data, inc["id"])][:1] == ["failover_region"]
        w.ggen("ggen incidents verify --all")
    finally:
        assert w.stop() == 0


def test_region_failover_rollback_restores_the_previous_state():
    rb = manual("region_failover")
    w = start_watch()
    try:
        before = w.json("ggen replication status")
        assert before["serving_region"] == "us-central1"
        # Long enough that the standby takes writes before the primary returns (it diverges).
        w.ggen("ggen chaos inject --fault region_outage --target us-central1 --duration 240s")
        inc = w.incident("region_failover")
        w.ggen(f"ggen mitigation trigger --incident-id {inc['id']} --action failover")
        w.resolved(inc["id"], timeout=30)
        # The primary is back and diverged: its stranded writes conflict with the standby's.
        w.wait(lambda: w.call("replication.status")["conflicts"] > 0, 15, "the returning primary's conflicts")
        w.wait(lambda: next(r for r in w.call("replication.status")["regions"] if r["name"] == "us-central1")["consecutive_passed_checks"] >= 5, 15, "5 passing checks")
        assert w.json("ggen replication verify --bidirectional", expect=1)["status"] == "INCONSISTENT"
        assert "conflicting records" in w.ggen(rb.rollback[0], expect=5).stderr  # failback refused
        w.ggen(rb.mitigate[0])
        for cmd in rb.rollback:
            w.ggen(cmd)
        w.wait(lambda: w.call("replication.status")["regions"][0]["traffic_pct"] == 100, 15, "traffic back on us-central1")
        after = w.json("ggen replication status")
        assert after["serving_region"] == before["serving_region"] == "us-central1"
        assert {r["name"]: r["traffic_pct"] for r in after["regions"]} == {r["name"]: r["traffic_pct"] for r in before["regions"]}
        assert w.json("ggen replication verify --bidirectional")["status"] == "CONSISTENT"
    finally:
        assert w.stop() == 0


# ----------------------------------------------------------------------------- one engine per data dir
def test_two_engines_cannot_share_a_data_dir_and_no_engine_means_exit_3():
    w = start_watch(speed=10)
    try:
        second = subprocess.run(GGEN + ["watch", "--speed", "10"], env=w.env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 5
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and "another engine already runs" in err[0] and f"pid {w.proc.pid}" in err[0]
        assert w.client.alive()  # the first one is untouched
    finally:
        assert w.stop() == 0
    assert not (w.data / "engine.sock").exists()  # removed on a clean stop
    for cmd in ("ggen circuits status", "ggen governor update --account-id acct-1001 --concurrency 30", "ggen engine status --json"):
        p = w.ggen(cmd, expect=3)
        assert p.stderr.strip() == f"ggen: no engine is running on {w.data} (start one with ggen console or ggen watch)"
    # History needs no engine.
    w.ggen("ggen incidents list --since 24h")
    w.ggen("ggen chaos list")


def test_a_dead_engines_socket_is_stale_not_fatal():
    w = start_watch(speed=10)
    os.kill(w.proc.pid, signal.SIGKILL)
    w.proc.wait(10)
    assert (w.data / "engine.sock").exists()  # left behind
    p = w.ggen("ggen services health", expect=3)
    assert "no engine is running" in p.stderr
    w2 = start_watch(w.data, speed=10)  # replaces the stale socket, takes the released lock
    try:
        assert w2.call("ping")["pid"] == w2.proc.pid
        mode = (w.data / "engine.sock").stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        assert w2.stop() == 0


def test_changes_need_yes_without_a_terminal_and_bad_arguments_name_the_flag():
    w = start_watch(speed=10)
    try:
        env = {k: v for k, v in w.env.items() if k != "GGEN_YES"}
        p = w.ggen("ggen governor update --account-id acct-1001 --concurrency 30", env=env, expect=5)
        assert p.stderr.strip() == "ggen: governor update changes the live system: pass --yes to confirm (stdin is not a terminal)"
        assert w.call("governor.status", {"account_id": "acct-1001"})["tenants"][0]["concurrency"] == 20
        w.ggen("ggen governor update --account-id acct-1001 --concurrency 30 --yes", env=env)
        cases = {
            "ggen circuit-breaker open --service nosuch": "--service: unknown service 'nosuch'",
            "ggen governor update --account-id acct-1001 --concurrency 500": "--concurrency: 500 is above acct-1001's limit 100",
            "ggen governor update --account-id acct-9 --concurrency 5": "--account-id: unknown account 'acct-9'",
            "ggen circuit-breaker override --service action-handler --state CLOSED --duration 5x": "--duration",
            "ggen rate-limit enable --max-per-second 0": "--max-per-second",
            "ggen metrics get --metric nosuch.metric": "--metric: unknown metric 'nosuch.metric' (known: pubsub.subscription.lag",
            "ggen logs tail --filter 'status_code >='": "--filter:",
            "ggen config diff --from yesterday-ish": "--from",
            "ggen replication conflict-resolve --strategy newest": "--strategy",
        }
        for cmd, needle in cases.items():
            p = w.ggen(cmd, expect=2)
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("ggen: ") and needle in lines[0], (cmd, p.stderr)
        p = w.ggen("ggen mitigation trigger --incident-id urn:uuid:0000 --action scale-up", expect=4)
        assert "--incident-id: no incident" in p.stderr
    finally:
        assert w.stop() == 0


def test_watch_prints_events_as_json_lines_and_stops_cleanly_on_sigint():
    w = start_watch(speed=300)
    try:
        w.ggen("ggen chaos inject --fault bad_deploy --target app")
        inc = w.incident("error_rate_spike", timeout=25)
        w.wait(lambda: any(e.get("type") == "event" and e["incident_id"] == inc["id"] for e in w.events()), 10, "the detection line")
    finally:
        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(15) == 0
    lines = w.events()
    det = next(e for e in lines if e.get("type") == "event" and e["kind"] == "incident.detected")
    assert det["incident_id"] == inc["id"] and det["incident_type"] == "error_rate_spike"
    assert any(e.get("type") == "notice" and e["kind"] == "fault.injected" for e in lines)
    assert "stopped on SIGINT" in w.err_path.read_text()
    assert not (w.data / "engine.sock").exists()
    # the engine's lock is released: a new engine may start at once
    w2 = start_watch(w.data, speed=10)
    assert w2.stop() == 0


def test_watch_plays_a_scenario_and_automation_resolves_it():
    w = start_watch(speed=400, extra=("--scenario", "errors-bad-deploy"))
    try:
        inc = w.incident("error_rate_spike", timeout=25)
        done = w.resolved(inc["id"], timeout=30)
        assert done["escalated_at_ms"] is None  # automation on: no human needed
        assert any(e.get("type") == "notice" and e["kind"] == "fault.injected" and "scenario:errors-bad-deploy" in e["text"] for e in w.events())
    finally:
        assert w.stop() == 0
