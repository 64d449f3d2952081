"""Unit tests of the detection and mitigation primitives: each asserts arithmetic or a transition."""
import pytest

from engine.detect.rules import Baseline, Consecutive, Sustained, WindowedCount, compare
from engine.mitigate.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from engine.mitigate.governor import SafetyGovernor
from engine.mitigate.scaling import next_concurrency
from engine.policy.bundle import load_policy

POLICY = load_policy()


# ---------------------------------------------------------------- detectors
def test_sustained_fires_only_after_the_whole_window():
    s = Sustained(60_000)
    assert not s.update(True, 0)
    assert not s.update(True, 59_000)
    assert s.update(True, 60_000)
    assert s.since_ms == 0


def test_sustained_resets_when_the_condition_breaks():
    s = Sustained(30_000)
    s.update(True, 0)
    s.update(False, 10_000)
    assert not s.update(True, 35_000)
    assert s.since_ms == 35_000
    assert s.update(True, 65_000)


def test_zero_window_fires_at_once():
    assert Sustained(0).update(True, 5)


def test_consecutive_counts_only_runs():
    c = Consecutive(3)
    assert [c.update(x) for x in (True, True, False, True, True, True)] == [False, False, False, False, False, True]


def test_windowed_count_slides():
    w = WindowedCount(30_000, 50)
    assert not w.update(30, 0)
    assert w.update(20, 10_000)
    # the first batch leaves the window after 30 s
    assert not w.update(0, 30_001)
    assert w.total == 20


def test_baseline_freezes_while_anomalous():
    b = Baseline(half_life_s=10, tick_s=1)
    for _ in range(50):
        b.update(1.0)
    before = b.value
    for _ in range(50):
        b.update(40.0, anomalous=True)
    assert b.value == before
    assert b.spike_factor(5.0) == pytest.approx(5.0 / before)


def test_baseline_half_life():
    b = Baseline(half_life_s=10, tick_s=1, initial=0.0)
    for _ in range(10):
        b.update(100.0)
    assert b.value == pytest.approx(50.0, abs=0.5)


@pytest.mark.parametrize("op,a,b,want", [(">", 2, 1, True), (">=", 1, 1, True), ("<", 1, 1, False), ("==", 0.5, 0.5, True), ("!=", 1, 2, True)])
def test_compare(op, a, b, want):
    assert compare(a, op, b) is want


# ---------------------------------------------------------------- scaling arithmetic
SCALER = POLICY.mitigation.scaler


def test_documented_example_rounds_up_to_a_multiple_of_ten():
    # 20 x (700 / 300) = 46.7 -> 50 (decisions.md, 11-automated-mitigation)
    d = next_concurrency(20, 700, SCALER)
    assert d.proposed == 50
    assert d.factor_ppm == 2_333_333


def test_step_is_capped_at_five_times_current():
    assert next_concurrency(10, 30_000, SCALER).proposed == 50


def test_clamped_to_maximum_and_quota():
    assert next_concurrency(60, 3_000, SCALER).proposed == 100
    d = next_concurrency(20, 3_000, SCALER, limit=40)
    assert d.proposed == 40 and d.limit == 40 and not d.exhausted


def test_exhausted_at_the_limit():
    d = next_concurrency(40, 5_000, SCALER, limit=40)
    assert d.exhausted and not d.changes


def test_never_scales_down_during_a_backlog():
    assert next_concurrency(50, 100, SCALER).proposed == 50


# ---------------------------------------------------------------- circuit breaker
def breaker(name="action_handler"):
    return CircuitBreaker("a->b", "a", "b", POLICY.mitigation.circuits[name])


def test_count_rule_opens_after_five_consecutive_errors():
    b = breaker()
    assert b.observe(0, 4, 4, 10, (True,) * 4) is None
    assert b.state == CLOSED
    t = b.observe(1000, 1, 1, 10, (True,))
    assert t is not None and t.to_state == OPEN and t.reason == "consecutive_errors"


def test_a_success_resets_the_consecutive_count():
    b = breaker()
    b.observe(0, 8, 8, 10, (True, True, True, True, False, True, True, True))
    assert b.state == CLOSED and b.consecutive_errors == 3


def test_rate_rule_needs_a_full_window():
    b = breaker()
    for i in range(29):
        assert b.observe(i * 1000, 20, 12, 10) is None  # 60 % but window not yet full
    t = b.observe(29_000, 20, 12, 10)
    assert t is not None and t.reason == "error_rate_threshold_exceeded"


def test_latency_rule_needs_sustained_p99():
    b = breaker()
    for i in range(30):
        assert b.observe(i * 1000, 10, 0, 800) is None
    t = b.observe(30_000, 10, 0, 800)
    assert t is not None and t.reason == "latency_threshold_exceeded"


def test_windowed_count_rule():
    b = breaker("cloud_run_upstream")
    assert b.observe(0, 100, 30, 10) is None
    t = b.observe(1000, 100, 25, 10)
    assert t is not None and t.reason == "error_count_threshold_exceeded"


def test_half_open_after_probe_interval_then_closed_after_ten_successes():
    b = breaker()
    b.observe(0, 5, 5, 10, (True,) * 5)
    assert b.state == OPEN
    assert b.tick(5_000, True) is None  # too early
    t = b.tick(10_000, True)
    assert t.to_state == HALF_OPEN and b.probe_successes == 1
    states = [b.tick(10_000 + 10_000 * k, True) for k in range(1, 10)]
    assert b.state == CLOSED
    assert states[-1].to_state == CLOSED and states[-1].reason == "probe_successes_reached"
    assert all(s is None for s in states[:-1])


def test_failed_probe_reopens_and_resets_successes():
    b = breaker()
    b.observe(0, 5, 5, 10, (True,) * 5)
    b.tick(10_000, True)
    b.tick(20_000, True)
    t = b.tick(30_000, False)
    assert t.to_state == OPEN and b.probe_successes == 0
    assert b.tick(35_000, True) is None  # waits a full interval again
    assert b.tick(40_000, True).to_state == HALF_OPEN


def test_open_breaker_stays_open_while_the_dependency_is_down():
    b = breaker()
    b.observe(0, 5, 5, 10, (True,) * 5)
    for k in range(1, 20):
        assert b.tick(k * 10_000, False) is None
    assert b.state == OPEN


def test_fraction_mode_closes_after_its_window_of_healthy_probe_traffic():
    b = breaker("cloud_run_upstream")
    b.observe(0, 100, 60, 10)
    assert b.state == OPEN
    assert b.tick(10_000, True).to_state == HALF_OPEN
    assert b.passes_traffic == pytest.approx(0.10)
    closed = None
    for k in range(1, 70):
        closed = b.observe(10_000 + k * 1000, 10, 0, 10) or closed
    assert closed is not None and closed.to_state == CLOSED


def test_override_holds_state_until_it_expires():
    b = breaker()
    b.force(0, CLOSED, until_ms=300_000)
    assert b.observe(1000, 10, 10, 10, (True,) * 10) is None
    assert b.state == CLOSED
    t = b.tick(300_000, True)
    assert t.reason == "override_expired" and b.override_state is None


# ---------------------------------------------------------------- governor
def test_budget_per_incident_and_service():
    g = SafetyGovernor(POLICY.mitigation.governor)
    for i in range(5):
        assert g.check(i, "restart_service", automated=True, incident_id="I", service="app").allowed
        g.record(i, "I", "app")
    v = g.check(10, "restart_service", automated=True, incident_id="I2", service="app")
    assert not v.allowed and "budget" in v.reason and "service app" in v.reason
    # the window slides: 10 minutes later the budget is back
    assert g.check(600_010, "restart_service", automated=True, incident_id="I2", service="app").allowed


def test_blast_radius_allows_only_failover_across_regions():
    g = SafetyGovernor(POLICY.mitigation.governor)
    assert not g.check(0, "restart_service", automated=True, incident_id=None, service="app", regions=("us-central1", "us-west1")).allowed
    assert g.check(0, "failover_region", automated=True, incident_id=None, service=None, regions=("us-central1", "us-west1")).allowed


def test_kill_switch_stops_automation_not_people():
    g = SafetyGovernor(POLICY.mitigation.governor)
    g.kill_switch = True
    assert not g.check(0, "throttle", automated=True, incident_id=None, service="app").allowed
    assert g.check(0, "throttle", automated=False, incident_id=None, service="app").allowed


def test_dry_run_plans_only():
    g = SafetyGovernor(POLICY.mitigation.governor)
    g.dry_run = True
    v = g.check(0, "throttle", automated=True, incident_id=None, service="app")
    assert v.allowed and v.dry_run
