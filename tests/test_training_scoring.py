"""Scripted wrong trainees fail, each with the reason that names their mistake; partial mistakes
cost points without failing."""
from engine.drill.scenario import TraineeStep, load_scenarios
from engine.training.session import TraineeSession, play_steps, run_answers
from engine.training.score import score

SCENARIOS = load_scenarios()


def steps_of(name):
    return [st.model_dump() for st in SCENARIOS[name].training.reference]


def run(name, steps, seed=1):
    return run_answers(SCENARIOS[name], [TraineeStep.model_validate(s) for s in steps], trainee="bob", seed=seed)


def replace(steps, do, **changes):
    out = []
    for s in steps:
        if s["do"] == do:
            s = {k: v for k, v in s.items() if v not in (None, "", {})} | changes
        out.append(s)
    return out


def failing(report, key):
    return [c for c in report.criteria if c.key == key and not c.ok]


def test_wrong_severity_fails_with_the_reason():
    report, _ = run("queue-bulk-import", replace(steps_of("queue-bulk-import"), "classify", severity="Sev1"))
    assert not report.passed
    assert "wrong severity: classified Sev1, expected Sev2" in report.failures
    assert [c.key for c in report.wrong] == ["severity"]
    assert report.score_pct == 85.0  # only the severity's 15 points are lost: it fails on the critical error


def test_late_acknowledgement_fails_against_the_sla():
    report, _ = run("errors-bad-deploy", replace(steps_of("errors-bad-deploy"), "acknowledge", after_page_s=1000))
    assert not report.passed
    assert any(f == "late acknowledgement: 1000 s after the page, the Sev2 SLA is 900 s" for f in report.failures), report.failures
    # a Sev1 has a 5-minute SLA
    report, _ = run("breaker-dependency-outage", replace(steps_of("breaker-dependency-outage"), "acknowledge", after_page_s=301))
    assert "late acknowledgement: 301 s after the page, the Sev1 SLA is 300 s" in report.failures


def test_never_acknowledged_fails():
    steps = [s for s in steps_of("errors-bad-config") if s["do"] != "acknowledge"]
    report, _ = run("errors-bad-config", steps)
    assert not report.passed
    assert "never acknowledged (Sev2 SLA 900 s)" in report.failures


def test_missed_escalation_fails():
    steps = [s for s in steps_of("queue-slow-consumer") if s["do"] != "escalate"]
    report, _ = run("queue-slow-consumer", steps)
    assert not report.passed
    assert any(f.startswith("missed escalation") for f in report.failures), report.failures
    assert failing(report, "escalation")


def test_late_escalation_fails():
    report, _ = run("queue-slow-consumer", replace(steps_of("queue-slow-consumer"), "escalate", after_page_s=700))
    assert not report.passed
    assert "late escalation: 700 s after the page, the deadline is 600 s" in report.failures


def test_unsafe_manual_failover_onto_a_broken_standby_fails():
    steps = steps_of("region-gray-standby") + [{"do": "action", "after_page_s": 50, "action": "failover_region", "target": "us-central1"}]
    report, session = run("region-gray-standby", steps)
    assert not report.passed
    (f,) = [f for f in report.failures if f.startswith("unsafe action")]
    assert "failover_region on us-central1" in f and "us-west1 is not replicating" in f
    session.advance(90_000)  # DNS moves over 60 s
    assert session.engine.fleet.edge_error_pct > 90  # the action was applied: the trainee sees what it does


def test_action_refused_by_the_safety_governor_is_unsafe():
    steps = steps_of("latency-memory-pressure") + [{"do": "action", "after_page_s": 50 + i, "action": "restart_service", "target": "app"} for i in range(6)]
    report, session = run("latency-memory-pressure", steps)
    assert not report.passed
    (f,) = [f for f in report.failures if f.startswith("unsafe action")]
    assert "refused by the safety governor: remediation budget spent" in f
    refused = [r for r in session.records if r.do == "action" and not r.reached]
    assert len(refused) == 2  # budget of 5 per incident: the 6th and 7th restart are refused


def test_globally_unsafe_action_fails():
    steps = steps_of("latency-slow-queries") + [{"do": "action", "after_page_s": 50, "action": "restart_service", "target": "database"}]
    report, _ = run("latency-slow-queries", steps)
    assert not report.passed
    assert any("restarting the primary database takes every caller down" in f for f in report.failures)


def test_closing_a_breaker_onto_a_failing_dependency_is_unsafe_but_not_after_the_restart():
    early = [{"do": "action", "after_page_s": 5, "action": "override_breaker", "target": "governor->action-handler"}] + steps_of("breaker-dependency-outage")
    report, _ = run("breaker-dependency-outage", early)
    assert not report.passed
    assert any(f.startswith("unsafe action: override_breaker on governor->action-handler at +") for f in report.failures), report.failures
    ok, _ = run("breaker-dependency-outage", steps_of("breaker-dependency-outage"))
    assert ok.passed  # the reference overrides after the restart: safe


def test_automation_not_stopped_fails():
    steps = [s for s in steps_of("region-gray-standby") if s["do"] != "kill_switch"]
    report, _ = run("region-gray-standby", steps)
    assert not report.passed
    assert any(f.startswith("automation applied failover_region at +") for f in report.failures), report.failures


def test_dry_run_also_stops_automation_but_then_the_trainee_escalates():
    base = [s for s in steps_of("region-gray-standby") if s["do"] not in ("kill_switch", "note")]
    dry = [{"do": "dry_run", "at_s": 60}] + base
    report, _ = run("region-gray-standby", dry)
    assert not report.passed
    assert not failing(report, "automation")
    assert any(f.startswith("missed escalation: the engine escalated on its own") for f in report.failures)
    report, _ = run("region-gray-standby", dry + [{"do": "escalate", "after_page_s": 45, "reason": "standby broken"}])
    assert report.passed, report.failures


def test_wrong_runbook_fails():
    report, _ = run("latency-slow-queries", replace(steps_of("latency-slow-queries"), "runbook", runbook="error_rate_spike"))
    assert not report.passed
    assert "wrong runbook: chose error_rate_spike, expected latency_spike" in report.failures


def test_unnecessary_escalation_costs_points_but_passes():
    steps = steps_of("errors-bad-config") + [{"do": "escalate", "after_page_s": 41, "reason": "just in case"}]
    report, _ = run("errors-bad-config", steps)
    assert report.passed
    (c,) = failing(report, "escalation")
    assert c.detail.startswith("unnecessary escalation") and not c.critical
    assert report.score_pct == 85.0


def test_slow_fix_costs_mttr_points_only():
    report, _ = run("queue-bulk-import", replace(steps_of("queue-bulk-import"), "action", params={"to": 60}))
    (c,) = failing(report, "mttr")
    assert "against the 180 s target" in c.detail and 0 < c.earned < c.weight
    assert report.passed == (report.score_pct >= 75)


def test_hints_cost_points():
    steps = steps_of("errors-bad-deploy") + [{"do": "hint", "after_page_s": 1}, {"do": "hint", "after_page_s": 2}, {"do": "hint", "after_page_s": 3}]
    report, session = run("errors-bad-deploy", steps)
    assert report.hints_used == 2 and report.hint_penalty == 10  # the scenario has two hints
    assert report.score_pct == 90.0
    hints = [r for r in session.records if r.do == "hint"]
    assert [r.ok for r in hints] == [True, True, False] and hints[-1].detail == "no more hints"


def test_missing_reference_action_costs_points():
    steps = [s for s in steps_of("region-total-outage") if s["do"] != "action"]
    report, _ = run("region-total-outage", steps)
    (c,) = failing(report, "actions")
    assert c.detail == "took 0 of 1 reference actions; missed failover_region on us-central1"
    assert report.passed  # escalating in time is what matters here


def test_steps_for_an_incident_that_never_comes_are_reported():
    steps = steps_of("errors-bad-config") + [{"do": "acknowledge", "after_page_s": 1, "incident": "region_failover"}]
    report, _ = run("errors-bad-config", steps)
    assert report.unapplied and "region_failover was never detected" in report.unapplied[0]


def test_compound_scenario_scores_each_incident():
    steps = [s for s in steps_of("compound-dependency-backlog") if not (s["do"] == "classify" and s.get("incident") == "queue_backlog_overflow")]
    report, _ = run("compound-dependency-backlog", steps)
    assert not report.passed
    assert "never classified (expected Sev2)" in report.failures
    per = [c for c in report.criteria if c.key == "severity"]
    assert [c.incident for c in per] == ["circuit_breaker_opened@governor->action-handler", "queue_backlog_overflow@acct-1001"]
    assert all(c.weight == 7.5 for c in per)


def test_interactive_session_scores_so_far():
    sc = SCENARIOS["errors-bad-deploy"]
    s = TraineeSession(sc, trainee="cat")
    assert s.acknowledge().ok is False  # nothing paged yet
    s.advance(70_000)
    assert s.find() is not None
    assert s.acknowledge().ok and s.classify("Sev2").ok and s.choose_runbook("error_rate_spike").ok
    r = s.act("rollback_deploy", "app")
    assert r.ok and "rolled back app" in r.detail
    play_steps(s, [])
    report = score(s)
    assert report.passed and report.score_pct == 100.0
    assert [t["do"] for t in report.timeline] == ["acknowledge", "acknowledge", "classify", "runbook", "action"]
