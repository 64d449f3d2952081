"""Policy files: the shipped ones load; a broken one fails with the file and the field."""
import shutil
from pathlib import Path

import pytest

from engine.drill.scenario import load_scenarios
from engine.policy.bundle import load_policy
from engine.policy.loader import PolicyError
from runbooks import RUNBOOKS_DIR


@pytest.fixture()
def runbooks_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS_DIR, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py", "knowledge-base"))
    return dst


def test_shipped_policy_loads_with_hashes():
    p = load_policy()
    assert set(p.runbooks) == {"queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"}
    h = p.policy_hashes("latency_spike")
    assert set(h) == {"runbook", "severity_rules", "escalation_policy", "mitigation"}
    assert all(len(v) == 64 for v in h.values())
    # documented MTTR targets
    assert {t: rb.runbook.mttr_target_s for t, rb in p.runbooks.items()} == {
        "queue_backlog_overflow": 180,
        "circuit_breaker_opened": 120,
        "latency_spike": 300,
        "error_rate_spike": 120,
        "region_failover": 600,
    }


def test_every_scenario_file_loads():
    scs = load_scenarios()
    assert len(scs) >= 12
    types = {s.scenario.runbook for s in scs.values()}
    assert {"queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover"} <= types


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_wrong_type_names_file_and_field(runbooks_copy: Path):
    f = runbooks_copy / "incidents" / "latency_spike.toml"
    edit(f, "sustain_s = 30", 'sustain_s = "thirty"')
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert err.value.path == str(f)
    assert err.value.field == "detection.0.sustain_s"
    assert "latency_spike.toml: field detection.0.sustain_s" in str(err.value)


def test_misspelt_key_is_an_error_not_ignored(runbooks_copy: Path):
    f = runbooks_copy / "incidents" / "queue_backlog_overflow.toml"
    edit(f, "mttr_target_s = 180", "mttr_target_sec = 180")
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert err.value.field in ("runbook.mttr_target_s", "runbook.mttr_target_sec")


def test_unknown_step_condition(runbooks_copy: Path):
    f = runbooks_copy / "incidents" / "error_rate_spike.toml"
    edit(f, 'when = "deploy_within"', 'when = "deploy_recently"')
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert err.value.field == "steps.1.when"


def test_broken_toml_names_the_file(runbooks_copy: Path):
    f = runbooks_copy / "severity.toml"
    f.write_text(f.read_text() + "\n[levels.Sev1\n")
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert err.value.path == str(f) and "invalid TOML" in str(err.value)


def test_unknown_circuit_reference(runbooks_copy: Path):
    f = runbooks_copy / "fleet.toml"
    edit(f, 'circuit = "app_backend"', 'circuit = "no_such_circuit"')
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert "no_such_circuit" in str(err.value) and err.value.field == "services.api.depends_on"


def test_propagation_must_reach_one_hundred_percent(runbooks_copy: Path):
    f = runbooks_copy / "mitigation.toml"
    edit(f, "[60, 100]]", "[60, 90]]")
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert "100 percent" in str(err.value)


def test_missing_runbook_file(runbooks_copy: Path):
    (runbooks_copy / "incidents" / "region_failover.toml").unlink()
    with pytest.raises(PolicyError) as err:
        load_policy(runbooks_copy)
    assert "region_failover.toml" in str(err.value) and "file not found" in str(err.value)


def test_bad_scenario_names_file_and_field(tmp_path: Path):
    (tmp_path / "broken.toml").write_text('[scenario]\nname = "broken"\ntitle = "t"\ndescription = "d"\n\n[[faults]]\nkind = "gremlins"\n\n[expect]\noutcome = "no_incident"\n')
    with pytest.raises(PolicyError) as err:
        load_scenarios(tmp_path)
    assert err.value.field == "faults.0" and "gremlins" in str(err.value)
