"""``ggen chaos inject --scenario NAME`` and ``ggen chaos drill``: the prevention strategies'
verification (06-prevention-strategies) against the automation.

``--scenario`` runs headless on the virtual clock, as ``ggen drill`` does, and judges the result:
NAME is a prevention check of runbooks/training/prevention.toml (``queue_backlog``,
``timeout_service``, ...) or any scenario of runbooks/scenarios/ (judged by its own expectations).
With ``--live`` it injects the same faults into the running engine instead, at their offsets on the
engine's clock, and judges nothing (watch the console). ``drill`` is the monthly chaos drill: one
check per runbook, then the ``prevention_failure_detected`` rule over the ledger.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import click

from console.cli.common import DURATION, EXIT_FAILED, EXIT_USAGE, data_dir, echo_json, fail, safe_text


def _prevention() -> Any:
    from engine.policy.loader import PolicyError
    from engine.training.prevention import load_prevention

    try:
        return load_prevention()
    except PolicyError as exc:
        fail(str(exc))


def _print_check(r: Any) -> None:
    mark = click.style("PASS", fg="green", bold=True) if r.passed else click.style("FAIL", fg="red", bold=True)
    click.echo(f"{mark} {r.name} ({r.runbook}): {r.title}")
    for c in r.criteria:
        sym = click.style("✓", fg="green") if c.ok else click.style("✗", fg="red")
        click.echo(f"   {sym} {c.kind}: {safe_text(c.detail)}")


def inject_scenario(name: str, duration_ms: int | None, seed: int, live: bool, actor: str, as_json: bool) -> None:
    """What ``ggen chaos inject --scenario NAME`` does (see the module docstring)."""
    from engine.drill.scenario import load_scenarios
    from engine.policy.loader import PolicyError

    pf = _prevention()
    checks = {c.name: c for c in pf.checks}
    try:
        scenarios = load_scenarios()
    except PolicyError as exc:
        fail(str(exc))
    if name not in checks and name not in scenarios:
        fail(f"--scenario: unknown {safe_text(name)!r} (prevention checks: {', '.join(sorted(checks))}; or a scenario of `ggen drill --list`)", EXIT_USAGE)
    duration_s = 300 if duration_ms is None else max(1, duration_ms // 1000)
    if live:
        faults = checks[name].faults if name in checks else scenarios[name].faults
        _inject_live(name, faults, duration_s if duration_ms is not None or name in checks else None, actor, as_json)
        return
    if name in checks:
        from engine.training.prevention import run_check

        result = run_check(checks[name], duration_s=duration_s, seed=seed)
        if as_json:
            echo_json(result.to_dict())
        else:
            _print_check(result)
            click.echo(f"   (headless on the virtual clock: fault for {duration_s} s, {result.simulated_s:.0f} simulated s in {result.wall_s:.2f} s)")
        sys.exit(0 if result.passed else EXIT_FAILED)
    from engine.drill.runner import run_scenario

    sc = scenarios[name]
    if duration_ms is not None:
        sc = sc.model_copy(update={"faults": [f.model_copy(update={"duration_s": duration_s}) for f in sc.faults]})
    result, _ = run_scenario(sc, seed)
    if as_json:
        echo_json(result.to_dict())
    else:
        mark = click.style("PASS", fg="green", bold=True) if result.passed else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{mark} {name} (expect {result.expected_outcome})")
        for i in result.incidents:
            outcome = "auto-resolved" if i.auto_resolved else ("escalated" if i.escalated else i.state)
            mttr = "-" if i.mttr_s is None else f"{i.mttr_s:.0f} s"
            click.echo(f"   {i.type} {i.max_severity} on {i.entity}: {outcome}, MTTR {mttr}/{i.mttr_target_s} s")
        for r in result.reasons:
            click.echo(f"   - {safe_text(r)}")
    sys.exit(0 if result.passed else EXIT_FAILED)


def _inject_live(name: str, faults: list[Any], duration_s: int | None, actor: str, as_json: bool) -> None:
    """Inject each fault into the running engine when its offset comes, on the engine's clock."""
    from console.cli.remote import call

    status = call("engine.status")
    start = int(status["now_ms"])
    out = []
    for f in sorted(faults, key=lambda x: x.at_s):
        due = start + int(f.at_s * 1000)
        while int(call("engine.status")["now_ms"]) < due:
            time.sleep(0.2)
        dur = f.duration_s or duration_s
        res = call("chaos.inject", {"fault": f.kind, "target": f.target, "duration_ms": None if dur is None else int(dur * 1000), "params": dict(f.params), "actor": actor})
        out.append(res)
        if not as_json:
            end = f", ends in {int(dur)} s" if dur else ""
            click.echo(f"injected {res['id']}: {res['kind']} on {safe_text(res['target'])} (leads to {res['incident_type']}{end})")
    if as_json:
        echo_json({"scenario": name, "faults": out})
    else:
        click.echo(f"{name}: {len(out)} fault(s) injected into the running engine; watch it with ggen console or ggen incidents list")


@click.command("drill")
@click.option("--duration", type=DURATION, default="5m", show_default=True, metavar="DURATION", help="How long each check's fault lasts.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed of the simulated fleet.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drill(duration: int, seed: int, as_json: bool) -> None:
    """The monthly chaos drill: one prevention check per runbook against the automation (headless,
    virtual clock), then the prevention_failure_detected rule over the ledger (the same incident
    type twice within 30 days calls for a review).

    Exits 1 when a check fails or the rule fires.
    """
    from engine.training.prevention import repeat_alerts, run_check

    pf = _prevention()
    wall = time.perf_counter()
    results = [run_check(c, duration_s=max(1, duration // 1000), seed=seed) for c in pf.checks]
    alerts, ledger_note = _ledger_alerts(pf.rule, repeat_alerts)
    report = {
        "checks": [r.to_dict() for r in results],
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "runbooks_covered": sorted({r.runbook for r in results}),
        "prevention_failures": [a.to_dict() for a in alerts],
        "ledger": ledger_note,
        "wall_s": round(time.perf_counter() - wall, 3),
    }
    if as_json:
        echo_json(report)
    else:
        for r in results:
            _print_check(r)
        click.echo(f"\n{report['passed']}/{len(results)} prevention checks passed ({len(report['runbooks_covered'])} runbooks) in {report['wall_s']:.1f} s")
        if ledger_note:
            click.echo(f"ledger: {safe_text(ledger_note)}")
        for a in alerts:
            ids = ", ".join(i["incident_id"] for i in a.incidents)
            click.echo(click.style(f"{a.rule}: ", fg="red", bold=True) + f"{a.incident_type} {len(a.incidents)} times within {a.window_s // 86400} days ({ids}): schedule a prevention review")
        if not alerts and not ledger_note:
            click.echo(f"{pf.rule.name}: no incident type repeated within {pf.rule.window_s // 86400} days")
    sys.exit(0 if not report["failed"] and not alerts else EXIT_FAILED)


def _ledger_alerts(rule: Any, repeat_alerts: Any) -> tuple[list[Any], str | None]:
    """The rule over the data directory's ledger (none yet: nothing to say)."""
    from engine.receipts import incidents_from_ledger
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerNotFound

    dd = data_dir()
    try:
        ledger = Ledger(dd.ledger_path, readonly=True)
    except LedgerNotFound:
        return [], f"no ledger at {dd.ledger_path}: no incident history to check"
    except LedgerCorrupt as exc:
        fail(str(exc))
    try:
        return repeat_alerts(incidents_from_ledger(ledger), rule), None
    finally:
        ledger.close()
