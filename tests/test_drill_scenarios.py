"""Every scenario on seed 1, and the `ggen drill` command's contract."""
import json
import subprocess
import sys

import pytest

from engine.drill.runner import run_scenario
from engine.drill.scenario import load_scenarios

SCENARIOS = load_scenarios()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_passes_on_seed_1(name):
    result, engine = run_scenario(SCENARIOS[name], seed=1)
    assert result.passed, result.reasons
    exp = SCENARIOS[name].expect
    if exp.outcome == "auto_resolved":
        assert all(i.auto_resolved and i.met_target for i in result.incidents)
    elif exp.outcome == "escalated":
        assert any(i.escalated for i in result.incidents)
        assert any(n.kind == "page" for n in engine.outbox.items)
    else:
        assert result.incidents == []


def test_compound_scenario_shows_both_incidents_and_their_order():
    result, _ = run_scenario(SCENARIOS["compound-dependency-backlog"], seed=1)
    types = [i.type for i in result.incidents]
    assert types == ["circuit_breaker_opened", "queue_backlog_overflow"]


def test_drill_is_deterministic_for_a_seed():
    a, _ = run_scenario(SCENARIOS["errors-bad-config"], seed=7)
    b, _ = run_scenario(SCENARIOS["errors-bad-config"], seed=7)
    assert a.to_dict() | {"wall_s": 0} == b.to_dict() | {"wall_s": 0}


def ggen(*args):
    return subprocess.run([sys.executable, "-m", "console.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_cli_drill_json_reports_each_figure():
    p = ggen("drill", "--scenario", "latency-slow-queries", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    inc = out["results"][0]["incidents"][0]
    assert inc["type"] == "latency_spike" and inc["max_severity"] == "Sev2"
    for key in ("detect_after_fault_s", "time_to_detect_s", "time_to_mitigation_s", "mttr_s", "mttr_target_s", "auto_resolved"):
        assert key in inc
    assert out["summary"]["auto_resolution_rate_pct"] == 100.0


def test_cli_drill_exits_nonzero_when_a_scenario_fails(tmp_path):
    bad = tmp_path / "wrong-severity.toml"
    src = (SCENARIOS["errors-bad-deploy"].model_dump())
    text = open(__import__("runbooks").RUNBOOKS_DIR / "scenarios" / "errors-bad-deploy.toml").read()
    bad.write_text(text.replace('name = "errors-bad-deploy"', 'name = "wrong-severity"').replace('severity = "Sev2"', 'severity = "Sev1"'))
    from console.cli.main import cli
    from click.testing import CliRunner

    from engine.drill import scenario as scmod

    orig = scmod.scenarios_dir
    scmod.scenarios_dir = lambda: tmp_path
    try:
        r = CliRunner().invoke(cli, ["drill", "--scenario", "wrong-severity"])
    finally:
        scmod.scenarios_dir = orig
    assert src["scenario"]["name"] == "errors-bad-deploy"
    assert r.exit_code == 1
    assert "classified Sev2, expected Sev1" in r.output


@pytest.mark.parametrize(
    "args,needle",
    [
        (["drill", "--scenario", "no-such-thing"], "unknown scenario 'no-such-thing'"),
        (["drill"], "choose --scenario NAME or --all"),
        (["drill", "--all", "--seeds", "9-3"], "--seeds: not a range"),
        (["drill", "--seed", "-4", "--all"], "-4"),
        (["drill", "--bogus"], "No such option"),
    ],
)
def test_cli_drill_bad_arguments_are_one_line_errors(args, needle):
    p = ggen(*args)
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_drill_runs_a_runbooks_directory_of_your_own(tmp_path):
    """--runbooks DIR drills a team's own thresholds: detection that waits too long fails the drill."""
    import shutil

    from runbooks import RUNBOOKS_DIR

    mine = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS_DIR, mine, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    rb = mine / "incidents" / "error_rate_spike.toml"
    rb.write_text("\n".join(ln.replace("sustain_s = ", "sustain_s = 9") if ln.startswith("sustain_s = ") else ln for ln in rb.read_text().splitlines()) + "\n")
    slow = ggen("drill", "--scenario", "errors-bad-deploy", "--runbooks", str(mine))
    assert slow.returncode == 1
    assert slow.stdout.startswith("FAIL errors-bad-deploy") and "0/1 passed" in slow.stdout
    assert ggen("drill", "--scenario", "errors-bad-deploy").returncode == 0


def test_cli_drill_list_marks_what_all_skips_and_a_run_without_fixable_scenarios_says_na():
    listing = ggen("drill", "--list").stdout.splitlines()
    skipped = {ln.split()[0] for ln in listing if "(training only, not in --all)" in ln}
    assert skipped == {n for n, s in SCENARIOS.items() if not s.scenario.drill} and skipped
    unfixable = next(n for n, s in SCENARIOS.items() if s.expect.outcome != "auto_resolved")
    p = ggen("drill", "--scenario", unfixable)
    assert "auto-resolution n/a (no fixable scenario ran)" in p.stdout and "None%" not in p.stdout
