"""Similar incidents for open incidents of real drills (an engine on the virtual clock, stopped at
detection): the console's `s` key and the PIR draft must put an entry of the incident's own type
first, and for a bad deploy the bad-deploy entry of the same service."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.knowledge import PACKAGED_DIR, KnowledgeBase, similar_incidents
from analyzer.knowledge.similar import signal_words
from engine.datadir import DataDir
from engine.drill.runner import start_engine
from engine.drill.scenario import load_scenario
from engine.view import similar_query

DRILLS = {
    "error_rate_spike": "errors-bad-deploy",
    "latency_spike": "latency-cpu-saturation",
    "queue_backlog_overflow": "queue-traffic-surge",
    "circuit_breaker_opened": "breaker-dependency-timeouts",
    "region_failover": "region-outage",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    base = KnowledgeBase(DataDir(tmp_path_factory.mktemp("kbsim")), entry_dirs=[PACKAGED_DIR])
    base.refresh()
    return base


def open_incident(scenario: str) -> tuple[str, dict, list[str]]:
    """Play the drill until its first incident is detected; the query the console would send."""
    sc = load_scenario(scenario)
    engine, play_due = start_engine(sc, seed=1)
    end = engine.now_ms + sc.scenario.run_s * 1000
    play_due()
    while not engine.incidents and engine.now_ms < end:
        engine.clock.sleep_until(engine.now_ms + engine.tick_ms)  # type: ignore[attr-defined]
        engine.step()
        play_due()
    assert engine.incidents, f"{scenario} opened no incident"
    first = min(engine.incidents.values(), key=lambda i: i.detected_at_ms)
    return similar_query(engine, first.id)


@pytest.mark.parametrize(("incident_type", "scenario"), sorted(DRILLS.items()))
def test_top_similar_incident_has_the_incident_type(kb: KnowledgeBase, incident_type: str, scenario: str) -> None:
    itype, signals, exclude = open_incident(scenario)
    assert itype == incident_type
    hits = similar_incidents(itype, signals, limit=5, kb=kb, exclude=exclude)
    assert hits, scenario
    assert hits[0].incident_types[0] == incident_type, [(h.entry_id, h.score) for h in hits]
    assert sum(incident_type in h.incident_types for h in hits[:3]) >= 2
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bad_deploy_on_app_finds_the_bad_deploy_entry_not_gc_pressure(kb: KnowledgeBase) -> None:
    itype, signals, exclude = open_incident("errors-bad-deploy")
    assert signals["service"] == "app" and signals["last_deployment"].startswith("revision")
    words, facets = signal_words(itype, signals, kb)
    assert facets["causes"] == ["bad_deploy"] and facets["services"] == ["app"]
    # Ordinary readings (55% memory, 59% CPU) are not symptoms of this incident.
    assert not {"memory", "gc", "heap", "cpu", "saturation"} & {w.lower() for w in words}, words
    hits = similar_incidents(itype, signals, limit=5, kb=kb, exclude=exclude)
    assert hits[0].entry_id == "incident-error-rate-spike-bad-deploy-2025-02-11"
    assert all("bad_deploy" in h.causes for h in hits[:3])
    assert "incident-latency-spike-gc-pressure-2025-11-18" not in [h.entry_id for h in hits]


def test_an_old_deploy_is_not_a_cause(kb: KnowledgeBase) -> None:
    old = {"service": "app", "signal": "error_pct", "error_pct": 20, "first_anomaly_at": "2026-01-25T14:02:01Z",
           "last_deployment": "revision 2 at 2026-01-20T09:00:00Z", "config_changes": True}
    _, facets = signal_words("error_rate_spike", old, kb)
    assert facets["causes"] == ["bad_config"]
    hits = similar_incidents("error_rate_spike", old, limit=3, kb=kb)
    assert "bad_config" in hits[0].causes and hits[0].incident_types[0] == "error_rate_spike"


def test_another_type_with_the_same_cause_and_service_can_still_appear(kb: KnowledgeBase) -> None:
    hits = similar_incidents("error_rate_spike", {"service": "action-handler", "root_cause_hint": "connection_pool_exhaustion"}, limit=5, kb=kb)
    assert hits[0].incident_types[0] == "error_rate_spike" or "error_rate_spike" in hits[0].incident_types
    assert any("connection_pool_exhaustion" in h.causes and h.incident_types[0] != "error_rate_spike" for h in hits)
