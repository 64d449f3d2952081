"""Prevention drills: the 06-prevention-strategies checks against the automation, `ggen chaos inject
--scenario`, the monthly `ggen chaos drill`, and the prevention_failure_detected rule."""
from dataclasses import dataclass

import orjson
import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.training.prevention import PreventionRule, load_prevention, repeat_alerts, run_check

PF = load_prevention()
CHECKS = {c.name: c for c in PF.checks}


def ggen(data, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)


def test_one_check_per_runbook_and_the_documented_two():
    assert {c.runbook for c in PF.checks} == {"queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"}
    assert {"queue_backlog", "timeout_service"} <= set(CHECKS)
    assert PF.rule.window_s == 30 * 86400 and PF.rule.repeats == 2


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_automation_passes_each_check(name):
    r = run_check(CHECKS[name], duration_s=300)
    assert r.passed, [c.detail for c in r.criteria if not c.ok]


def test_queue_backlog_criteria_are_the_documented_ones():
    r = run_check(CHECKS["queue_backlog"], duration_s=300)
    by = {c.kind: c for c in r.criteria}
    assert by["scaling_fires"].ok and "auto-scaler" in by["scaling_fires"].detail
    assert by["queue_normal_within"].ok and "(limit 180 s" in by["queue_normal_within"].detail


def test_checks_fail_without_automation():
    r = run_check(CHECKS["queue_backlog"], duration_s=300, kill_switch=True)
    assert not r.passed
    by = {c.kind: c for c in r.criteria}
    assert not by["scaling_fires"].ok and by["scaling_fires"].detail == "scaling never fired for acct-1001"
    assert not by["queue_normal_within"].ok
    r = run_check(CHECKS["bad_deploy"], duration_s=300, kill_switch=True)
    assert not r.passed and any(c.detail == "the runbook never applied rollback_deploy" for c in r.criteria)


def test_timeout_service_judges_fallback_and_cascade():
    r = run_check(CHECKS["timeout_service"], duration_s=300)
    by = {c.kind: c for c in r.criteria}
    assert "opened 1 s after the fault" in by["breaker_opens_within"].detail
    assert by["falls_back_to_cache"].detail.startswith("fallback cached;")
    assert by["no_cascade"].ok
    # a longer fault than the restart can fix in time still has no cascade, but a slow-consumer
    # check on the same tenant would: a criterion that names the wrong entity fails
    bad = CHECKS["timeout_service"].model_copy(update={"criteria": [CHECKS["timeout_service"].criteria[2].model_copy(update={"entity": "acct-1001"})]})
    r = run_check(bad, duration_s=300)
    assert not r.passed and r.criteria[0].detail.startswith("cascaded: circuit_breaker_opened on governor->action-handler")


@dataclass
class Summary:
    incident_id: str
    incident_type: str
    detected_at_ms: int
    severity: str = "Sev2"
    service: str = "app"
    status: str = "resolved"


DAY = 86_400_000


def test_repeat_rule():
    rule = PreventionRule(window_s=30 * 86400, repeats=2)
    s = [Summary("a", "error_rate_spike", 0), Summary("b", "error_rate_spike", 31 * DAY), Summary("c", "latency_spike", 5 * DAY)]
    assert repeat_alerts(s, rule) == []
    s.append(Summary("d", "error_rate_spike", 40 * DAY))
    (a,) = repeat_alerts(s, rule)
    assert a.incident_type == "error_rate_spike" and [i["incident_id"] for i in a.incidents] == ["b", "d"]
    s.append(Summary("e", "error_rate_spike", 45 * DAY))
    (a,) = repeat_alerts(s, rule)
    assert [i["incident_id"] for i in a.incidents] == ["b", "d", "e"]
    assert repeat_alerts(s, PreventionRule(window_s=30 * 86400, repeats=4)) == []


def _ledger_with_two_error_spikes(data):
    from engine.core import random_id
    from engine.drill.runner import start_engine
    from engine.drill.scenario import load_scenario
    from engine.receipts import KeyStore, Ledger, ReceiptSink

    data.mkdir(parents=True)
    keys = KeyStore.open_or_init(data / "keys")
    led = Ledger.open(data / "ledger.sqlite", keys)
    sc = load_scenario("errors-bad-deploy")
    try:
        for _ in range(2):
            e, play = start_engine(sc, 1, ids=random_id)
            e.subscribe(ReceiptSink(led, keys, e.policy.policy_hashes, e.clock))
            play()
            e.run_until(lambda x: any(i.state == "resolved" for i in x.incidents.values()), 900_000)
    finally:
        led.close()


def test_monthly_drill_reports_checks_and_the_repeat_rule(tmp_path):
    data = tmp_path / "data"
    r = ggen(data, "chaos", "drill")
    assert r.exit_code == 0, r.output
    assert "5/5 prevention checks passed (5 runbooks)" in r.output
    assert "no ledger at" in r.output
    _ledger_with_two_error_spikes(data)
    r = ggen(data, "chaos", "drill", "--json")
    assert r.exit_code == 1
    out = orjson.loads(r.output)
    assert out["passed"] == 5 and out["failed"] == 0
    (alert,) = out["prevention_failures"]
    assert alert["rule"] == "prevention_failure_detected" and alert["incident_type"] == "error_rate_spike" and alert["count"] == 2
    r = ggen(data, "chaos", "drill")
    assert "prevention_failure_detected: error_rate_spike 2 times within 30 days" in r.output


def test_chaos_inject_scenario_headless(tmp_path):
    data = tmp_path / "data"
    r = ggen(data, "chaos", "inject", "--scenario", "queue_backlog", "--duration", "5m")
    assert r.exit_code == 0 and "PASS queue_backlog" in r.output and "fault for 300 s" in r.output
    r = ggen(data, "chaos", "inject", "--scenario", "timeout_service", "--duration", "5m", "--json")
    assert r.exit_code == 0 and orjson.loads(r.output)["passed"] is True
    r = ggen(data, "chaos", "inject", "--scenario", "errors-bad-config", "--duration", "2m")
    assert r.exit_code == 0 and "PASS errors-bad-config (expect auto_resolved)" in r.output
    r = ggen(data, "chaos", "inject", "--scenario", "nope")
    assert r.exit_code == 2 and "unknown 'nope'" in r.output
    r = ggen(data, "chaos", "inject", "--scenario", "queue_backlog", "--fault", "bad_deploy")
    assert r.exit_code == 2 and "--scenario brings its own faults" in r.output
    r = ggen(data, "chaos", "inject")
    assert r.exit_code == 2 and "give --fault KIND" in r.output


def test_chaos_inject_scenario_live_into_a_running_engine():
    from control_support import start_watch

    w = start_watch(speed=200)
    try:
        p = w.ggen("ggen chaos inject --scenario region-gray-standby --live --json")
        out = orjson.loads(p.stdout)
        assert [(f["kind"], f["target"]) for f in out["faults"]] == [("region_outage", "us-west1"), ("flapping_health", "us-central1"), ("flapping_health", "us-central1")]
        assert out["faults"][0]["params"]["health_check"] == "passes"
        assert out["faults"][2]["start_ms"] - out["faults"][1]["start_ms"] >= 240_000  # at its offset on the engine's clock
        kinds = [f["kind"] for f in w.call("engine.status")["faults"]]
        assert "region_outage" in kinds
    finally:
        w.stop()
