"""`ggen drill`: run scenarios headless on the virtual clock and judge what the engine did."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from console.cli.common import EXIT_FAILED, EXIT_USAGE, echo_json, fail


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"


@click.command()
@click.option("--scenario", "scenario_names", multiple=True, metavar="NAME", help="Scenario to run (repeatable). See --list.")
@click.option("--all", "run_all", is_flag=True, help="Run every drill scenario.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed of the simulated fleet.")
@click.option("--seeds", metavar="A-B", help="Run each scenario for a range of seeds, e.g. 1-20.")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--runbooks",
    "runbooks_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    metavar="DIR",
    help="Drill a runbooks directory of your own (thresholds, runbooks, fleet) instead of the packaged runbooks/.",
)
def drill(scenario_names: tuple[str, ...], run_all: bool, seed: int, seeds: str | None, list_only: bool, as_json: bool, runbooks_dir: str | None) -> None:
    """Inject faults on a virtual clock; report detection, severity, mitigation and MTTR per scenario.

    Exits 1 when a scenario is misclassified, misses its MTTR target, or an unfixable fault is not
    escalated.
    """
    from engine.drill.runner import auto_resolution_rate, run_scenario
    from engine.drill.scenario import load_scenarios
    from engine.policy.bundle import load_policy
    from engine.policy.loader import PolicyError

    try:
        policy = load_policy(Path(runbooks_dir) if runbooks_dir else None)
        scenarios = load_scenarios()
    except PolicyError as exc:
        fail(str(exc))
    if list_only:
        rows = [
            {"name": s.name, "title": s.scenario.title, "runbook": s.scenario.runbook, "expect": s.expect.outcome, "in_all": s.scenario.drill}
            for s in scenarios.values()
        ]
        if as_json:
            echo_json(rows)
        else:
            for r in rows:
                click.echo(f"{r['name']:32} {r['expect']:14} {'' if r['in_all'] else '(training only, not in --all) '}{r['title']}")
        return
    if run_all and scenario_names:
        fail("give either --all or --scenario, not both", EXIT_USAGE)
    if run_all:
        chosen = [s for s in scenarios.values() if s.scenario.drill]
    elif scenario_names:
        unknown = [n for n in scenario_names if n not in scenarios]
        if unknown:
            fail(f"unknown scenario {unknown[0]!r} (see `ggen drill --list`)", EXIT_USAGE)
        chosen = [scenarios[n] for n in scenario_names]
    else:
        fail("choose --scenario NAME or --all (see `ggen drill --list`)", EXIT_USAGE)
    seed_list = [seed]
    if seeds:
        try:
            a, _, b = seeds.partition("-")
            lo, hi = int(a), int(b or a)
            if lo > hi or lo < 0:
                raise ValueError
        except ValueError:
            fail(f"--seeds: not a range: {seeds!r} (use A-B, e.g. 1-20)", EXIT_USAGE)
        seed_list = list(range(lo, hi + 1))

    import time

    started = time.perf_counter()
    results = []
    for s in seed_list:
        for sc in chosen:
            r, _ = run_scenario(sc, s, policy)
            results.append(r)
            if not as_json:
                _print_result(r, policy)
    wall = time.perf_counter() - started
    rate = auto_resolution_rate(results)
    failed = [r for r in results if not r.passed]
    summary = {
        "runs": len(results),
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "auto_resolution_rate_pct": None if rate is None else round(100 * rate, 1),
        "auto_resolution_target_pct": 95.0,
        "simulated_s": sum(r.simulated_s for r in results),
        "wall_s": round(wall, 3),
    }
    if as_json:
        echo_json({"summary": summary, "results": [r.to_dict() for r in results]})
    else:
        speed = summary["simulated_s"] / wall if wall > 0 else 0
        auto = "n/a (no fixable scenario ran)" if rate is None else f"{summary['auto_resolution_rate_pct']}% over fixable scenarios"
        click.echo(
            f"\n{summary['passed']}/{summary['runs']} passed; auto-resolution {auto} (target 95%); "
            f"{summary['simulated_s'] / 3600:.1f} simulated hours in {wall:.1f} s ({speed:,.0f}x)"
        )
    low_rate = rate is not None and rate < 0.95
    if failed or low_rate:
        sys.exit(EXIT_FAILED)


def _print_result(r, policy) -> None:
    mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red", bold=True)
    click.echo(f"{mark} {r.scenario} (seed {r.seed}) expect {r.expected_outcome}: " + (", ".join(f"{e['type']} {e['severity']}" for e in r.expected) or "no incident"))
    for i in r.incidents:
        outcome = "auto-resolved" if i.auto_resolved else ("escalated" if i.escalated else i.state)
        click.echo(
            f"     {i.type:24} {i.max_severity} {i.entity:28} detect +{_fmt_s(i.detect_after_fault_s)} (TTD {_fmt_s(i.time_to_detect_s)}) "
            f"mitigate {_fmt_s(i.time_to_mitigation_s)} MTTR {_fmt_s(i.mttr_s)}/{i.mttr_target_s}s {outcome}"
        )
    for reason in r.reasons:
        click.echo(f"     - {reason}")
