"""``ggen chaos``: inject faults into the running engine (and list or end them)."""
from __future__ import annotations

import click

from console.cli.common import DURATION, echo_json, fail, safe_text
from console.cli.remote import Group, call, json_option, login_name, table


@click.group(cls=Group)
def chaos() -> None:
    """Fault injection on the running engine (drills, tests, training)."""


@chaos.command("list")
@json_option
def list_(as_json: bool) -> None:
    """The fault kinds, the incident each leads to and their parameters (no engine needed)."""
    from engine.control.catalog import fault_target_kind
    from engine.fleet.faults import FAULT_KINDS

    rows = [{"fault": k, "incident_type": v[0], "target_kind": fault_target_kind(k), "description": v[2], "params": v[3]} for k, v in sorted(FAULT_KINDS.items())]
    if as_json:
        echo_json(rows)
        return
    table(["fault", "incident_type", "target", "params", "description"], [[r["fault"], r["incident_type"], r["target_kind"], ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-", r["description"]] for r in rows])


def _params(pairs: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            fail(f"--param: expected KEY=VALUE, got {p!r}", 2)
        v: object = value
        for conv in (int, float):
            try:
                v = conv(value)
                break
            except ValueError:
                continue
        out[key.strip()] = v
    return out


@chaos.command("inject")
@click.option("--fault", default=None, metavar="KIND", help="A fault kind (see `ggen chaos list`).")
@click.option("--scenario", default=None, metavar="NAME", help="A prevention check (queue_backlog, timeout_service, ...) or a drill scenario: run it headless and judge it (see `ggen chaos drill`).")
@click.option("--live", is_flag=True, help="With --scenario: inject its faults into the running engine instead (no verdict).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="With --scenario: seed of the simulated fleet.")
@click.option("--target", metavar="T", help="Service, tenant or region (default: the one that shows the fault best).")
@click.option("--duration", type=DURATION, metavar="DURATION", help="End the fault after this long (default: until mitigated; 5m for a prevention check).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Fault parameters, e.g. factor=4.")
@click.option("--actor", default=None, metavar="NAME")
@json_option
def inject(fault: str | None, scenario: str | None, live: bool, seed: int, target: str | None, duration: int | None, params: tuple[str, ...], actor: str | None, as_json: bool) -> None:
    """Start a fault now (recorded as an operator action), or run a prevention scenario."""
    if scenario is not None:
        if fault or target or params:
            fail("--scenario brings its own faults: drop --fault, --target and --param", 2)
        from console.cli.chaos_prevention import inject_scenario

        inject_scenario(scenario, duration, seed, live, actor or login_name(), as_json)
        return
    if not fault:
        fail("give --fault KIND (see `ggen chaos list`) or --scenario NAME", 2)
    if live:
        fail("--live goes with --scenario (a --fault always goes to the running engine)", 2)
    res = call("chaos.inject", {"fault": fault, "target": target, "duration_ms": duration, "params": _params(params), "actor": actor or login_name()})
    if as_json:
        echo_json(res)
        return
    end = f", ends in {duration // 1000} s" if duration else ""
    click.echo(f"injected {res['id']}: {res['kind']} on {safe_text(res['target'])} (leads to {res['incident_type']}{end})")


@chaos.command("clear")
@click.option("--id", "fault_id", required=True, metavar="F", help="The fault id printed by inject.")
@click.option("--actor", default=None, metavar="NAME")
@json_option
def clear(fault_id: str, actor: str | None, as_json: bool) -> None:
    """End an active fault now (its damage may outlast it: a crashed service stays down)."""
    res = call("chaos.clear", {"fault_id": fault_id, "actor": actor or login_name()})
    if as_json:
        echo_json(res)
        return
    click.echo(f"cleared {res['id']}: {res['kind']} on {safe_text(res['target'])}")


from console.cli.chaos_prevention import drill as _monthly_drill  # noqa: E402  (ggen chaos drill)

chaos.add_command(_monthly_drill)
