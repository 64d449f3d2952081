"""The certification scenarios as data: every reference path passes, the engine's own classification
agrees with the expected one, and training mode leaves every action to the trainee."""
import pytest

from engine.drill.scenario import TrainingSpec, load_scenarios
from engine.policy.loader import PolicyError, validate
from engine.training.session import TraineeSession, run_answers

SCENARIOS = load_scenarios()
TRAINING = {n: s for n, s in SCENARIOS.items() if s.training is not None}


def test_library_covers_what_certification_needs():
    assert len(TRAINING) >= 12
    types = {r.type for s in TRAINING.values() for r in s.training.incidents}
    assert types == {"queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"}
    assert any(len(s.training.incidents) > 1 for s in TRAINING.values()), "a compound scenario"
    assert any(s.training.stop_automation_before for s in TRAINING.values()), "a scenario where automation must be stopped"
    escalate = [n for n, s in TRAINING.items() if any(r.escalate and not r.resolve for r in s.training.incidents)]
    assert len(escalate) >= 3, escalate
    faults = {f.kind for s in TRAINING.values() for f in s.faults}
    assert len(faults) >= 10, "several root causes"
    required = [n for n, s in TRAINING.items() if s.training.certification]
    assert len(required) >= 12


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_reference_path_scores_full_marks(name):
    sc = TRAINING[name]
    report, session = run_answers(sc, sc.training.reference, trainee="ref")
    assert report.passed, report.failures
    assert report.score_pct == 100.0, [c.detail for c in report.criteria if not c.ok]
    assert report.unapplied == []
    for want in sc.training.incidents:
        inc = session.first(want.ref)
        assert inc is not None
        # The expected classification is the engine's own (highest severity reached).
        assert inc.max_severity == want.severity, (want.ref, inc.max_severity)


@pytest.mark.parametrize("name", ["queue-bulk-import", "errors-bad-deploy", "compound-dependency-backlog", "region-gray-standby"])
@pytest.mark.parametrize("seed", [2, 3])
def test_reference_path_holds_on_other_seeds(name, seed):
    sc = TRAINING[name]
    report, _ = run_answers(sc, sc.training.reference, trainee="ref", seed=seed)
    assert report.passed, report.failures


def test_training_mode_detects_and_pages_but_never_acts():
    sc = TRAINING["queue-bulk-import"]
    s = TraineeSession(sc, trainee="ann")
    s.advance(600_000)
    (inc,) = s.engine.incidents.values()
    assert inc.type == "queue_backlog_overflow" and inc.open
    assert all(st.runs == 0 for st in inc.steps), "no runbook step ran"
    assert not inc.escalated, "no automatic escalation"
    assert s.engine.fleet.queues["acct-1001"].concurrency == 20, "no pre-incident scaling"
    pages = [n for n in s.engine.outbox.items if n.kind == "page" and n.incident_id == inc.id]
    assert len(pages) == 1 and pages[0].at_ms == inc.detected_at_ms and pages[0].recipient_role == "primary"


def test_automation_scenario_runs_the_runbooks_until_stopped():
    sc = TRAINING["region-gray-standby"]
    s = TraineeSession(sc, trainee="ann")
    s.advance(400_000)
    inc = s.first("region_failover")
    applied = [e.data["action"] for e in inc.events if e.kind == "mitigation.applied"]
    assert applied == ["failover_region"], "with automation on, the runbook fails over by itself"
    assert s.engine.fleet.edge_error_pct > 90, "onto a standby that cannot serve: a full outage"


def test_gray_region_passes_checks_but_fails_traffic():
    from engine.core import Engine

    e = Engine(seed=1)
    e.run_for(60_000)
    e.inject("region_outage", "us-west1", params={"health_check": "passes"})
    e.run_for(60_000)
    west = e.fleet.regions["us-west1"]
    assert west.up and west.last_check_ok and west.consecutive_failed == 0
    assert e.signals("region", "us-central1")["replication_lag_ms"] > 50_000
    assert e.fleet.edge_error_pct < 1
    with pytest.raises(ValueError, match="health_check must be"):
        e.inject("region_outage", "us-west1", params={"health_check": "sometimes"})


def _spec(**over):
    base = TRAINING["queue-bulk-import"].training.model_dump()
    base.update(over)
    return base


@pytest.mark.parametrize(
    "over,needle",
    [
        ({"incidents": []}, "incidents"),
        ({"reference": [{"do": "classify", "after_page_s": 1}]}, "needs severity"),
        ({"reference": [{"do": "acknowledge"}]}, "exactly one of at_s"),
        ({"reference": [{"do": "acknowledge", "at_s": 1, "after_page_s": 2}]}, "exactly one of at_s"),
        ({"reference": [{"do": "action", "after_page_s": 1, "action": "reboot_everything", "target": "app"}]}, "unknown action"),
        ({"reference": [{"do": "acknowledge", "after_page_s": 1, "incident": "latency_spike"}]}, "not one of the expected incidents"),
        ({"stop_automation_before": "failover_region"}, "needs automation = true"),
        ({"incidents": [{"type": "queue_backlog_overflow", "severity": "Sev2", "escalate": True}]}, "escalate_within_s"),
        ({"weights": {"acknowledge": 10, "speed": 5}}, "Extra inputs"),
    ],
)
def test_training_table_errors_name_the_field(over, needle):
    with pytest.raises(PolicyError) as exc:
        validate("runbooks/scenarios/x.toml", _spec(**over), TrainingSpec)
    assert needle in str(exc.value)
    assert "runbooks/scenarios/x.toml" in str(exc.value)


def test_prose_is_one_paragraph():
    t = TRAINING["region-gray-standby"].training
    assert "\n" not in t.briefing and "\n" not in t.debrief and "  " not in t.debrief
