"""``ggen engine``: the running engine itself (status, kill switch, dry-run)."""
from __future__ import annotations

import click

from console.cli.common import echo_json, safe_text
from console.cli.remote import Group, call, confirm, json_option, login_name, table, when, yes_option


@click.group(cls=Group)
def engine() -> None:
    """The live engine of this data directory."""


@engine.command("status")
@json_option
def status(as_json: bool) -> None:
    """Is an engine running here, on what clock, with which incidents open."""
    res = call("engine.status")
    if as_json:
        echo_json(res)
        return
    click.echo(f"engine pid {res['pid']} on {safe_text(res['data_dir'])}: {safe_text(res['description'] or '')}")
    click.echo(f"  engine time {when(res['now_ms'])} (speed {res['speed']}x{', PAUSED' if res['paused'] else ''}), up {res['uptime_s']} s, seed {res['seed']}")
    click.echo(f"  kill switch {'ON (automation stopped)' if res['kill_switch'] else 'off'}, dry-run {'ON' if res['dry_run'] else 'off'}, receipts {'on' if res['receipts'] else 'off'} ({res['receipt_errors']} errors)")
    click.echo(f"  serving region {res['serving_region']}; {len(res['faults'])} active faults; {len(res['open_incidents'])} open of {res['incidents_total']} incidents")
    if res["open_incidents"]:
        table(["  id", "type", "severity", "state", "entity"], [["  " + i["id"], i["type"], i["severity"], i["state"], i["entity"]] for i in res["open_incidents"]])
    for f in res["faults"]:
        click.echo(f"  fault {f['id']}: {f['kind']} on {safe_text(f['target'])}")


# What each switch does, for the confirmation question (issue 11: every change is confirmed).
_MEANING = {
    ("kill_switch", True): "turn the kill switch ON (automation stops acting; people still can)",
    ("kill_switch", False): "turn the kill switch off (automation acts on its own again)",
    ("dry_run", True): "turn dry-run ON (actions are planned and recorded, not applied)",
    ("dry_run", False): "turn dry-run off (actions are applied again)",
}


def _switch(op: str, state: str, actor: str | None, reason: str, yes: bool, as_json: bool) -> None:
    key = "kill_switch" if op.endswith("kill_switch") else "dry_run"
    on = state == "on"
    who = actor or login_name()
    if call("engine.status")[key] != on:  # no question when nothing would change
        confirm(f"{_MEANING[(key, on)]} as {safe_text(who)}", yes)
    res = call(op, {"on": on, "actor": who, "reason": reason})
    if as_json:
        echo_json(res)
        return
    label = "kill switch" if key == "kill_switch" else "dry-run"
    click.echo(f"{label} {'ON' if res[key] else 'off'}" + ("" if res["changed"] else " (unchanged)") + (f"; receipt {res['receipt_id']}" if res.get("receipt_id") else ""))


@engine.command("kill-switch")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--actor", default=None, metavar="NAME")
@click.option("--reason", default="", metavar="TEXT")
@yes_option
@json_option
def kill_switch(state: str, actor: str | None, reason: str, yes: bool, as_json: bool) -> None:
    """Stop (on) or resume (off) all automated mitigation; people can still act."""
    _switch("engine.kill_switch", state, actor, reason, yes, as_json)


@engine.command("dry-run")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--actor", default=None, metavar="NAME")
@click.option("--reason", default="", metavar="TEXT")
@yes_option
@json_option
def dry_run(state: str, actor: str | None, reason: str, yes: bool, as_json: bool) -> None:
    """Plan and record actions without applying them (on), or apply them again (off)."""
    _switch("engine.dry_run", state, actor, reason, yes, as_json)
