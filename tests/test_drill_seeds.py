"""The acceptance bar of the engine: `ggen drill --all` passes for seeds 1 to 20, and automation
resolves at least 95 % of the fixable scenarios (the documents' auto-resolution target)."""
import pytest

from engine.drill.runner import auto_resolution_rate, run_scenario
from engine.drill.scenario import load_scenarios
from engine.policy.bundle import load_policy

POLICY = load_policy()
SCENARIOS = [s for s in load_scenarios().values() if s.scenario.drill]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 21))
def test_all_scenarios_pass_for_seed(seed):
    results = [run_scenario(sc, seed, POLICY)[0] for sc in SCENARIOS]
    failed = {r.scenario: r.reasons for r in results if not r.passed}
    assert not failed, failed
    assert auto_resolution_rate(results) >= 0.95
